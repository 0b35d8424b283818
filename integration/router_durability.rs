//! Durability of the router and of the run records that follow it: a router process killed
//! mid-batch loses and duplicates nothing; during a database outage events keep flowing to
//! AGENT_RUNS and the bridge records and delivers them when it returns, each once — also an outage
//! longer than the old two-minute budget with a rolling restart of the router in the middle. Both
//! databases where it is cheap, PostgreSQL for the long outage.

use crate::bridge_fixtures::{Agent, bridge_env};
use crate::router_fixtures::*;
use crate::support::db::outage;
use crate::support::{DbKind, NatsServer, TestApp, TestDb, eventually};
use async_nats::jetstream;
use ifox::app::Role;
use ifox::bridge::echo::EchoOptions;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TEAMS: usize = 10;

async fn setup(kind: DbKind) -> (NatsServer, TestApp, jetstream::Context) {
    let nats = NatsServer::start().await;
    let db = TestDb::new(kind).await;
    let url = nats.url();
    let admin = TestApp::spawn_roles(db, &[("IFOX__NATS__URL", &url)], &[Role::Admin]).await;
    let claims: Vec<(String, String)> = (0..TEAMS)
        .map(|i| (format!("svc-{i}"), format!("acme/svc-{i}")))
        .collect();
    let claims: Vec<(&str, &str, &str)> = claims
        .iter()
        .map(|(t, r)| (t.as_str(), "github_repos", r.as_str()))
        .collect();
    tenants(&admin, &claims).await;
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    eventually("the streams", Duration::from_secs(10), || async {
        js.get_stream("EVENTS").await.ok()
    })
    .await;
    (nats, admin, js)
}

async fn preload(js: &jetstream::Context, n: usize, prefix: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut acks = Vec::new();
        for &i in chunk {
            let mut h = async_nats::HeaderMap::new();
            h.insert("ce-id", format!("{prefix}-{i}").as_str());
            h.insert("ce-source", "github");
            h.insert("ce-type", "issues");
            h.insert("Nats-Msg-Id", format!("github:{prefix}-{i}").as_str());
            h.insert(
                "ifox-route-github_repos",
                format!("acme/svc-{}", i % TEAMS).as_str(),
            );
            acks.push(
                js.publish_with_headers("ifox.events.github.issues", h, "{}".into())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
}

/// A router process, killed when dropped (also when a test fails half-way).
struct RouterProcess(Child);

impl RouterProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn router_process(db_url: &str, nats_url: &str) -> RouterProcess {
    RouterProcess(spawn_router(db_url, nats_url))
}

fn spawn_router(db_url: &str, nats_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ifox"))
        .args(["serve", "--roles", "router"])
        // As in production: a router pod holds the replay key, not the admin token.
        .env("IFOX__ROUTER__REPLAY_KEY", "test-replay-key")
        .env("IFOX__DATABASE__URL", db_url)
        .env("IFOX__NATS__URL", nats_url)
        .env("IFOX__HTTP__LISTEN", "127.0.0.1:0")
        .env("IFOX__LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the router process")
}

/// A bridge (own app, on the shared database) delivering to an echo agent that counts requests.
async fn bridge(db_url: &str, nats_url: &str) -> (TestApp, Agent) {
    let agent = Agent::start(EchoOptions {
        max_concurrent: 64,
        ..EchoOptions::default()
    })
    .await;
    let mut env: Vec<(String, String)> = bridge_env(&agent);
    env.push(("IFOX__NATS__URL".into(), nats_url.into()));
    env.push(("IFOX__BRIDGE__MAX_CONCURRENT_AGENTS".into(), "50".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_roles(
        TestDb::shared(db_url),
        &env,
        &[Role::Bridge, Role::Recorder],
    )
    .await;
    (app, agent)
}

/// Distinct run ids the agent was asked about, with how many requests each got.
fn requests_per_run(agent: &Agent) -> HashMap<String, usize> {
    let mut per_run = HashMap::new();
    for r in agent.requests() {
        *per_run
            .entry(r.idempotency_key.unwrap_or_default())
            .or_default() += 1;
    }
    per_run
}

/// Completed runs in the database.
async fn completed(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs WHERE status = 'completed'")
        .fetch_one(app.state.tenancy.store().pool())
        .await
        .unwrap_or((-1,));
    n
}

/// After the load: every event one run record, completed, one agent request per run, nothing
/// dead-lettered.
async fn each_event_once(admin: &TestApp, agent: &Agent, js: &jetstream::Context, n: usize) {
    eventually(
        "every run recorded and completed",
        Duration::from_secs(180),
        || async { (completed(admin).await == n as i64).then_some(()) },
    )
    .await;
    assert_eq!(run_count(admin).await, n as i64, "one run record per event");
    assert_eq!(
        stream_count(js, "AGENT_RUNS").await,
        n as u64,
        "one AGENT_RUNS message per event"
    );
    let per_run = requests_per_run(agent);
    assert_eq!(per_run.len(), n, "every run reached the agent");
    let doubled: Vec<_> = per_run.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        doubled.is_empty(),
        "runs delivered more than once: {doubled:?}"
    );
    assert_eq!(
        stream_count(js, "DEADLETTER").await,
        0,
        "nothing dead-lettered"
    );
}

async fn killing_the_router_mid_batch_dispatches_every_event_exactly_once(kind: DbKind) {
    const N: usize = 5_000;
    let (nats, admin, js) = setup(kind).await;
    preload(&js, N, "kill").await;
    let mut router = router_process(&admin.db.url, &nats.url());
    eventually(
        "the router to be part-way through",
        Duration::from_secs(60),
        || async { (stream_count(&js, "AGENT_RUNS").await >= 300).then_some(()) },
    )
    .await;
    router.kill();
    let at_kill = stream_count(&js, "AGENT_RUNS").await;
    assert!(
        at_kill < N as u64,
        "killed mid-batch ({at_kill} of {N} done)"
    );
    assert_eq!(
        run_count(&admin).await,
        0,
        "the router writes no run record: they follow from AGENT_RUNS"
    );

    let mut router = router_process(&admin.db.url, &nats.url());
    // Deliveries the killed process held come back after the consumer's ack_wait (30 s).
    eventually(
        "every event to be dispatched",
        Duration::from_secs(150),
        || async { (stream_count(&js, "AGENT_RUNS").await == N as u64).then_some(()) },
    )
    .await;
    drained(&js, Duration::from_secs(60)).await;
    router.kill();
    // The records and deliveries follow from the log.
    let (_bridge, agent) = bridge(&admin.db.url, &nats.url()).await;
    each_event_once(&admin, &agent, &js, N).await;
}

async fn events_flow_while_the_database_is_down_and_are_recorded_when_it_returns(kind: DbKind) {
    const N: usize = 50;
    let (nats, admin, js) = setup(kind).await;
    let url = nats.url();
    let _router = TestApp::spawn_roles(
        TestDb::shared(&admin.db.url),
        &[("IFOX__NATS__URL", &url)],
        &[Role::Router],
    )
    .await;
    let (_bridge, agent) = bridge(&admin.db.url, &url).await;
    let down_for = if kind == DbKind::Sqlite {
        Duration::from_secs(12)
    } else {
        Duration::from_secs(6)
    };
    let db_url = admin.db.url.clone();
    let down = tokio::spawn(async move { outage(kind, &db_url, down_for).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    preload(&js, N, "outage").await;
    eventually(
        "the events to reach AGENT_RUNS while the database is down",
        Duration::from_secs(4),
        || async { (stream_count(&js, "AGENT_RUNS").await == N as u64).then_some(()) },
    )
    .await;
    assert!(!down.is_finished(), "routed during the outage");
    // Deliveries may go on meanwhile (the bridge's path reads no database): their transitions wait
    // in RUNS for the recorder.
    down.await.unwrap();
    each_event_once(&admin, &agent, &js, N).await;
}

/// An outage longer than the old budget (10 deliveries ≈ 2 min of NAK delays, then every waiting
/// event was a `max_deliveries` dead letter) under load, with a rolling restart of the router in
/// the middle: the new router process waits for the database at start-up, the old one is killed
/// (-9). Events keep reaching AGENT_RUNS while the old router lives; afterwards every event has
/// one run record and one delivery, and nothing is dead-lettered. `IFOX_TEST_OUTAGE_SECS` sets the
/// outage (default 150 s).
#[tokio::test]
async fn a_database_outage_longer_than_the_old_budget_with_a_rolling_router_restart_loses_nothing()
{
    let down_for = Duration::from_secs(
        std::env::var("IFOX_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
    );
    let (nats, admin, js) = setup(DbKind::Postgres).await;
    let mut old = router_process(&admin.db.url, &nats.url());
    let (_bridge, agent) = bridge(&admin.db.url, &nats.url()).await;
    eventually("the router to consume", Duration::from_secs(30), || async {
        github_event(&js, "warm-up", "acme/svc-0", &[]).await;
        (stream_count(&js, "AGENT_RUNS").await == 1).then_some(())
    })
    .await;
    let db_url = admin.db.url.clone();
    let down = tokio::spawn(async move { outage(DbKind::Postgres, &db_url, down_for).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = tokio::time::Instant::now();
    let (mut sent, mut restarted, mut new) = (1usize, false, None);
    let mut routed_during = 0;
    while started.elapsed() < down_for {
        preload(&js, 10, &format!("load-{sent}")).await;
        sent += 10;
        if !restarted && started.elapsed() >= down_for / 2 {
            routed_during = stream_count(&js, "AGENT_RUNS").await;
            // The new process first (it waits for the database), then the old one goes.
            new = Some(router_process(&admin.db.url, &nats.url()));
            old.kill();
            restarted = true;
            eprintln!(
                "outage {:?}: {sent} events sent, {routed_during} in AGENT_RUNS; router restarted",
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        routed_during > 100,
        "events kept flowing to AGENT_RUNS during the outage ({routed_during})"
    );
    down.await.unwrap();
    eprintln!(
        "database back after {:?}; {sent} events sent",
        started.elapsed()
    );
    // preload numbers events within each batch: ids are `load-<batch>-<i>`, all distinct.
    each_event_once(&admin, &agent, &js, sent).await;
    drop(new);
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_on_its_last_delivery() {
    let (nats, admin, js) = setup(DbKind::Sqlite).await;
    let url = nats.url();
    let extra = [
        ("IFOX__NATS__URL", url.as_str()),
        ("IFOX__ROUTER__MAX_DELIVER", "2"),
    ];
    let _router =
        TestApp::spawn_roles(TestDb::shared(&admin.db.url), &extra, &[Role::Router]).await;
    // Once the router has applied its streams and routes, AGENT_RUNS is sealed: every publish of a
    // run then fails (transient), on both deliveries.
    github_event(&js, "fine", "acme/svc-1", &[]).await;
    eventually("the router to route", Duration::from_secs(30), || async {
        (stream_count(&js, "AGENT_RUNS").await == 1).then_some(())
    })
    .await;
    // Sealed: it refuses every publish, and unlike a deleted stream no re-apply of the stream files
    // (after a reconnect under load) can bring it back mid-test.
    let mut config = js
        .get_stream("AGENT_RUNS")
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.sealed = true;
    js.update_stream(config).await.unwrap();
    let seq = github_event(&js, "doomed", "acme/svc-1", &[]).await;
    let dl = last_on(
        &js,
        "DEADLETTER",
        "ifox.deadletter.router.max_deliveries",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(header(&dl, "Ifox-DL-Stream-Seq"), Some(seq.to_string()));
    assert_eq!(header(&dl, "Ifox-DL-Attempts").as_deref(), Some("2"));
    assert_eq!(header(&dl, "ce-id").as_deref(), Some("doomed"));
    // Dead-lettered by the router itself, then terminated: no advisory is needed, none repeats it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stream_count(&js, "DEADLETTER").await, 1);
}

crate::both_databases!(
    killing_the_router_mid_batch_dispatches_every_event_exactly_once,
    events_flow_while_the_database_is_down_and_are_recorded_when_it_returns,
);
