//! `just bench-pipeline`: the pipeline figure of issue 12 — signed GitHub webhooks over HTTP →
//! ifox (roles admin, ingest, router, bridge, recorder; SQLite in a temp dir) → the echo agent over HTTP, on
//! one machine, beside a raw JetStream chain doing the same NATS work without ifox.
//!
//! One nats-server (file store, its own temp folder) and one echo agent (ifox's reference agent,
//! in this process, answering at once, protocol `investigate`) serve both sides. Webhooks are 8 KB
//! GitHub `issues` payloads, each with its own issue number (so its agent request names it in its
//! `thread_id`), spread over `BENCH_TEAMS` (default 8) teams of the shared agent.
//!
//! Phase 1, `BENCH_ROUNDS` (default 2) interleaved rounds, which side goes first alternating:
//! - **fixed rate**: `BENCH_RATE` (default 200) webhooks/s for `BENCH_SECS` (default 10) s;
//! - **saturation**: `BENCH_CLIENTS` (default 32) clients, each sending its next webhook as soon as
//!   the last was accepted, for `BENCH_SAT_SECS` (default 3) s (its backlog drains at the bridge's pace);
//!
//! each slice then drained until every accepted webhook's request reached the agent. Per side:
//! webhooks accepted/s, agent requests/s (first send to last request), webhook-to-agent-request
//! latency p50/p99 (one monotonic clock: clients and agent are both in this process), the ratios
//! ifox/raw, CPU per webhook of each part and the machine's idle share, and where the time goes
//! (stage breakdown from the JetStream timestamps; see `stages`). ifox runs in this process, or
//! with `BENCH_IFOX=process` as `ifox serve` of this profile (which splits its CPU from the clients').
//!
//! Phase 2: ifox again with roles admin, ingest, router, the run recorder as a process of its own
//! (its CPU per delivery reported beside), and the bridge as a process of its own
//! (`ifox serve --roles bridge`) whose CPU time (from /proc) divided by deliveries is the bridge's
//! CPU per delivery, at the fixed rate and at saturation; beside it, in interleaved slices, the raw
//! chain with its stage 3 (the bridge's NATS work and the same agent call, see `chain`) as a
//! process of its own, whose CPU per delivery is the floor: the bridge's **overhead** is its CPU per
//! delivery minus that floor's. Peak RSS of ifox (of this whole process when ifox runs inside it),
//! of the bridge process and of the raw stage 3. Goals printed PASS/MISSED: webhook → agent request
//! p50 < 5 ms at 200/s; bridge overhead < 50 µs CPU per delivery (at 200/s and at saturation). `BENCH_VERBOSE=1`
//! prints every slice. Everything shares the machine, so only ratios of one run mean much.

mod agent;
mod chain;
#[path = "../common/mod.rs"]
mod common;
mod load;
mod report;
mod stages;
mod target;

use agent::Agent;
use async_nats::jetstream;
use chain::Chain;
use ifox::app::Role;
use load::{Pace, Slice};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use target::{Ifox, SECRET, Shared};

// The allocator of the `ifox` binary (src/main.rs), since the app runs inside this process.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BODY_BYTES: usize = 8 * 1024;
/// Deliveries in flight per team (`bridge.max_concurrent_agents`, the default).
const PER_TEAM: usize = 5;
const FRONT: [Role; 3] = [Role::Admin, Role::Ingest, Role::Router];

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The run's knobs (environment variables, see the header).
pub struct Knobs {
    pub rounds: usize,
    pub rate: f64,
    pub secs: f64,
    pub clients: usize,
    pub sat_secs: f64,
    pub teams: usize,
    pub process: bool,
    pub verbose: bool,
}

/// A GitHub `issues` payload for issue `n` of team `team`'s repo, padded to 8 KB.
fn payload(n: u64, team: &str) -> bytes::Bytes {
    let head = format!(
        r#"{{"action":"opened","repository":{{"full_name":"acme/{team}","name":"{team}","owner":{{"login":"acme"}}}},"sender":{{"login":"dev"}},"issue":{{"number":{n},"title":"checkout is down","user":{{"login":"dev"}},"body":""#
    );
    let tail = r#""}}"#;
    let pad = BODY_BYTES.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad)).into()
}

fn team_of(n: u64, teams: usize) -> String {
    format!("team-{}", n % teams as u64)
}

/// Sends webhook `n` to ifox's ingest on `port`; Ok once it answered 200 (after its PubAck).
fn webhooks(
    port: u16,
    teams: usize,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = AnyResult<()>> + Send>> + Send + Sync {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/github");
    move |n| {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            let body = payload(n, &team_of(n, teams));
            let signature = ifox::ingest::verify::sign_github(SECRET, &body);
            let res = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-github-event", "issues")
                .header("x-github-delivery", format!("pipe-{n}"))
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await?;
            if res.status() != 200 {
                return Err(format!("ingest answered {}", res.status()).into());
            }
            Ok(())
        })
    }
}

/// A stop that did not end cleanly is reported, not fatal: the figures are taken by then.
fn stopped(result: AnyResult<()>) {
    if let Err(e) = result {
        println!("note: ifox did not stop cleanly: {e}");
    }
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    if let Ok(spec) = std::env::var(chain::CHILD_ENV) {
        return chain::child(&spec).await;
    }
    let k = Knobs {
        rounds: env("BENCH_ROUNDS", 2),
        rate: env("BENCH_RATE", 200.0),
        secs: env("BENCH_SECS", 10.0),
        clients: env("BENCH_CLIENTS", 32),
        sat_secs: env("BENCH_SAT_SECS", 3.0),
        teams: env("BENCH_TEAMS", 8).max(1),
        process: std::env::var("BENCH_IFOX").as_deref() == Ok("process"),
        verbose: std::env::var_os("BENCH_VERBOSE").is_some(),
    };
    let clock = stages::Clock::now();
    let nats = common::start_nats().await;
    let agent = Agent::start().await?;
    let db = tempfile::tempdir()?;
    let shared = Shared {
        database: format!("sqlite://{}?mode=rwc", db.path().join("ifox.db").display()),
        nats: nats.url.clone(),
        agent: agent.url.clone(),
    };
    let all = [FRONT.as_slice(), &[Role::Bridge, Role::Recorder]].concat();
    let ifox = Ifox::start(&shared, &all, k.process).await?;
    target::tenancy(&ifox, k.teams).await?;
    let js = jetstream::new(async_nats::connect(&nats.url).await?);
    let chain = Arc::new(Chain::start(&js, &agent.url, (k.teams * PER_TEAM).min(256)).await?);
    report::header(&k);

    let counter = Arc::new(AtomicU64::new(0));
    let webhook = Arc::new(webhooks(ifox.port, k.teams));
    let raw = {
        let (chain, teams) = (chain.clone(), k.teams);
        Arc::new(move |n: u64| {
            let chain = chain.clone();
            async move {
                chain
                    .publish(n, &team_of(n, teams), payload(n, &team_of(n, teams)))
                    .await
            }
        })
    };
    let cpu = || {
        let ifox = ifox.cpu_seconds().unwrap_or(0.0);
        [common::own_cpu_seconds(), ifox, nats.cpu_seconds()]
    };
    // Warm-up: connections, caches, the catalog of every process; and a check that nothing is lost.
    for warm in [
        load::slice(Pace::Rate(k.rate), 1.0, &webhook, &counter, &agent, &cpu).await?,
        load::slice(Pace::Rate(k.rate), 1.0, &raw, &counter, &agent, &cpu).await?,
    ] {
        if warm.received != warm.sent {
            return Err(format!(
                "warm-up: {} of {} reached the agent",
                warm.received, warm.sent
            )
            .into());
        }
    }

    let paces = [
        (Pace::Rate(k.rate), k.secs),
        (Pace::Clients(k.clients), k.sat_secs),
    ];
    let mut sides: [[Slice; 2]; 2] = Default::default(); // [pace][ifox, raw]
    let mut segments: [[Vec<Vec<i64>>; 2]; 2] = Default::default();
    for round in 0..k.rounds {
        for (p, &(pace, secs)) in paces.iter().enumerate() {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let points: &[stages::Stage] = match side {
                    0 => &stages::IFOX,
                    _ => &stages::RAW,
                };
                let starts = stages::mark(&js, points).await?;
                let s = match side {
                    0 => load::slice(pace, secs, &webhook, &counter, &agent, &cpu).await?,
                    _ => load::slice(pace, secs, &raw, &counter, &agent, &cpu).await?,
                };
                let parts = stages::breakdown(&js, points, &starts, &s, &clock).await?;
                if k.verbose {
                    report::slice_line(round, pace, side, &s, k.process);
                }
                let seg = &mut segments[p][side];
                seg.resize(parts.len(), Vec::new());
                for (all, part) in seg.iter_mut().zip(parts) {
                    all.extend(part);
                }
                sides[p][side].add(s);
            }
        }
    }
    let delivery = ifox.histogram("ifox_bridge_delivery_seconds").await?;
    let ifox_rss = ifox.peak_rss_mib();
    stopped(ifox.stop().await);
    report::phase1(&k, &paces, &sides, &segments, delivery, ifox_rss);

    // Phase 2: the bridge as a process of its own, for its CPU per delivery; the run recorder (the
    // runs table, projected from RUNS) as a third, its CPU per delivery reported beside it.
    let front = Ifox::start(&shared, &FRONT, k.process).await?;
    let bridge = Ifox::start(&shared, &[Role::Bridge], true).await?;
    let recorder = Ifox::start(&shared, &[Role::Recorder], true).await?;
    let webhook = Arc::new(webhooks(front.port, k.teams));
    let cpu = || {
        let bridge = bridge.cpu_seconds().unwrap_or(0.0);
        [common::own_cpu_seconds(), bridge, nats.cpu_seconds()]
    };
    let idle = {
        let before = bridge.cpu_seconds().unwrap_or(0.0);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        (bridge.cpu_seconds().unwrap_or(0.0) - before) / 2.0
    };
    load::slice(Pace::Rate(k.rate), 1.0, &webhook, &counter, &agent, &cpu).await?;
    // The raw chain's stage 3 (the bridge's NATS work and the same agent call) in a process of its
    // own beside it: the floor the bridge's CPU per delivery is compared with.
    let child = chain.deliver_in_child(&nats.url, &agent.url).await?;
    let floor = || {
        let child = child.cpu_seconds();
        [common::own_cpu_seconds(), child, nats.cpu_seconds()]
    };
    load::slice(Pace::Rate(k.rate), 1.0, &raw, &counter, &agent, &floor).await?;
    let mut bridged: Vec<Slice> = paces.iter().map(|_| Slice::default()).collect();
    let mut floors: Vec<Slice> = paces.iter().map(|_| Slice::default()).collect();
    caught_up(&js).await?;
    let recorded_from = recorder.cpu_seconds().unwrap_or(0.0);
    for round in 0..k.rounds {
        for (p, &(pace, secs)) in paces.iter().enumerate() {
            // Which side goes first alternates, as in phase 1.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                match side {
                    0 => bridged[p]
                        .add(load::slice(pace, secs, &webhook, &counter, &agent, &cpu).await?),
                    _ => floors[p]
                        .add(load::slice(pace, secs, &raw, &counter, &agent, &floor).await?),
                }
            }
        }
    }
    caught_up(&js).await?;
    let deliveries: u64 = bridged.iter().map(|s| s.received).sum();
    let recorder_us =
        (recorder.cpu_seconds().unwrap_or(0.0) - recorded_from) * 1e6 / deliveries.max(1) as f64;
    let recorder_rss = recorder.peak_rss_mib();
    let bridge_rss = bridge.peak_rss_mib();
    let child_rss = child.peak_rss_mib();
    drop(child);
    stopped(recorder.stop().await);
    stopped(bridge.stop().await);
    stopped(front.stop().await);
    let failures = chain.failures.load(std::sync::atomic::Ordering::Relaxed);
    report::phase2(
        &k,
        &sides,
        &bridged,
        &floors,
        idle,
        (bridge_rss, child_rss, recorder_us, recorder_rss),
        failures,
    );
    Ok(())
}

/// Waits until the run recorder has applied everything on RUNS (its consumer holds nothing).
async fn caught_up(js: &jetstream::Context) -> AnyResult<()> {
    let started = std::time::Instant::now();
    loop {
        let mut c: jetstream::consumer::PullConsumer = js
            .get_stream("RUNS")
            .await?
            .get_consumer("recorder")
            .await?;
        let info = c.info().await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            return Err("the run recorder did not catch up with RUNS within 120 s".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
