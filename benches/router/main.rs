//! `just bench-router`: end-to-end router throughput against a raw JetStream loop, in one run on
//! one nats-server.
//!
//! Fixture: 10,000 teams under a 4-level tree, 100,000 claims (SQLite), 50,000 events preloaded in
//! EVENTS, each naming one team's GitHub repo. Then, over the same 50,000 messages:
//! 1. raw: a durable pull consumer, 256 at a time: publish the message to a second stream with a
//!    PubAck, then ack (double ack) — the ceiling of any consume → publish → ack pipeline here;
//! 2. raw with the router's NATS work: the same loop publishing as the router does (`Nats-Msg-Id`
//!    and `ce-id` headers, 10,000 subjects, a stream with AGENT_RUNS' 1 h duplicate window), which
//!    separates nats-server's work the design asks for from ifox's own;
//! 3. router: ifox's own consumer and worker (resolve identifiers, route lookup, effective config,
//!    shared/dedicated decision, run document, publish to AGENT_RUNS with PubAck, ack; no database),
//!    256 at a time; it goes first in even rounds, last in odd ones;
//! 4. records: the work moved off the router's path, measured beside it — the recorder role's
//!    AGENT_RUNS side over this round's AGENT_RUNS messages (each checked and made a `queued` run
//!    record in one batched write, then acked), 64 at a time (`just bench-pipeline` measures
//!    deliveries).
//!
//! Each round preloads 50,000 new events and runs the loops over them; `BENCH_ROUNDS` rounds (default
//! 3; the run table grows by 50,000 a round); `BENCH_PHASES` (default `raw,same,router,records`)
//! picks loops, e.g. one for a profile. Prints the rates and ratios per round, the median ratios
//! (goal ≥ 0.8 against the plain raw loop), CPU time per event of this process and of nats-server,
//! the records' rate, and peak RSS.

#[path = "../common/mod.rs"]
mod common;
mod loops;

use loops::{raw_loop, records_loop, router_loop};

use async_nats::jetstream;
use ifox::bus::{Bus, StreamSpec, streams};
use ifox::settings::Settings;
use ifox::store::Store;
use ifox::tenancy::Tenancy;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

// The allocator of the `ifox` binary (src/main.rs), so the router runs here as it does in production.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 50_000;
const CONCURRENCY: usize = 256;

#[tokio::main]
async fn main() {
    let nats = common::start_nats().await;
    let dir = tempfile::tempdir().unwrap();
    // SQLite by default; `IFOX_BENCH_POSTGRES_URL` (a server URL whose user may create databases)
    // runs the same bench on a fresh PostgreSQL database — the production setup.
    let db_url = match std::env::var("IFOX_BENCH_POSTGRES_URL") {
        Ok(admin) => {
            use sqlx::Executor;
            let name = format!("ifox_bench_{}", std::process::id());
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&admin)
                .await
                .unwrap();
            pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
        }
        Err(_) => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
    };
    println!("database: {}", db_url.split(':').next().unwrap_or(""));
    let store = Store::connect(&db_url, 16).await.unwrap();
    store.migrate().await.unwrap();
    let (_, teams) = common::build_tree(&store).await;
    let tenancy = Tenancy::open(store, None).await.unwrap();
    println!(
        "fixture: {} teams, {} claims",
        teams.len(),
        tenancy.catalog().claim_count()
    );

    let env = [
        ("IFOX__NATS__URL".to_owned(), nats.url.clone()),
        (
            "IFOX__ROUTER__CONCURRENCY".to_owned(),
            CONCURRENCY.to_string(),
        ),
    ];
    let settings =
        Settings::load_from(Some(std::path::Path::new("/nonexistent/ifox.toml")), env).unwrap();
    let bus = Bus::connect(&settings.nats).await.unwrap();
    streams::apply(bus.jetstream(), &StreamSpec::embedded().unwrap())
        .await
        .unwrap();
    let js = bus.jetstream().clone();
    js.create_stream(jetstream::stream::Config {
        name: "RAWOUT".into(),
        subjects: vec!["bench.raw.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // The raw loop doing the router's NATS work: the same stream settings as AGENT_RUNS (file, 1 h
    // duplicate window), `Nats-Msg-Id` and `ce-id` on every publish, 10,000 subjects.
    js.create_stream(jetstream::stream::Config {
        name: "RAWSAME".into(),
        subjects: vec!["bench.same.>".into()],
        duplicate_window: Duration::from_secs(3_600),
        ..Default::default()
    })
    .await
    .unwrap();
    // `BENCH_PHASES` (default all): which of raw, same, router, records to run, e.g. for a profile
    // of one phase (the ratio needs raw and router).
    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "raw,same,router,records".into());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let worker = ifox::router::worker::Worker::new(tenancy.clone(), bus.clone(), Vec::new());
    let store = tenancy.store().clone();
    let (mut ratios, mut same_ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let first_seq = preload(&js, round, teams.len()).await;
        // Each loop reads the same 50,000 events; which goes first alternates by round, so no loop
        // always meets nats-server's caches as the preload left them.
        let router_first = round % 2 == 1;
        let mut router_rate = f64::NAN;
        if router_first && phase("router") {
            router_rate = router_phase(&js, &bus, &worker, &settings, round, &nats).await;
        }
        let raw_rate = if phase("raw") {
            raw_loop(&js, round, first_seq, "raw", &nats).await
        } else {
            f64::NAN
        };
        let same_rate = if phase("same") {
            raw_loop(&js, round, first_seq, "same", &nats).await
        } else {
            f64::NAN
        };
        if !router_first && phase("router") {
            router_rate = router_phase(&js, &bus, &worker, &settings, round, &nats).await;
        }
        if !phase("router") {
            continue;
        }
        let (ratio, same_ratio) = (router_rate / raw_rate, router_rate / same_rate);
        println!(
            "round {}: ratio router/raw {ratio:.2}; router/raw with the router's NATS work {same_ratio:.2}",
            round + 1
        );
        ratios.push(ratio);
        same_ratios.push(same_ratio);
        if phase("records") {
            records_loop(&bus, &store, round, &nats).await;
        }
    }
    let (runs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs")
        .fetch_one(tenancy.store().pool())
        .await
        .unwrap();
    if phase("router") && phase("records") {
        assert_eq!(runs as usize, rounds * EVENTS, "one run per event");
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "ratio router/raw        {:>9.2}   median of {rounds} rounds (goal >= 0.8); {runs} runs recorded",
        median(ratios)
    );
    println!(
        "ratio router/raw-same   {:>9.2}   median: against the raw loop doing the router's NATS work",
        median(same_ratios)
    );
    println!(
        "peak RSS                {:>9.0} MiB",
        common::peak_rss_mib()
    );
}

/// The router's phase: ifox's own consumer and worker over this round's events; its rate.
async fn router_phase(
    js: &jetstream::Context,
    bus: &Bus,
    worker: &ifox::router::worker::Worker,
    settings: &Settings,
    round: usize,
    nats: &common::Nats,
) -> f64 {
    // The router consumes only during its own phase. Its durable consumer exists before the
    // clock starts, as the raw loop's does (the router's own create is then a lookup).
    js.get_stream("EVENTS")
        .await
        .unwrap()
        .create_consumer(
            ifox::bus::consumer::ROUTER
                .config(settings.router.max_deliver)
                .unwrap(),
        )
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let cpu = (common::own_cpu_seconds(), nats.cpu_seconds());
    let started = Instant::now();
    let router = tokio::spawn(ifox::router::consumer::run(
        worker.clone(),
        bus.clone(),
        settings.router.clone(),
        ifox::bus::Health::default(),
        shutdown.clone(),
    ));
    let rate = router_loop(js, (round + 1) * EVENTS, started, cpu, nats).await;
    shutdown.cancel();
    router.await.unwrap().unwrap();
    rate
}

/// Publishes round `round`'s 50,000 events (each naming one team's repo); returns the first one's
/// stream sequence.
async fn preload(js: &jetstream::Context, round: usize, teams: usize) -> u64 {
    let loading = Instant::now();
    let payload = bytes::Bytes::from(vec![b'x'; 512]);
    let mut first_seq = None;
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1_000) {
        let mut acks = Vec::new();
        for &i in chunk {
            let team = (i * 7_919 + round) % teams;
            let id = format!("bench-{round}-{i}");
            let mut h = async_nats::HeaderMap::new();
            h.insert("ce-id", id.as_str());
            h.insert("ce-source", "github");
            h.insert("ce-type", "issues");
            h.insert(
                "ce-time",
                humantime::format_rfc3339_millis(std::time::SystemTime::now())
                    .to_string()
                    .as_str(),
            );
            h.insert("Nats-Msg-Id", format!("github:{id}").as_str());
            h.insert(
                "ifox-route-github_repos",
                format!("acme/service-{team}-{}", i % 5).as_str(),
            );
            acks.push(
                js.publish_with_headers("ifox.events.github.issues", h, payload.clone())
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            let seq = a.await.unwrap().sequence;
            first_seq.get_or_insert(seq);
        }
    }
    println!(
        "round {}: preloaded {EVENTS} events in {:.1?}",
        round + 1,
        loading.elapsed()
    );
    first_seq.unwrap()
}
