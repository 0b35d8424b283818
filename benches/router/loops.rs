//! The measured loops of `just bench-router`: the raw loops, the router's end-to-end wait, the
//! records (the bridge's first step), and the CPU per event each prints.

use crate::common;
use crate::{CONCURRENCY, EVENTS};
use async_nats::jetstream;
use futures::StreamExt;
use ifox::bus::Bus;
use std::time::{Duration, Instant};

/// The bridge's first step over this round's AGENT_RUNS messages: check, record (batched), ack.
pub async fn records_loop(
    bus: &Bus,
    store: &ifox::store::Store,
    round: usize,
    nats: &common::Nats,
) {
    use ifox::bridge::plan::Planner;
    use ifox::bus::{Delivery, Disposition};
    let stream = bus.jetstream().get_stream("AGENT_RUNS").await.unwrap();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(format!("records-{round}")),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: (round * EVENTS + 1) as u64,
            },
            max_ack_pending: 2_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let cpu = (common::own_cpu_seconds(), nats.cpu_seconds());
    let started = Instant::now();
    consumer
        .stream()
        .max_messages_per_batch(CONCURRENCY * 2)
        .messages()
        .await
        .unwrap()
        .take(EVENTS)
        .ready_chunks(64)
        .for_each_concurrent(4, |chunk| async move {
            let deliveries: Vec<Delivery> = chunk
                .into_iter()
                .filter_map(|m| Delivery::new(m.unwrap(), "bridge"))
                .collect();
            let rows = deliveries
                .iter()
                .map(|d| Planner::check(d).unwrap().row(d))
                .collect();
            let earlier = ifox::bridge::recorder::write(store, rows).await.unwrap();
            assert!(earlier.is_empty(), "every run new");
            for d in deliveries {
                d.settle(bus, Disposition::Ack).await;
            }
        })
        .await;
    let elapsed = started.elapsed();
    stream
        .delete_consumer(&format!("records-{round}"))
        .await
        .unwrap();
    println!(
        "round {}: run records (recorder, AGENT_RUNS) {:>7.0} msg/s  ({elapsed:.1?}; {})",
        round + 1,
        EVENTS as f64 / elapsed.as_secs_f64(),
        cpu_per_event(cpu, nats)
    );
}

/// The raw loop over this round's events: consume → publish with PubAck → double ack.
pub async fn raw_loop(
    js: &jetstream::Context,
    round: usize,
    first_seq: u64,
    kind: &'static str,
    nats: &common::Nats,
) -> f64 {
    let stream = js.get_stream("EVENTS").await.unwrap();
    let raw = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(format!("{kind}-{round}")),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: first_seq,
            },
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
                let ack = if kind == "raw" {
                    js.publish(format!("bench.raw.{}", seq % 1000), m.payload.clone())
                        .await
                } else {
                    // What the router publishes beside its body: a run id as `Nats-Msg-Id`, the
                    // event id, a per-team subject.
                    let mut h = async_nats::HeaderMap::new();
                    h.insert("Nats-Msg-Id", format!("0190{seq:028x}").as_str());
                    let ce_id = m.headers.as_ref().and_then(|h| h.get("ce-id"));
                    h.insert("ce-id", ce_id.map_or("", |v| v.as_str()));
                    let subject = format!("bench.same.shared.org.team-{}", seq % 10_000);
                    js.publish_with_headers(subject, h, m.payload.clone()).await
                };
                ack.unwrap().await.unwrap();
                m.double_ack().await.unwrap();
            }
        })
        .await;
    let elapsed = started.elapsed();
    // Gone before the next phase: an idle durable with a pull request still open on the server
    // would take messages (and server CPU) in later phases.
    stream
        .delete_consumer(&format!("{kind}-{round}"))
        .await
        .unwrap();
    let rate = EVENTS as f64 / elapsed.as_secs_f64();
    println!(
        "round {}: raw JetStream loop{} {rate:>7.0} msg/s  ({elapsed:.1?}; {})",
        round + 1,
        if kind == "raw" {
            ""
        } else {
            " (router's NATS work)"
        },
        cpu_per_event(cpu, nats)
    );
    rate
}

/// Waits until the router (started at `started`) has dispatched `total` runs to AGENT_RUNS; its rate
/// over this round's events.
pub async fn router_loop(
    js: &jetstream::Context,
    total: usize,
    started: Instant,
    cpu: (f64, f64),
    nats: &common::Nats,
) -> f64 {
    let mut agent_runs = js.get_stream("AGENT_RUNS").await.unwrap();
    // Polled rarely while far from the end and finely near it (half the estimated time left,
    // 1–50 ms): a poll is a JetStream API request, CPU both sides take from the router, and the
    // last one comes at most ~1 ms after the router's last PubAck.
    let mut wait = Duration::from_millis(20);
    loop {
        tokio::time::sleep(wait).await;
        let n = agent_runs.info().await.unwrap().state.messages as usize;
        if n >= total {
            break;
        }
        let done = n.saturating_sub(total - EVENTS).max(1) as f64;
        let left = started.elapsed().as_secs_f64() / done * (total - n) as f64;
        wait = Duration::from_secs_f64(left / 2.0)
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        if started.elapsed() > Duration::from_secs(900) {
            panic!("router did not finish: {n} of {total}");
        }
    }
    let elapsed = started.elapsed();
    let rate = EVENTS as f64 / elapsed.as_secs_f64();
    println!(
        "round {}: router end to end {rate:>7.0} msg/s  ({elapsed:.1?}; {})",
        total / EVENTS,
        cpu_per_event(cpu, nats)
    );
    rate
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
