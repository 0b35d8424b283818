//! The raw JetStream chain: the NATS work of the pipeline without ifox, the floor to compare ifox
//! with, on the same nats-server and to the same echo agent.
//!
//! 1. the client publishes the event (the CloudEvents headers ingest would write, the same body)
//!    with a PubAck, as ingest does after verifying a webhook;
//! 2. a durable pull consumer (`ROUTER_CONCURRENCY` at a time, as the router) publishes a small run
//!    message (PubAck, `Nats-Msg-Id` = run id) and acks the event;
//! 3. a durable pull consumer (at most `teams × max_concurrent_agents` at a time, as the bridge)
//!    POSTs `/investigate` with ifox's own agent client ([`ifox::bridge::deliver::Agents`], so the
//!    HTTP and SSE side is the same code), reads the answer to its result and acks the run.
//!
//! Its streams and consumers are EVENTS / AGENT_RUNS and the router's / bridge's committed
//! definitions under other names and subjects (`bench.raw.…`), so ifox's consumers never see them.
//! What ifox does beyond this is its own work: signature check, routing, run records in SQLite,
//! the run's event read back from EVENTS, lifecycle announcements on RUNS, run tokens.

use crate::AnyResult;
use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use ifox::bridge::deliver::{Agents, Call, Delivered};
use ifox::bus::StreamSpec;
use ifox::bus::consumer::{BRIDGE, ROUTER};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the router runs at once by default (`router.concurrency`).
pub const ROUTER_CONCURRENCY: usize = 64;

pub struct Chain {
    js: jetstream::Context,
    stop: CancellationToken,
    /// Messages a stage could not finish (NAKed for redelivery); 0 in a clean run.
    pub failures: Arc<AtomicU64>,
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A stream of `streams/` under another name and subject.
async fn stream_like(
    js: &jetstream::Context,
    of: &str,
    name: &str,
    subject: &str,
) -> AnyResult<()> {
    let spec = StreamSpec::embedded()?
        .into_iter()
        .find(|s| s.name() == of)
        .ok_or("no such stream in streams/")?;
    let mut config = spec.config().clone();
    config.insert("name".into(), json!(name));
    config.insert("subjects".into(), json!([subject]));
    let config: jetstream::stream::Config = serde_json::from_value(Value::Object(config))?;
    js.create_stream(config).await?;
    Ok(())
}

/// A committed consumer definition, renamed and filtered onto the raw chain's stream.
async fn consumer_like(
    js: &jetstream::Context,
    mut config: pull::Config,
    stream: &str,
    subject: &str,
) -> AnyResult<pull::Stream> {
    config.durable_name = Some(format!("raw-{stream}").to_lowercase());
    config.filter_subject = subject.to_owned();
    let batch = config.max_ack_pending.clamp(1, 512) as usize;
    let consumer = js.get_stream(stream).await?.create_consumer(config).await?;
    Ok(consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?)
}

impl Chain {
    pub async fn start(
        js: &jetstream::Context,
        agent: &str,
        deliveries: usize,
    ) -> AnyResult<Chain> {
        stream_like(js, "EVENTS", "RAW_EVENTS", "bench.raw.events.>").await?;
        stream_like(js, "AGENT_RUNS", "RAW_RUNS", "bench.raw.runs.>").await?;
        let events = consumer_like(js, ROUTER.config(0)?, "RAW_EVENTS", "bench.raw.events.>");
        let runs = consumer_like(js, BRIDGE.config(0)?, "RAW_RUNS", "bench.raw.runs.>");
        let (events, runs) = (events.await?, runs.await?);
        let stop = CancellationToken::new();
        let failures = Arc::new(AtomicU64::new(0));
        let route = {
            let (js, failures) = (js.clone(), failures.clone());
            events
                .take_until(stop.clone().cancelled_owned())
                .for_each_concurrent(ROUTER_CONCURRENCY, move |m| {
                    let (js, failures) = (js.clone(), failures.clone());
                    async move {
                        if let Err(e) = route(&js, m).await {
                            failures.fetch_add(1, Ordering::Relaxed);
                            eprintln!("raw chain, route: {e}");
                        }
                    }
                })
        };
        let agents = Agents::new(Duration::from_secs(5), None, 64 * 1024);
        let deliver = {
            let (failures, agent) = (failures.clone(), agent.to_owned());
            runs.take_until(stop.clone().cancelled_owned())
                .for_each_concurrent(deliveries, move |m| {
                    let (failures, agents, agent) =
                        (failures.clone(), agents.clone(), agent.clone());
                    async move {
                        if let Err(e) = deliver(&agents, &agent, m).await {
                            failures.fetch_add(1, Ordering::Relaxed);
                            eprintln!("raw chain, deliver: {e}");
                        }
                    }
                })
        };
        tokio::spawn(route);
        tokio::spawn(deliver);
        Ok(Chain {
            js: js.clone(),
            stop,
            failures,
        })
    }

    /// Publishes webhook `n`'s event for team `team` and waits for its PubAck.
    pub async fn publish(&self, n: u64, team: &str, body: bytes::Bytes) -> AnyResult<()> {
        let e = crate::common::github_issue_envelope(format!("raw-{n}"), &format!("acme/{team}"));
        let subject = "bench.raw.events.github.issues";
        self.js
            .publish_with_headers(subject, e.headers, body)
            .await?
            .await?;
        Ok(())
    }
}

type Pulled = Result<jetstream::Message, pull::MessagesError>;

/// Stage 2: the event → a run message (PubAck) → ack.
async fn route(js: &jetstream::Context, m: Pulled) -> AnyResult<()> {
    let m = m?;
    let header = |name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .ok_or(format!("no {name} header"))
    };
    let (id, repo) = (header("ce-id")?, header("ifox-route-github_repos")?);
    let team = repo.rsplit('/').next().unwrap_or_default().to_owned();
    let n: u64 = id.trim_start_matches("raw-").parse()?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let run = json!({"schema": "ifox.agent_run.v1", "run_id": run_id, "event_id": format!("github:{id}"),
        "org_id": "acme", "team_id": team, "source": "github", "event_type": "issues",
        "deployment_mode": "shared", "n": n, "event_seq": m.info()?.stream_sequence});
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", run_id.as_str());
    let subject = format!("bench.raw.runs.acme.{team}");
    js.publish_with_headers(subject, h, serde_json::to_vec(&run)?.into())
        .await?
        .await?;
    m.double_ack().await?;
    Ok(())
}

/// Stage 3: the run → `POST /investigate`, its answer read to the result → ack.
async fn deliver(agents: &Agents, agent: &str, m: Pulled) -> AnyResult<()> {
    let m = m?;
    let run: Value = serde_json::from_slice(&m.payload)?;
    let (n, team) = (
        run["n"].as_u64().unwrap_or(0),
        run["team_id"].as_str().unwrap_or(""),
    );
    let body = json!({
        "prompt": format!("GitHub issue #{n} opened in acme/{team} by dev: checkout is down"),
        "team_token": "raw-chain-token",
        "thread_id": format!("raw-issue-{n}"),
        "tenant_id": "acme",
        "team_id": team,
    });
    let call = Call {
        base: agent,
        run_id: run["run_id"].as_str().unwrap_or(""),
        traceparent: None,
        body: &body,
        deadline: Duration::from_secs(30),
    };
    match agents.investigate(&call, || async {}).await {
        Delivered::Finished { success: true, .. } => {
            m.double_ack().await?;
            Ok(())
        }
        other => {
            m.ack_with(jetstream::AckKind::Nak(None)).await?;
            Err(format!("agent: {other:?}").into())
        }
    }
}
