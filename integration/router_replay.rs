//! Replays: an already-dispatched event makes no second run; a forced replay makes a new run that
//! names the run it replays; a dead letter replayed after its missing claim is added is dispatched
//! once, however often it is replayed.

use crate::ingest_fixtures::Stack;
use crate::router_fixtures::*;
use crate::support::app::ADMIN_TOKEN;
use ifox::bus::Bus;
use ifox::router::replay::{Options, Selection, Summary, replay};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn bus(stack: &Stack) -> Bus {
    let settings = ifox::settings::Settings::load_from(
        Some(std::path::Path::new("/nonexistent/ifox.toml")),
        [("IFOX__NATS__URL".to_owned(), stack.nats.url())],
    )
    .unwrap();
    Bus::connect(&settings.nats).await.unwrap()
}

/// The replay signing key of the test apps' admin token.
fn key() -> Vec<u8> {
    ifox::domain::replay_sig::key(ADMIN_TOKEN)
}

async fn replay_events(bus: &Bus, subject: &str, force: bool) -> Summary {
    let sel = Selection {
        stream: "EVENTS".into(),
        subject: Some(subject.into()),
        ..Selection::default()
    };
    replay(
        bus,
        &key(),
        &sel,
        &Options {
            force,
            ..Options::default()
        },
        |_, _| {},
    )
    .await
    .unwrap()
}

async fn replaying_a_dispatched_event_makes_no_second_run_and_forcing_makes_a_new_one(
    kind: crate::support::DbKind,
) {
    let stack = Stack::start_on(kind, &[]).await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    github_event(&stack.js, "orig-1", "acme/checkout", &[]).await;
    let first = json_of(
        &last_on(
            &stack.js,
            "AGENT_RUNS",
            "ifox.agent.shared.acme.checkout",
            WAIT,
        )
        .await,
    );
    drained(&stack.js, WAIT).await;
    let bus = bus(&stack).await;

    let summary = replay_events(&bus, "ifox.events.github.>", false).await;
    assert_eq!(summary.republished, 1);
    drained(&stack.js, WAIT).await;
    assert_eq!(
        runs_recorded(&stack.app, &stack.js).await,
        1,
        "a plain replay makes no second run"
    );
    assert_eq!(stream_count(&stack.js, "AGENT_RUNS").await, 1);

    // replaying the replay (2 events now) is still the same single run
    replay_events(&bus, "ifox.events.github.>", false).await;
    drained(&stack.js, WAIT).await;
    assert_eq!(runs_recorded(&stack.app, &stack.js).await, 1);

    let summary = Summary {
        ..replay_events(&bus, "ifox.events.github.issues", true).await
    };
    assert!(summary.republished >= 1);
    drained(&stack.js, WAIT).await;
    let forced = json_of(
        &last_on(
            &stack.js,
            "AGENT_RUNS",
            "ifox.agent.shared.acme.checkout",
            WAIT,
        )
        .await,
    );
    assert_ne!(forced["run_id"], first["run_id"]);
    assert_eq!(
        forced["replay_of"], first["run_id"],
        "a forced run names the run it replays"
    );
    assert!(runs_recorded(&stack.app, &stack.js).await >= 2);
}

async fn a_dead_letter_replayed_after_its_claim_is_added_is_dispatched_once(
    kind: crate::support::DbKind,
) {
    let stack = Stack::start_on(kind, &[]).await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    publish_event(
        &stack.js,
        "github",
        "issues",
        Some("lost-1"),
        &[("github_repos", "acme/search")],
        &[],
        b"{\"x\":1}",
    )
    .await;
    last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.router.no_route",
        WAIT,
    )
    .await;
    drained(&stack.js, WAIT).await;

    stack
        .app
        .node("acme", "search", Some("platform"), "team")
        .await;
    let a = stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/nodes/search/config",
            ADMIN_TOKEN,
            json!({"routing": {"github_repos": ["acme/search"]}}),
        )
        .await;
    assert_eq!(a.status, 200);

    let bus = bus(&stack).await;
    let dry = replay(
        &bus,
        &key(),
        &Selection::deadletter(Some("no_route")),
        &Options {
            dry_run: true,
            ..Options::default()
        },
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!((dry.matched, dry.republished), (1, 0));
    for _ in 0..2 {
        let s = replay(
            &bus,
            &key(),
            &Selection::deadletter(Some("no_route")),
            &Options::default(),
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(s.republished, 1);
        drained(&stack.js, WAIT).await;
    }
    let run = json_of(
        &last_on(
            &stack.js,
            "AGENT_RUNS",
            "ifox.agent.shared.acme.search",
            WAIT,
        )
        .await,
    );
    assert_eq!(run["team_id"], "search");
    assert_eq!(
        runs_recorded(&stack.app, &stack.js).await,
        1,
        "dispatched once"
    );
    assert_eq!(stream_count(&stack.js, "AGENT_RUNS").await, 1);
}

/// Waits until the bridge has settled everything in AGENT_RUNS.
/// The bridge has settled every run, and the recorder has recorded every run and transition (the
/// runs table is RUNS's projection: it lags the bridge by a batch).
async fn bridge_drained(js: &async_nats::jetstream::Context) {
    for (stream, consumer) in [
        ("AGENT_RUNS", "bridge"),
        ("AGENT_RUNS", "recorder"),
        ("RUNS", "recorder"),
    ] {
        crate::support::eventually(
            &format!("{stream}/{consumer} to drain"),
            WAIT,
            || async move {
                let stream = js.get_stream(stream).await.ok()?;
                let mut c: async_nats::jetstream::consumer::PullConsumer =
                    stream.get_consumer(consumer).await.ok()?;
                let info = c.info().await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            },
        )
        .await;
    }
}

/// AGENT_RUNS forgets a run id after its duplicate window (1 h; here shortened to 1 s): a plain
/// replay then publishes the run a second time. The bridge finds it recorded from another
/// AGENT_RUNS message and neither records nor delivers it again; a forced replay still makes
/// exactly one new run, delivered once.
async fn a_replay_older_than_the_duplicate_window_makes_no_second_run_or_delivery(
    kind: crate::support::DbKind,
) {
    use crate::bridge_fixtures::{Agent, finished, stack};
    let agent = Agent::start(ifox::bridge::echo::EchoOptions::default()).await;
    let stack = stack(kind, &agent, &[]).await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    github_event(&stack.js, "old-1", "acme/checkout", &[]).await;
    let run = finished(&stack, "old-1", WAIT).await;
    assert_eq!(run["status"], "completed");
    let mut config = stack
        .js
        .get_stream("AGENT_RUNS")
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.duplicate_window = Duration::from_secs(1);
    stack.js.update_stream(config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let bus = bus(&stack).await;
    replay_events(&bus, "ifox.events.github.>", false).await;
    drained(&stack.js, WAIT).await;
    crate::support::eventually("the run published again", WAIT, || async {
        (stream_count(&stack.js, "AGENT_RUNS").await == 2).then_some(())
    })
    .await;
    bridge_drained(&stack.js).await;
    assert_eq!(run_count(&stack.app).await, 1, "no second run record");
    assert_eq!(agent.requests().len(), 1, "no second delivery");

    // Forced, the original event only (stream sequence 1).
    let sel = Selection {
        stream: "EVENTS".into(),
        start_seq: Some(1),
        end_seq: Some(1),
        ..Selection::default()
    };
    let forced = Options {
        force: true,
        ..Options::default()
    };
    let summary = replay(&bus, &key(), &sel, &forced, |_, _| {})
        .await
        .unwrap();
    assert_eq!(summary.republished, 1);
    drained(&stack.js, WAIT).await;
    crate::support::eventually("the forced run delivered", WAIT, || async {
        (agent.requests().len() == 2).then_some(())
    })
    .await;
    bridge_drained(&stack.js).await;
    assert_eq!(run_count(&stack.app).await, 2, "exactly one new run");
    let keys: std::collections::HashSet<_> = agent
        .requests()
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 2, "the forced run is another run: {keys:?}");
    assert!(keys.contains(run["run_id"].as_str().unwrap()));
}

crate::both_databases!(
    replaying_a_dispatched_event_makes_no_second_run_and_forcing_makes_a_new_one,
    a_dead_letter_replayed_after_its_claim_is_added_is_dispatched_once,
    a_replay_older_than_the_duplicate_window_makes_no_second_run_or_delivery,
);
