//! `just bench-ingest`: the ingest figure of issue 3.
//!
//! In one run, on one nats-server (file store, its own temp folder), in `BENCH_ROUNDS` (default 4)
//! interleaved rounds sharing `BENCH_SECS` (default 12) per side:
//! 1. **ingest**: ifox (role `ingest` only) receives signed 8 KB GitHub-style webhooks over HTTP/1.1
//!    keep-alive from 64 concurrent clients; each answer comes after the PubAck. The client is a
//!    minimal HTTP/1.1 writer/reader (as `wrk` is; the request is built once per connection), so the
//!    load generator takes as little as possible of the CPU ifox needs. ifox runs inside this process
//!    (with the binary's allocator, sharing the runtime with the clients), or with
//!    `BENCH_IFOX=process` as `ifox serve --roles ingest`, its own process;
//! 2. **raw**: 64 concurrent async-nats publish-with-PubAck of the same message (subject, CloudEvents
//!    headers with a unique `Nats-Msg-Id`, payload), as a direct publisher following the contract
//!    sends it.
//!
//! EVENTS is purged after each slice (and the server given time to delete the blocks), so every slice
//! starts from an empty, quiet stream; rounds alternate which side goes first. Prints throughput
//! of both, their ratio (target ≥ 0.6; pooled, and per round) and p50/p99 latency (target p99 < 10 ms
//! for ingest); then, to explain a result, the CPU time per event of each part (this process, ifox
//! when it is a process of its own, nats-server), the machine's idle share (a side that leaves the
//! CPU idle is bound by waiting, not by CPU), and ifox's own mean wait for the PubAck (from its
//! `/metrics`). `BENCH_VERBOSE=1` prints every round. Client, ifox and nats-server share the machine,
//! so only ratios of one run mean anything, and load from other processes shows up as rounds that
//! disagree.

mod client;
#[path = "../common/mod.rs"]
mod common;
mod measure;
mod target;

use async_nats::jetstream;
use client::Conn;
use measure::{Run, drive};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use target::Ifox;

// The allocator of the `ifox` binary (src/main.rs), since the app runs inside this process.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 64;
const BODY_BYTES: usize = 8 * 1024;
const SECRET: &str = "bench-github-secret";

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A GitHub `issues` payload padded to 8 KB.
fn payload() -> Vec<u8> {
    let head = r#"{"action":"opened","repository":{"full_name":"acme/checkout","owner":{"login":"acme"}},"issue":{"number":7,"title":"checkout is down","body":""#;
    let tail = r#""}}"#;
    let pad = BODY_BYTES - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

/// Empties EVENTS, then lets the server finish deleting the purged blocks (and the kernel freeing
/// them) before the next slice, so neither side pays for the other's cleanup.
async fn purge(js: &jetstream::Context) -> AnyResult<()> {
    js.get_stream("EVENTS").await?.purge().await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12.0);
    let nats = common::start_nats().await;
    let app = Ifox::start(&nats.url).await?;
    let port = app.port();
    let separate = app.cpu_seconds().is_some();

    let js = jetstream::new(async_nats::connect(&nats.url).await?);
    let ready = Instant::now();
    while js.get_stream("EVENTS").await.is_err() {
        if ready.elapsed() > Duration::from_secs(10) {
            return Err("the app did not create EVENTS".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let body = bytes::Bytes::from(payload());
    let signature = ifox::ingest::verify::sign_github(SECRET, &body);
    let addr = format!("127.0.0.1:{port}");
    let webhook = {
        // Connections are taken and put back, so each of the 64 tasks keeps one.
        let pool = Arc::new(std::sync::Mutex::new(Vec::<Conn>::new()));
        let (addr, body, signature) = (addr.clone(), body.clone(), signature.clone());
        move |n: u64| {
            let (pool, addr, body, signature) =
                (pool.clone(), addr.clone(), body.clone(), signature.clone());
            async move {
                let conn = pool.lock().map_err(|_| "pool poisoned")?.pop();
                let mut conn = match conn {
                    Some(c) => c,
                    None => Conn::open(&addr, &signature, &body).await?,
                };
                let status = conn.exchange(n).await?;
                if status != 200 {
                    return Err(format!("ingest answered {status}").into());
                }
                pool.lock().map_err(|_| "pool poisoned")?.push(conn);
                AnyResult::Ok(())
            }
        }
    };
    let raw = {
        let (js, body) = (js.clone(), body.clone());
        move |n: u64| {
            let (js, body) = (js.clone(), body.clone());
            async move {
                let e = common::github_issue_envelope(format!("raw-{n}"), "acme/checkout");
                js.publish_with_headers(e.subject, e.headers, body)
                    .await?
                    .await?;
                AnyResult::Ok(())
            }
        }
    };

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4usize)
        .max(1);
    let slice = secs / rounds as f64;
    println!(
        "ingest bench: {CONCURRENCY} concurrent, {BODY_BYTES}-byte body, {rounds} rounds of \
         {slice:.1} s ingest then {slice:.1} s raw"
    );
    let (webhook, raw, counter) = (
        Arc::new(webhook),
        Arc::new(raw),
        Arc::new(AtomicU64::new(0)),
    );
    drive(2.0, &webhook, &counter, (&nats, &app)).await?; // warm-up: connections, buffers, caches
    drive(1.0, &raw, &counter, (&nats, &app)).await?;
    purge(&js).await?;
    // Interleaved rounds: a burst of load from elsewhere on the machine hits both sides alike.
    let (mut ingest, mut direct, mut ratios) = (Run::default(), Run::default(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first, so an order effect cancels out.
        let (i, r) = if round % 2 == 0 {
            let i = drive(slice, &webhook, &counter, (&nats, &app)).await?;
            purge(&js).await?;
            (i, drive(slice, &raw, &counter, (&nats, &app)).await?)
        } else {
            let r = drive(slice, &raw, &counter, (&nats, &app)).await?;
            purge(&js).await?;
            (drive(slice, &webhook, &counter, (&nats, &app)).await?, r)
        };
        purge(&js).await?;
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            println!(
                "  round {round}: ingest {:.0}/s ({}), raw {:.0}/s ({})",
                i.rate(),
                i.cpu_text(separate),
                r.rate(),
                r.cpu_text(false)
            );
        }
        ratios.push(i.rate() / r.rate());
        ingest.add(i);
        direct.add(r);
    }
    ingest.micros.sort_unstable();
    direct.micros.sort_unstable();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];

    let ratio = ingest.rate() / direct.rate();
    println!(
        "ingest (HTTP -> verify -> PubAck): {:>9.0} req/s   p50 {:.2} ms   p99 {:.2} ms   ({} requests)",
        ingest.rate(),
        ingest.pct(0.50),
        ingest.pct(0.99),
        ingest.ops
    );
    println!(
        "raw JetStream publish + PubAck:    {:>9.0} msg/s   p50 {:.2} ms   p99 {:.2} ms   ({} messages)",
        direct.rate(),
        direct.pct(0.50),
        direct.pct(0.99),
        direct.ops
    );
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "CPU per event and machine idle: ingest {}; raw {}",
        ingest.cpu_text(separate),
        direct.cpu_text(false)
    );
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "ratio ingest/raw: {ratio:.2} (target >= 0.60: {}); per round, in order: {}; median {median:.2}",
        verdict(ratio >= 0.6),
        each.join(", ")
    );
    println!(
        "ingest p99: {:.2} ms (target < 10 ms: {})",
        ingest.pct(0.99),
        verdict(ingest.pct(0.99) < 10.0)
    );

    println!(
        "ifox's publish wait (send to PubAck), mean over the whole run incl. warm-up: {:.2} ms",
        app.mean_publish_wait_ms().await?
    );
    app.stop().await
}
