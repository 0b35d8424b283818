//! The database going away under the bridge: an agent's answer that arrives while the run's
//! outcome cannot be recorded is kept and recorded when the database returns; the agent is not
//! asked a second time.

use crate::both_databases;
use crate::bridge_fixtures::*;
use crate::support::db::outage;
use crate::support::{DbKind, eventually};
use ifox::bridge::echo::EchoOptions;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

async fn an_answer_arriving_while_the_database_is_down_is_recorded_when_it_returns(db: DbKind) {
    // The agent answers 3 s after the request; the database goes away as soon as the request
    // arrives and stays away past the answer (SQLite: longer than its 10 s busy timeout).
    let agent = Agent::start(EchoOptions {
        delay: Duration::from_secs(3),
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(db, &agent, &[]).await;
    team(&stack, "svc", json!({})).await;
    let a = stack.send(&issue("svc", "d-outage")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    eventually("the agent to be asked", Duration::from_secs(20), || async {
        (!agent.requests().is_empty()).then_some(())
    })
    .await;
    let down_for = match db {
        DbKind::Postgres => Duration::from_secs(8),
        DbKind::Sqlite => Duration::from_secs(14),
    };
    outage(db, &stack.app.db.url, down_for).await;

    let run = finished(&stack, "d-outage", Duration::from_secs(60)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert!(
        run["result_text"]
            .as_str()
            .is_some_and(|t| t.contains("checkout is down")),
        "the answer given during the outage is the one recorded: {run}"
    );
    // Whatever redelivery the outage caused (none should), give it time to reach the agent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked: Vec<_> = agent
        .requests()
        .into_iter()
        .filter(|r| r.idempotency_key.as_deref() == run["run_id"].as_str())
        .collect();
    assert_eq!(asked.len(), 1, "the agent was asked once: {asked:?}");
    assert_eq!(run["attempts"], 1, "{run}");
}

both_databases!(an_answer_arriving_while_the_database_is_down_is_recorded_when_it_returns);

/// DEADLETTER is away when a run fails (the agent refuses it, 401): the run is recorded `failed`
/// and its dead letter is kept trying — not NAKed into a redelivery that would find the run
/// finished and ack it with no dead letter. When DEADLETTER returns, the dead letter is there; the
/// agent was asked once.
#[tokio::test]
async fn a_dead_letter_that_cannot_be_stored_yet_is_stored_when_deadletter_returns() {
    let agent = Agent::start(EchoOptions {
        service_token: Some("the-agent-wants-this".into()),
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(DbKind::Sqlite, &agent, &[]).await;
    team(&stack, "svc", json!({})).await;
    stack.js.delete_stream("DEADLETTER").await.unwrap();
    let a = stack.send(&issue("svc", "d-refused")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let run = finished(&stack, "d-refused", Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed", "{run}");
    // Longer than a NAK's redelivery would take to find the run finished.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ifox::bus::streams::apply(&stack.js, &ifox::bus::StreamSpec::embedded().unwrap())
        .await
        .unwrap();
    let letter = crate::router_fixtures::last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.bridge.agent_refused",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        letter.headers.get("Ifox-DL-Reason").map(|v| v.as_str()),
        Some("agent_refused")
    );
    assert_eq!(agent.requests().len(), 1, "the agent was asked once");
}
