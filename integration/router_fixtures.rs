//! Router fixtures: publishing events the way an operator does (CloudEvents headers on
//! `ifox.events.<source>.<type>`), reading AGENT_RUNS and DEADLETTER, counting runs.

use crate::support::app::ADMIN_TOKEN;
use crate::support::{TestApp, eventually};
use async_nats::jetstream;
use async_nats::jetstream::message::StreamMessage;
use serde_json::{Value, json};
use std::time::Duration;

/// Publishes one event with PubAck; `routes` become `ifox-route-<kind>` headers.
pub async fn publish_event(
    js: &jetstream::Context,
    source: &str,
    event_type: &str,
    ce_id: Option<&str>,
    routes: &[(&str, &str)],
    extra: &[(&str, &str)],
    body: &[u8],
) -> u64 {
    let mut h = async_nats::HeaderMap::new();
    h.insert("ce-specversion", "1.0");
    if let Some(id) = ce_id {
        h.insert("ce-id", id);
        h.insert("Nats-Msg-Id", format!("{source}:{id}").as_str());
    }
    h.insert("ce-source", source);
    h.insert("ce-type", event_type);
    for (kind, value) in routes {
        h.insert(format!("ifox-route-{kind}").as_str(), *value);
    }
    for (k, v) in extra {
        h.insert(*k, *v);
    }
    let subject = format!("ifox.events.{source}.{}", event_type.replace('.', "_"));
    let ack = js
        .publish_with_headers(subject, h, body.to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("PubAck");
    ack.sequence
}

/// A GitHub `issues` event with body `{}` naming `repo` in its route header.
pub async fn github_event(
    js: &jetstream::Context,
    ce_id: &str,
    repo: &str,
    extra: &[(&str, &str)],
) -> u64 {
    publish_event(
        js,
        "github",
        "issues",
        Some(ce_id),
        &[("github_repos", repo)],
        extra,
        b"{}",
    )
    .await
}

/// The last message stored on `subject` in `stream`, waiting up to `deadline` for it.
pub async fn last_on(
    js: &jetstream::Context,
    stream: &str,
    subject: &str,
    deadline: Duration,
) -> StreamMessage {
    eventually(
        &format!("a message on {subject}"),
        deadline,
        || async move {
            let stream = js.get_stream(stream).await.ok()?;
            stream.get_last_raw_message_by_subject(subject).await.ok()
        },
    )
    .await
}

/// Waits until the router's consumer holds nothing: no pending and no unacknowledged event.
pub async fn drained(js: &jetstream::Context, deadline: Duration) {
    eventually("the router consumer to drain", deadline, || async move {
        let stream = js.get_stream("EVENTS").await.ok()?;
        let mut consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer("router").await.ok()?;
        let info = consumer.info().await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
}

/// The run records once the bridge has recorded every AGENT_RUNS message (run records are its
/// projection of the stream; each message of these tests names its own run).
pub async fn runs_recorded(app: &TestApp, js: &jetstream::Context) -> i64 {
    let published = stream_count(js, "AGENT_RUNS").await as i64;
    eventually(
        "the bridge to record every run",
        Duration::from_secs(15),
        || async {
            let n = run_count(app).await;
            (n >= published).then_some(n)
        },
    )
    .await
}

pub async fn stream_count(js: &jetstream::Context, stream: &str) -> u64 {
    let mut s = js.get_stream(stream).await.expect("stream");
    s.info().await.expect("info").state.messages
}

pub async fn run_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs")
        .fetch_one(app.state.tenancy.store().pool())
        .await
        .expect("count runs");
    n
}

/// org `acme` with teams under a unit; `claims` per team as `(team, kind, value)`.
pub async fn tenants(app: &TestApp, claims: &[(&str, &str, &str)]) {
    app.org("acme").await;
    app.node("acme", "platform", None, "unit").await;
    let mut teams: Vec<&str> = claims.iter().map(|(t, _, _)| *t).collect();
    teams.dedup();
    for team in teams {
        app.node("acme", team, Some("platform"), "team").await;
        let mut routing = serde_json::Map::new();
        for (_, kind, value) in claims.iter().filter(|(t, _, _)| *t == team) {
            routing
                .entry(kind.to_string())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .unwrap()
                .push(json!(value));
        }
        let a = app
            .put(
                &format!("/api/v1/admin/orgs/acme/nodes/{team}/config"),
                ADMIN_TOKEN,
                json!({"routing": routing}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
}

pub fn json_of(msg: &StreamMessage) -> Value {
    serde_json::from_slice(&msg.payload).expect("JSON payload")
}

pub fn header(msg: &StreamMessage, name: &str) -> Option<String> {
    msg.headers.get(name).map(|v| v.as_str().to_owned())
}
