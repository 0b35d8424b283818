//! The run record is the recorder's projection of RUNS: only transitions signed with the bridge's
//! key change a run (the feed is open to read, the record is not open to write; a wrong signature
//! is a dead letter, not a silent drop), and a transition
//! that arrives before the one that makes its run's record (a crashed recorder's messages come back
//! behind newer ones) waits for it instead of being lost.

use crate::bridge_fixtures::*;
use crate::support::app::ADMIN_TOKEN;
use crate::support::{DbKind, eventually};
use async_nats::jetstream;
use ifox::bridge::echo::{EchoOptions, FailMode};
use ifox::bridge::lifecycle::{Transition, record_key, sign};
use ifox::store::runs::RunRow;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn transition(run_id: &str, team: &str, status: &str, result: Option<&str>) -> Transition {
    Transition {
        schema: "ifox.run_status.v1".into(),
        run_id: run_id.into(),
        event_id: format!("e-{run_id}"),
        org_id: "acme".into(),
        team_id: team.into(),
        status: status.into(),
        at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        detail: None,
        error: None,
        result: result.map(str::to_owned),
        deadline_at: None,
        attempt: false,
        delivered_to: None,
        protocol: None,
        run: None,
    }
}

/// Publishes `t` on its RUNS subject with `Nats-Msg-Id` `msg_id`, signed with `key` when given.
async fn publish(js: &jetstream::Context, t: &Transition, msg_id: &str, key: Option<&[u8]>) {
    let subject = format!("ifox.runs.{}.{}.{}", t.org_id, t.team_id, t.status);
    let body = serde_json::to_vec(t).unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    if let Some(key) = key {
        headers.insert(
            "Ifox-Record-Sig",
            sign(key, &subject, msg_id, &body).as_str(),
        );
    }
    js.publish_with_headers(subject, headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn run(stack: &crate::ingest_fixtures::Stack, run_id: &str) -> (u16, Value) {
    let a = stack
        .app
        .get(
            &format!("/api/v1/admin/orgs/acme/runs/{run_id}"),
            ADMIN_TOKEN,
        )
        .await;
    (a.status.as_u16(), a.body)
}

#[tokio::test]
async fn only_the_bridges_signed_transitions_change_a_run() {
    // `ifox` protocol, cut: the agent accepts (202), says running, then nothing; the run stays
    // `running` for its 5 minutes unless someone finishes it.
    let mute = Agent::start(EchoOptions {
        fail: FailMode::CutStream,
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(DbKind::Sqlite, &mute, &[]).await;
    team(
        &stack,
        "walled",
        json!({"agent_protocol": "ifox", "agent_timeout_seconds": 300}),
    )
    .await;
    send(&stack, "walled", "d-walled").await;
    let running = eventually("the run running", WAIT, || async {
        let runs = runs_of(&stack, "d-walled").await;
        let run = runs.first()?.clone();
        (run["status"] == "running").then_some(run)
    })
    .await;
    let run_id = running["run_id"].as_str().unwrap().to_owned();
    let key = record_key(&stack.app.state.run_token_key);
    // Anyone who may publish on ifox.runs.> : unsigned, and signed with another key.
    let forged = transition(&run_id, "walled", "completed", Some("forged"));
    publish(&stack.js, &forged, &format!("{run_id}:completed"), None).await;
    let other = record_key(b"not the bridge's key");
    publish(
        &stack.js,
        &forged,
        &format!("{run_id}:completed:x"),
        Some(&other),
    )
    .await;
    // A signed message with the same run, published after them: RUNS's order puts the forgeries
    // first, so once it applied they were read and left alone.
    let signed = transition(&run_id, "walled", "failed", Some("signed"));
    publish(&stack.js, &signed, &format!("{run_id}:failed"), Some(&key)).await;
    let body = eventually("the signed outcome recorded", WAIT, || async {
        let (status, body) = run(&stack, &run_id).await;
        (status == 200 && body["status"] != "running").then_some(body)
    })
    .await;
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["result_text"], "signed", "{body}");
    let statuses: Vec<&str> = body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    assert!(!statuses.contains(&"completed"), "{statuses:?}");
    // The wrongly signed one is not dropped silently: it is a dead letter with its reason.
    let dl = stack
        .js
        .get_stream("DEADLETTER")
        .await
        .unwrap()
        .get_last_raw_message_by_subject("ifox.deadletter.recorder.bad_signature")
        .await;
    assert!(dl.is_ok(), "a bad_signature dead letter: {:?}", dl.err());
}

#[tokio::test]
async fn a_transition_that_comes_before_its_runs_record_is_applied_once_the_record_exists() {
    let agent = Agent::start(EchoOptions::default()).await;
    let stack = stack(DbKind::Sqlite, &agent, &[]).await;
    team(&stack, "early", json!({})).await;
    let key = record_key(&stack.app.state.run_token_key);
    let run_id = "0190f3b2-0000-8000-8000-00000000e4a1";
    let done = transition(run_id, "early", "completed", Some("done before recorded"));
    publish(&stack.js, &done, &format!("{run_id}:completed"), Some(&key)).await;
    // Read, not dropped: the run has no record, so nothing shows yet.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(run(&stack, run_id).await.0, 404);
    // The bridge's `delivering`, carrying the record, arrives late (as after a recorder crash).
    let mut delivering = transition(run_id, "early", "delivering", None);
    delivering.attempt = true;
    delivering.run = Some(RunRow {
        run_id: run_id.into(),
        event_id: format!("e-{run_id}"),
        org_id: "acme".into(),
        team_id: "early".into(),
        source: "github".into(),
        event_type: "issues".into(),
        deployment_mode: "shared".into(),
        subject: "ifox.agent.shared.acme.early".into(),
        config_version: String::new(),
        status: "queued".into(),
        replay_of: None,
        matched: String::new(),
        dispatched_at: Some(1),
        created_at: 1,
        agent_runs_seq: None,
    });
    publish(
        &stack.js,
        &delivering,
        &format!("{run_id}:delivering:1"),
        Some(&key),
    )
    .await;
    let body = eventually("the early outcome applied", WAIT, || async {
        let (status, body) = run(&stack, run_id).await;
        (status == 200 && body["status"] == "completed").then_some(body)
    })
    .await;
    assert_eq!(body["result_text"], "done before recorded", "{body}");
    assert_eq!(body["attempts"], 1, "{body}");
}
