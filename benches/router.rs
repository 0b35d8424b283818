//! `just bench-router`: end-to-end router throughput against a raw JetStream loop, in one run on
//! one nats-server.
//!
//! Fixture: 10,000 teams under a 4-level tree, 100,000 claims (SQLite), 50,000 events preloaded in
//! EVENTS, each naming one team's GitHub repo. Then, over the same 50,000 messages:
//! 1. raw: a durable pull consumer, 64 at a time: publish the message to a second stream with a
//!    PubAck, then ack (double ack) — the ceiling of any consume → publish → ack pipeline here;
//! 2. router: ifox's own consumer and worker (resolve identifiers, route lookup, effective config,
//!    shared/dedicated decision, run document, publish to AGENT_RUNS with PubAck, record the run in
//!    SQLite, ack), 64 at a time.
//!
//! Prints both rates, their ratio (goal ≥ 0.5) and this process's peak RSS.

mod common;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
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

    let loading = Instant::now();
    let payload = bytes::Bytes::from(vec![b'x'; 512]);
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1_000) {
        let mut acks = Vec::new();
        for &i in chunk {
            let team = (i * 7_919) % teams.len();
            let mut h = async_nats::HeaderMap::new();
            h.insert("ce-id", format!("bench-{i}").as_str());
            h.insert("ce-source", "github");
            h.insert("ce-type", "issues");
            h.insert(
                "ce-time",
                humantime::format_rfc3339_millis(std::time::SystemTime::now())
                    .to_string()
                    .as_str(),
            );
            h.insert("Nats-Msg-Id", format!("github:bench-{i}").as_str());
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
            a.await.unwrap();
        }
    }
    println!("preloaded {EVENTS} events in {:.1?}", loading.elapsed());

    // 1. raw consume → publish with PubAck → ack
    let stream = js.get_stream("EVENTS").await.unwrap();
    let raw = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 2_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let cpu = (common::own_cpu_seconds(), nats.cpu_seconds());
    let started = Instant::now();
    let messages = raw
        .stream()
        .max_messages_per_batch(CONCURRENCY * 2)
        .messages()
        .await
        .unwrap()
        .take(EVENTS);
    messages
        .for_each_concurrent(CONCURRENCY, |m| {
            let js = js.clone();
            async move {
                let m = m.unwrap();
                let seq = m.info().unwrap().stream_sequence;
                js.publish(format!("bench.raw.{}", seq % 1000), m.payload.clone())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                m.double_ack().await.unwrap();
            }
        })
        .await;
    let raw_rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    println!(
        "raw JetStream loop      {raw_rate:>9.0} msg/s  ({:.1?}; {})",
        started.elapsed(),
        cpu_per_event(cpu, &nats)
    );

    // 2. the router
    let shutdown = CancellationToken::new();
    let worker = ifox::router::worker::Worker::new(tenancy.clone(), bus.clone());
    let cpu = (common::own_cpu_seconds(), nats.cpu_seconds());
    let started = Instant::now();
    let task = tokio::spawn(ifox::router::consumer::run(
        worker,
        bus.clone(),
        settings.router.clone(),
        shutdown.clone(),
    ));
    let mut agent_runs = js.get_stream("AGENT_RUNS").await.unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = agent_runs.info().await.unwrap().state.messages;
        if n as usize >= EVENTS {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            panic!("router did not finish: {n} of {EVENTS}");
        }
    }
    let router_elapsed = started.elapsed();
    let router_cpu = cpu_per_event(cpu, &nats);
    shutdown.cancel();
    task.await.unwrap();
    let router_rate = EVENTS as f64 / router_elapsed.as_secs_f64();
    let (runs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs")
        .fetch_one(tenancy.store().pool())
        .await
        .unwrap();
    println!(
        "router end to end       {router_rate:>9.0} msg/s  ({router_elapsed:.1?}; {router_cpu}; {runs} runs recorded)"
    );
    println!(
        "ratio router/raw        {:>9.2}   (goal >= 0.5)",
        router_rate / raw_rate
    );
    println!(
        "peak RSS                {:>9.0} MiB",
        common::peak_rss_mib()
    );
    let _ = AckKind::Ack;
}

/// CPU time per event since `(own, nats)` CPU seconds were read: this process and nats-server.
fn cpu_per_event(since: (f64, f64), nats: &common::Nats) -> String {
    let per = |s: f64| s / EVENTS as f64 * 1e6;
    format!(
        "CPU per event: bench {:.0} µs, nats-server {:.0} µs",
        per(common::own_cpu_seconds() - since.0),
        per(nats.cpu_seconds() - since.1)
    )
}
