//! The bridge end to end: a signed webhook becomes a run that reaches the team's agent and ends
//! with a recorded outcome, in both protocols, for shared and dedicated teams; retries, exhaustion,
//! timeouts, the sweeper, the SSRF guard, run tokens and a mode change while a run waited.

use crate::both_databases;
use crate::bridge_fixtures::*;
use crate::ingest_fixtures::Stack;
use crate::router_fixtures::last_on;
use crate::support::app::{ADMIN_TOKEN, TestApp};
use crate::support::{DbKind, TestDb, eventually};
use ifox::app::Role;
use ifox::bridge::echo::{EchoOptions, FailMode};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn shared_and_dedicated_teams_complete_in_both_protocols(db: DbKind) {
    let shared = Agent::start(EchoOptions::default()).await;
    let dedicated = Agent::start(EchoOptions::default()).await;
    let stack = stack(db, &shared, &[]).await;
    let cases = [
        ("shared-sse", json!({}), &shared),
        ("shared-ifox", json!({"agent_protocol": "ifox"}), &shared),
        (
            "dedicated-sse",
            json!({"agent_service_url": dedicated.url, "agent_protocol": "investigate"}),
            &dedicated,
        ),
        (
            "dedicated-ifox",
            json!({"agent_service_url": dedicated.url, "agent_protocol": "ifox"}),
            &dedicated,
        ),
    ];
    for (name, config, _) in &cases {
        team(&stack, name, config.clone()).await;
    }
    for (name, _, _) in &cases {
        send(&stack, name, &format!("d-{name}")).await;
    }
    for (name, _, agent) in &cases {
        let run = finished(&stack, &format!("d-{name}"), WAIT).await;
        assert_eq!(run["status"], "completed", "{name}: {run}");
        assert!(
            run["result_text"]
                .as_str()
                .is_some_and(|t| t.contains("checkout is down")),
            "{name}: the agent's answer is kept: {run}"
        );
        assert_eq!(
            statuses(&run),
            ["queued", "delivering", "running", "completed"][1..],
            "{name}"
        );
        assert_eq!(run["delivered_to"], agent.url.as_str(), "{name}");
        let seen: Vec<_> = agent
            .requests()
            .into_iter()
            .filter(|r| r.idempotency_key.as_deref() == run["run_id"].as_str())
            .collect();
        assert_eq!(seen.len(), 1, "{name}: one delivery");
        assert_eq!(seen[0].team_id.as_deref(), Some(*name));
    }
    // Every transition is on RUNS for NATS followers.
    let run = finished(&stack, "d-shared-sse", WAIT).await;
    let msg = last_on(
        &stack.js,
        "RUNS",
        "ifox.runs.acme.shared-sse.completed",
        WAIT,
    )
    .await;
    let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(body["run_id"], run["run_id"]);
    assert_eq!(body["status"], "completed");
}

async fn an_agent_that_fails_twice_then_answers_completes_the_run_once(db: DbKind) {
    let shared = Agent::start(EchoOptions {
        fail: FailMode::Http500FirstN(2),
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(db, &shared, &[]).await;
    team(&stack, "flaky", json!({})).await;
    send(&stack, "flaky", "d-flaky").await;
    let run = finished(&stack, "d-flaky", WAIT).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["attempts"], 3);
    let seen = shared.requests();
    let statuses: Vec<u16> = seen.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200], "exactly one successful delivery");
    assert!(
        seen.iter()
            .all(|r| r.idempotency_key.as_deref() == run["run_id"].as_str()),
        "every attempt carries the run id as Idempotency-Key"
    );
}

both_databases!(
    shared_and_dedicated_teams_complete_in_both_protocols,
    an_agent_that_fails_twice_then_answers_completes_the_run_once,
);

#[tokio::test]
async fn an_agent_down_past_the_retry_budget_fails_the_run_with_a_dead_letter() {
    let shared = Agent::start(EchoOptions::default()).await;
    // A port nothing listens on.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let stack = stack(
        DbKind::Sqlite,
        &shared,
        &[("IFOX__BRIDGE__MAX_ATTEMPTS", "3")],
    )
    .await;
    team(&stack, "down", json!({"agent_service_url": gone})).await;
    send(&stack, "down", "d-down").await;
    // Not before its attempts are spent: the message is held, not acked.
    let run = finished(&stack, "d-down", WAIT).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["attempts"], 3);
    assert!(
        run["error"].as_str().unwrap().contains("cannot connect"),
        "{run}"
    );
    let letter = last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.bridge.agent_unavailable",
        WAIT,
    )
    .await;
    let attempts = letter.headers.get("Ifox-DL-Attempts").unwrap().as_str();
    assert_eq!(attempts, "3");
    let doc: serde_json::Value = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(doc["run_id"], run["run_id"], "the dead letter is the run");
    assert!(
        shared.requests().is_empty(),
        "never sent to the shared agent"
    );
}

#[tokio::test]
async fn an_agent_that_never_answers_times_the_run_out_at_its_timeout() {
    let hang = Agent::start(EchoOptions {
        fail: FailMode::Hang,
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(DbKind::Sqlite, &hang, &[]).await;
    team(&stack, "slow", json!({"agent_timeout_seconds": 2})).await;
    send(&stack, "slow", "d-slow").await;
    let run = finished(&stack, "d-slow", WAIT).await;
    assert_eq!(run["status"], "timeout", "{run}");
    let took = run["finished_at"].as_i64().unwrap() - run["delivering_at"].as_i64().unwrap();
    assert!((1_900..6_000).contains(&took), "timed out after {took} ms");
}

#[tokio::test]
async fn the_sweeper_times_out_an_accepted_run_that_is_never_reported() {
    // `ifox` protocol, cut: the agent accepts (202), says running, then nothing.
    let mute = Agent::start(EchoOptions {
        fail: FailMode::CutStream,
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(DbKind::Sqlite, &mute, &[]).await;
    team(
        &stack,
        "mute",
        json!({"agent_protocol": "ifox", "agent_timeout_seconds": 1}),
    )
    .await;
    send(&stack, "mute", "d-mute").await;
    let run = finished(&stack, "d-mute", WAIT).await;
    assert_eq!(run["status"], "timeout", "{run}");
    let last = run["transitions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last["detail"].as_str().unwrap().contains("swept"), "{last}");
}

#[tokio::test]
async fn a_url_outside_the_allowed_patterns_is_never_called() {
    let shared = Agent::start(EchoOptions::default()).await;
    // Loopback, but not the host the allowed pattern names.
    let outside = Agent::start_on("127.0.0.2", EchoOptions::default()).await;
    let stack = stack(DbKind::Sqlite, &shared, &[]).await;
    team(&stack, "rogue", json!({"agent_service_url": outside.url})).await;
    send(&stack, "rogue", "d-rogue").await;
    let run = finished(&stack, "d-rogue", WAIT).await;
    assert_eq!(run["status"], "failed", "{run}");
    let letter = last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.bridge.url_not_allowed",
        WAIT,
    )
    .await;
    assert!(letter.headers.get("Ifox-DL-Detail").is_some());
    assert!(outside.requests().is_empty(), "the outside URL was called");
    assert!(shared.requests().is_empty(), "no silent fallback to shared");
}

#[tokio::test]
async fn a_run_whose_team_left_its_dedicated_runtime_while_waiting_goes_to_the_shared_one() {
    let shared = Agent::start(EchoOptions::default()).await;
    let dedicated = Agent::start(EchoOptions::default()).await;
    // Every role but the bridge: the run waits in AGENT_RUNS.
    let nats = crate::support::NatsServer::start().await;
    let db = TestDb::new(DbKind::Sqlite).await;
    let db_url = db.url.clone();
    let mut env = bridge_env(&shared);
    env.push(("IFOX__NATS__URL".into(), nats.url()));
    env.push((
        "IFOX__INGEST__SECRETS__GITHUB".into(),
        crate::ingest_fixtures::GITHUB.into(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let front = TestApp::spawn_roles(db, &env, &[Role::Admin, Role::Ingest, Role::Router]).await;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stack = Stack {
        nats,
        app: front,
        js,
    };
    team(
        &stack,
        "moving",
        json!({"agent_service_url": dedicated.url}),
    )
    .await;
    send(&stack, "moving", "d-moving").await;
    last_on(
        &stack.js,
        "AGENT_RUNS",
        "ifox.agent.dedicated.acme.moving",
        WAIT,
    )
    .await;
    // Back to shared (the dedicated service is being deleted), then the bridge starts.
    let a = stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/nodes/moving/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": null}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let _bridge = TestApp::spawn_roles(
        TestDb::shared(&db_url),
        &env,
        &[Role::Bridge, Role::Recorder],
    )
    .await;
    let run = finished(&stack, "d-moving", WAIT).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["delivered_to"], shared.url.as_str());
    let delivering = run["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "delivering")
        .unwrap()
        .clone();
    let detail = delivering["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("routed to dedicated") && detail.contains("delivered to shared"),
        "the change is recorded: {detail}"
    );
    assert!(
        dedicated.requests().is_empty(),
        "never sent to the old runtime"
    );
    eventually("one shared delivery", WAIT, || async {
        (shared.requests().len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_first_event_command_sends_a_sample_and_reports_the_agents_answer() {
    let shared = Agent::start(EchoOptions::default()).await;
    let stack = stack(DbKind::Sqlite, &shared, &[]).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ifox"))
        .args(["dev", "send", "github", "--url", &stack.app.base])
        .env("IFOX__ADMIN__TOKEN", ADMIN_TOKEN)
        .env(
            "IFOX__INGEST__SECRETS__GITHUB",
            crate::ingest_fixtures::GITHUB,
        )
        .env("IFOX__LOG__LEVEL", "error")
        .output()
        .await
        .expect("run ifox dev send");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is completed"), "{stdout}");
    assert!(stdout.contains("agent: echo: GitHub issue #1"), "{stdout}");
    assert_eq!(shared.requests().len(), 1);
}
