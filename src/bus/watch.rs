//! Watchers beside a consumer loop: the server's MAX_DELIVERIES advisory turned into a dead letter
//! with reason `max_deliveries`, and queue-depth gauges read from the consumer's info.

use super::Bus;
use super::consumer::{ConsumerDef, ConsumerError, js};
use super::deadletter::Origin;
use backon::ExponentialBuilder;
use futures::StreamExt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The server's MAX_DELIVERIES advisory.
#[derive(Debug, serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Copies messages of `def` that exhausted their deliveries to DEADLETTER (reason
/// `max_deliveries`). Replicas share a queue group, so one of them handles each advisory (and the
/// dead letter's `Nats-Msg-Id` collapses any double).
pub async fn watch_max_deliveries(bus: Bus, def: ConsumerDef, shutdown: CancellationToken) {
    let name = def.name();
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{name}",
        def.stream
    );
    let mut sub = match bus
        .client()
        .queue_subscribe(subject, format!("ifox-{name}"))
        .await
    {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(consumer = %name, error = %e, "cannot watch MAX_DELIVERIES advisories");
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
        let attempt = || dead_letter_exhausted(&bus, &def, &advisory);
        let policy = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(20);
        let done = backon::Retryable::retry(attempt, policy)
            .notify(|e, d| tracing::warn!(stream_seq = advisory.stream_seq, error = %e, retry_in = ?d, "exhausted message not yet dead-lettered; retrying"));
        tokio::select! {
            () = shutdown.cancelled() => return,
            r = done => if let Err(e) = r {
                tracing::error!(stream_seq = advisory.stream_seq, error = %e, "exhausted message could not be dead-lettered");
            }
        }
    }
}

async fn dead_letter_exhausted(
    bus: &Bus,
    def: &ConsumerDef,
    a: &MaxDeliveries,
) -> Result<(), ConsumerError> {
    let stream = bus
        .jetstream()
        .get_stream(def.stream)
        .await
        .map_err(|e| js("get stream")(&e))?;
    let raw = stream
        .get_raw_message(a.stream_seq)
        .await
        .map_err(|e| js("get message")(&e))?;
    let origin = Origin {
        stage: def.stage,
        subject: raw.subject.as_str(),
        stream: def.stream,
        stream_seq: a.stream_seq,
        attempts: a.deliveries,
    };
    let detail = format!("gave up after {} deliveries", a.deliveries);
    bus.dead_letter(
        &origin,
        "max_deliveries",
        &detail,
        Some(&raw.headers),
        raw.payload.clone(),
    )
    .await
    .map_err(|e| js("dead letter")(&e))
}

/// Gauges of a consumer's queue depth, read from its info every `every` (the consumer is not
/// touched): `ifox_consumer_pending`, `ifox_consumer_ack_pending`, `ifox_consumer_redelivered`,
/// labelled `stream` and `consumer`.
pub async fn watch_depth(bus: Bus, def: ConsumerDef, every: Duration, shutdown: CancellationToken) {
    let name = def.name();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(stream) = bus.jetstream().get_stream(def.stream).await else {
            continue;
        };
        let Ok(info) = stream.consumer_info(&name).await else {
            continue;
        };
        let labels = [
            ("stream", def.stream.to_owned()),
            ("consumer", name.clone()),
        ];
        metrics::gauge!("ifox_consumer_pending", &labels).set(info.num_pending as f64);
        metrics::gauge!("ifox_consumer_ack_pending", &labels).set(info.num_ack_pending as f64);
        metrics::gauge!("ifox_consumer_redelivered", &labels).set(info.num_redelivered as f64);
    }
}
