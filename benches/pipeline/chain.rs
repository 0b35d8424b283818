//! The raw JetStream chain: the NATS work of the pipeline without ifox, the floor to compare ifox
//! with, on the same nats-server and to the same echo agent.
//!
//! 1. the client publishes the event (the CloudEvents headers ingest would write, the same body)
//!    with a PubAck, as ingest does after verifying a webhook;
//! 2. a durable pull consumer (`ROUTER_CONCURRENCY` at a time, as the router) publishes a small run
//!    message (PubAck, `Nats-Msg-Id` = run id) and acks the event;
//! 3. a durable pull consumer (at most `teams × max_concurrent_agents` at a time, as the bridge)
//!    does the bridge's NATS work around the same agent call: reads the run's event back from its
//!    stream by sequence (the bridge's `get_raw_message`), publishes `delivering` on a status
//!    stream shaped as RUNS and waits for its PubAck (the durable step before the call), POSTs
//!    `/investigate` with ifox's own agent client ([`ifox::bridge::deliver::Agents`], so the HTTP
//!    and SSE side is the same code), publishes `running` when the answer starts (PubAck awaited
//!    by a task of its own, as the bridge's announcements) and `completed` with the result (PubAck
//!    awaited), then acks the run.
//!
//! Stage 3 runs in this process, or ([`Chain::deliver_in_child`], phase 2 of the bench) in a
//! process of its own (this bench binary again, `BENCH_RAW_DELIVER` set), whose CPU per delivery
//! is the floor the bridge's own process is compared with: the bridge's overhead is what it
//! spends beyond that.
//!
//! Its streams and consumers are EVENTS / AGENT_RUNS / RUNS and the router's / bridge's committed
//! definitions under other names and subjects (`bench.raw.…`), so ifox's consumers never see them.
//! What ifox does beyond this is its own work: signature check, routing, run records and their
//! transitions in SQLite, the prompt built from the event, run tokens, fairness, keep-alives.

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
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

/// What the router runs at once by default (`router.concurrency`).
pub const ROUTER_CONCURRENCY: usize = 64;

/// The environment variable that makes this bench binary stage 3 of the chain alone (a child
/// process): `<nats url>|<agent url>|<deliveries at once>`.
pub const CHILD_ENV: &str = "BENCH_RAW_DELIVER";

/// The durable consumer of stage 3 in this process, and in the child.
const DURABLE: &str = "raw-raw_runs";
const CHILD_DURABLE: &str = "raw-raw_runs-child";

pub struct Chain {
    js: jetstream::Context,
    stop: CancellationToken,
    /// Stops stage 3 in this process (when a child takes it over).
    deliver_stop: CancellationToken,
    deliveries: usize,
    /// Messages a stage could not finish (NAKed for redelivery); 0 in a clean run.
    pub failures: Arc<AtomicU64>,
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Stage 3 in a process of its own; killed on drop.
pub struct Child {
    process: tokio::process::Child,
}

impl Child {
    pub fn cpu_seconds(&self) -> f64 {
        self.process
            .id()
            .map_or(0.0, crate::common::cpu_seconds_of_tree)
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.process
            .id()
            .map_or(0.0, |pid| crate::common::peak_rss_mib_of(&pid.to_string()))
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
    durable: &str,
    subject: &str,
) -> AnyResult<pull::Stream> {
    config.durable_name = Some(durable.to_owned());
    config.filter_subject = subject.to_owned();
    let batch = config.max_ack_pending.clamp(1, 512) as usize;
    let consumer = js.get_stream(stream).await?.create_consumer(config).await?;
    Ok(consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?)
}

/// Stage 3 on `runs` until `stop`: `deliveries` at a time.
fn serve_deliveries(
    js: jetstream::Context,
    runs: pull::Stream,
    agent: String,
    deliveries: usize,
    stop: CancellationToken,
    failures: Arc<AtomicU64>,
) -> impl Future<Output = ()> + Send {
    let agents = Agents::new(Duration::from_secs(5), None, 64 * 1024);
    runs.take_until(stop.cancelled_owned())
        .for_each_concurrent(deliveries, move |m| {
            let (js, failures, agents, agent) =
                (js.clone(), failures.clone(), agents.clone(), agent.clone());
            async move {
                if let Err(e) = deliver(&js, &agents, &agent, m).await {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("raw chain, deliver: {e}");
                }
            }
        })
}

impl Chain {
    pub async fn start(
        js: &jetstream::Context,
        agent: &str,
        deliveries: usize,
    ) -> AnyResult<Chain> {
        stream_like(js, "EVENTS", "RAW_EVENTS", "bench.raw.events.>").await?;
        stream_like(js, "AGENT_RUNS", "RAW_RUNS", "bench.raw.runs.>").await?;
        stream_like(js, "RUNS", "RAW_STATUS", "bench.raw.status.>").await?;
        let events = consumer_like(
            js,
            ROUTER.config(0)?,
            "RAW_EVENTS",
            "raw-raw_events",
            "bench.raw.events.>",
        );
        let runs = consumer_like(
            js,
            BRIDGE.config(0)?,
            "RAW_RUNS",
            DURABLE,
            "bench.raw.runs.>",
        );
        let (events, runs) = (events.await?, runs.await?);
        let stop = CancellationToken::new();
        let deliver_stop = stop.child_token();
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
        let deliver = serve_deliveries(
            js.clone(),
            runs,
            agent.to_owned(),
            deliveries,
            deliver_stop.clone(),
            failures.clone(),
        );
        tokio::spawn(route);
        tokio::spawn(deliver);
        Ok(Chain {
            js: js.clone(),
            stop,
            deliver_stop,
            deliveries,
            failures,
        })
    }

    /// Moves stage 3 to a process of its own (this binary with [`CHILD_ENV`]), on a consumer of
    /// its own that starts with the next run; returns once it pulls.
    pub async fn deliver_in_child(&self, nats: &str, agent: &str) -> AnyResult<Child> {
        self.deliver_stop.cancel();
        self.js
            .get_stream("RAW_RUNS")
            .await?
            .delete_consumer(DURABLE)
            .await?;
        let mut process = tokio::process::Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, format!("{nats}|{agent}|{}", self.deliveries))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = process.stdout.take().ok_or("no stdout of the child")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        match first {
            Ok(Ok(Some(line))) if line == "ready" => Ok(Child { process }),
            other => Err(format!("raw stage 3 child did not start: {other:?}").into()),
        }
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

/// The child process's life: stage 3 alone, on `spec` ([`CHILD_ENV`]), until killed.
pub async fn child(spec: &str) -> AnyResult<()> {
    let mut parts = spec.split('|');
    let (Some(nats), Some(agent), Some(deliveries)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{CHILD_ENV}: expected <nats>|<agent>|<deliveries>").into());
    };
    let js = jetstream::new(async_nats::connect(nats).await?);
    let mut config = BRIDGE.config(0)?;
    config.deliver_policy = jetstream::consumer::DeliverPolicy::New;
    let runs = consumer_like(&js, config, "RAW_RUNS", CHILD_DURABLE, "bench.raw.runs.>").await?;
    println!("ready");
    let failures = Arc::new(AtomicU64::new(0));
    serve_deliveries(
        js,
        runs,
        agent.to_owned(),
        deliveries.parse()?,
        CancellationToken::new(),
        failures,
    )
    .await;
    Ok(())
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

/// A status of run `run_id` of `team` on the raw status stream, as the bridge's RUNS
/// announcements (`Nats-Msg-Id` `<run>:<status>`, a small JSON body).
async fn status(
    js: &jetstream::Context,
    team: &str,
    run_id: &str,
    status: &str,
    result: Option<&str>,
) -> AnyResult<jetstream::context::PublishAckFuture> {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", format!("{run_id}:{status}").as_str());
    let body = json!({"schema": "ifox.run_status.v1", "run_id": run_id, "org_id": "acme",
        "team_id": team, "status": status, "result": result});
    let subject = format!("bench.raw.status.acme.{team}.{status}");
    Ok(js
        .publish_with_headers(subject, h, serde_json::to_vec(&body)?.into())
        .await?)
}

/// Stage 3: the run → its event read back → `delivering` (PubAck) → `POST /investigate`, its
/// answer read to the result (`running` when it starts) → `completed` (PubAck) → ack.
async fn deliver(
    js: &jetstream::Context,
    agents: &Agents,
    agent: &str,
    m: Pulled,
) -> AnyResult<()> {
    let m = m?;
    let run: Value = serde_json::from_slice(&m.payload)?;
    let (n, team, run_id) = (
        run["n"].as_u64().unwrap_or(0),
        run["team_id"].as_str().unwrap_or(""),
        run["run_id"].as_str().unwrap_or(""),
    );
    let seq = run["event_seq"].as_u64().ok_or("no event_seq")?;
    let event = js
        .get_stream_no_info("RAW_EVENTS")
        .await?
        .get_raw_message(seq)
        .await?;
    if event.payload.is_empty() {
        return Err("empty event".into());
    }
    status(js, team, run_id, "delivering", None).await?.await?;
    let body = json!({
        "prompt": format!("GitHub issue #{n} opened in acme/{team} by dev: checkout is down"),
        "team_token": "raw-chain-token",
        "thread_id": format!("raw-issue-{n}"),
        "tenant_id": "acme",
        "team_id": team,
    });
    let call = Call {
        base: agent,
        run_id,
        traceparent: None,
        body: &body,
        deadline: Duration::from_secs(30),
    };
    let running = || async {
        if let Ok(ack) = status(js, team, run_id, "running", None).await {
            tokio::spawn(ack.into_future());
        }
    };
    match agents.investigate(&call, running).await {
        Delivered::Finished {
            success: true,
            text,
            ..
        } => {
            status(js, team, run_id, "completed", text.as_deref())
                .await?
                .await?;
            m.double_ack().await?;
            Ok(())
        }
        other => {
            m.ack_with(jetstream::AckKind::Nak(None)).await?;
            Err(format!("agent: {other:?}").into())
        }
    }
}
