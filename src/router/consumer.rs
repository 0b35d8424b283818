//! The router's durable pull consumer on EVENTS (`streams/consumers/EVENTS.router.json`, the same
//! file `nats consumer add EVENTS --config` takes). Several replicas share it; each processes up to
//! `concurrency` events at once, in chunks of what has arrived (an eighth of it at most). On shutdown
//! it stops pulling and finishes (and acks) what it holds; anything pulled but not started is
//! redelivered after `ack_wait`, never lost.
//!
//! Also here: the MAX_DELIVERIES advisory listener (an event that exhausted its deliveries is copied
//! to DEADLETTER with reason `max_deliveries`), and gauges of the consumer's queue depth.

use super::deadletter::Origin;
use super::verdict::Event;
use super::worker::{Delivery, Disposition, Worker};
use crate::bus::Bus;
use crate::settings::RouterSettings;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{PullConsumer, pull};
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const STREAM: &str = "EVENTS";
const CONSUMER_FILE: &str = include_str!("../../streams/consumers/EVENTS.router.json");

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("streams/consumers/EVENTS.router.json is invalid: {0}")]
    Config(#[from] serde_json::Error),
    #[error("JetStream: {0}")]
    JetStream(String),
}

fn js_err(e: impl std::fmt::Display) -> ConsumerError {
    ConsumerError::JetStream(e.to_string())
}

/// The consumer definition from the committed file, with `max_deliver` overridden when > 0.
pub fn consumer_config(max_deliver: i64) -> Result<pull::Config, ConsumerError> {
    let mut config: pull::Config = serde_json::from_str(CONSUMER_FILE)?;
    if max_deliver > 0 {
        config.max_deliver = max_deliver;
    }
    Ok(config)
}

/// Creates or updates the durable consumer.
pub async fn ensure(bus: &Bus, max_deliver: i64) -> Result<PullConsumer, ConsumerError> {
    let config = consumer_config(max_deliver)?;
    let stream = bus.jetstream().get_stream(STREAM).await.map_err(js_err)?;
    stream.create_consumer(config).await.map_err(js_err)
}

/// Consumes until `shutdown`, re-establishing the consumer after NATS outages.
pub async fn run(worker: Worker, bus: Bus, settings: RouterSettings, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(250);
    while !shutdown.is_cancelled() {
        match consume(&worker, &bus, &settings, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "router consumer interrupted; resuming");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    // The dispatched marks of the last acked events are still on their way to the database.
    worker.flush().await;
}

async fn consume(
    worker: &Worker,
    bus: &Bus,
    settings: &RouterSettings,
    shutdown: &CancellationToken,
) -> Result<(), ConsumerError> {
    let concurrency = settings.concurrency;
    let consumer = ensure(bus, settings.max_deliver).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(concurrency.max(1) * 2)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(js_err)?;
    tracing::info!(concurrency, "router consuming EVENTS");
    // Events are worked on in chunks of what has arrived (up to an eighth of the concurrency), so
    // the runs of a chunk go to the run writer in one request; eight chunks are in flight.
    let chunk = (concurrency / 8).clamp(1, 64);
    messages
        .take_until(shutdown.clone().cancelled_owned())
        .ready_chunks(chunk)
        .map(Ok::<_, ConsumerError>)
        .try_for_each_concurrent(concurrency.div_ceil(chunk), |received| async move {
            let mut msgs = Vec::with_capacity(received.len());
            let mut failed = None;
            for m in received {
                match m {
                    Ok(m) => msgs.push(m),
                    Err(e) => failed = Some(js_err(e)),
                }
            }
            handle(worker, msgs).await;
            failed.map_or(Ok(()), Err)
        })
        .await
}

async fn handle(worker: &Worker, msgs: Vec<async_nats::jetstream::Message>) {
    let mut held = Vec::with_capacity(msgs.len());
    for msg in msgs {
        match msg.info() {
            Ok(info) => {
                let at = (
                    info.stream.to_owned(),
                    info.stream_sequence,
                    info.delivered.max(1) as u64,
                );
                held.push((msg, at));
            }
            Err(e) => {
                tracing::error!(error = %e, "a delivery without JetStream info; leaving it to redelivery")
            }
        }
    }
    let items: Vec<(Event<'_>, Delivery<'_>)> = held
        .iter()
        .map(|(msg, (stream, stream_seq, delivered))| {
            let ev = Event {
                subject: msg.subject.as_str(),
                headers: msg.headers.as_ref(),
                payload: &msg.payload,
            };
            let delivery = Delivery {
                stream,
                stream_seq: *stream_seq,
                delivered: *delivered,
            };
            (ev, delivery)
        })
        .collect();
    let dispositions = worker.process(&items).await;
    futures::future::join_all(held.iter().zip(dispositions).map(
        |((msg, (_, stream_seq, _)), disposition)| async move {
            let acked = match disposition {
                Disposition::Ack => msg.double_ack().await,
                Disposition::Nak(delay) => msg.ack_with(AckKind::Nak(Some(delay))).await,
                Disposition::Term => msg.ack_with(AckKind::Term).await,
            };
            if let Err(e) = acked {
                tracing::warn!(error = %e, stream_seq, "ack not confirmed; the event will be redelivered and deduplicated");
            }
        },
    ))
    .await;
}

/// The server's MAX_DELIVERIES advisory for the router consumer.
#[derive(Debug, serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Copies events that exhausted their deliveries to DEADLETTER. Replicas share a queue group, so one
/// of them handles each advisory (and the dead letter's `Nats-Msg-Id` collapses any double).
pub async fn watch_max_deliveries(worker: Worker, bus: Bus, shutdown: CancellationToken) {
    let subject = format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.router");
    let mut sub = match bus
        .client()
        .queue_subscribe(subject, "ifox-router".into())
        .await
    {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch MAX_DELIVERIES advisories");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&msg.payload) else {
            tracing::warn!("ignoring a malformed MAX_DELIVERIES advisory");
            continue;
        };
        for attempt in 0..20u32 {
            match dead_letter_exhausted(&worker, &bus, &advisory).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, stream_seq = advisory.stream_seq, attempt, "exhausted event not yet dead-lettered; retrying");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt + 1))).await;
                }
            }
        }
    }
}

async fn dead_letter_exhausted(
    worker: &Worker,
    bus: &Bus,
    a: &MaxDeliveries,
) -> Result<(), ConsumerError> {
    let stream = bus.jetstream().get_stream(STREAM).await.map_err(js_err)?;
    let raw = stream.get_raw_message(a.stream_seq).await.map_err(js_err)?;
    let origin = Origin {
        stage: "router",
        subject: raw.subject.as_str(),
        stream: STREAM,
        stream_seq: a.stream_seq,
        attempts: a.deliveries,
    };
    let detail = format!("gave up after {} deliveries", a.deliveries);
    worker
        .publish_dead_letter(
            &origin,
            "max_deliveries",
            &detail,
            Some(&raw.headers),
            raw.payload.clone(),
        )
        .await
        .map_err(js_err)
}

/// Publishes the consumer's queue depth as gauges every few seconds.
pub async fn watch_depth(bus: Bus, max_deliver: i64, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(mut consumer) = ensure(&bus, max_deliver).await else {
            continue;
        };
        if let Ok(info) = consumer.info().await {
            metrics::gauge!("ifox_router_consumer_pending").set(info.num_pending as f64);
            metrics::gauge!("ifox_router_consumer_ack_pending").set(info.num_ack_pending as f64);
            metrics::gauge!("ifox_router_consumer_redelivered").set(info.num_redelivered as f64);
        }
    }
}
