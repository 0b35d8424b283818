//! The consumer toolkit: every durable pull consumer of ifox (the router on EVENTS, the provisioner
//! on PROVISION, the bridge on AGENT_RUNS) runs on it, so they share one definition loader, one pull
//! loop with reconnect, one delivery guard, one NAK-delay policy and one dead-letter format.
//!
//! - [`ConsumerDef`]: a consumer file of `streams/consumers/` (the same JSON `nats consumer add
//!   <STREAM> --config <file>` takes), embedded in the binary.
//! - [`Delivery`]: one received message. It must be settled with a [`Disposition`]; one dropped
//!   without (a bug, a panic, a cancelled task) is NAKed from its `Drop`, so it is redelivered at
//!   once instead of after `ack_wait`.
//! - [`Disposition::DeadLetter`]: the dead letter is published (PubAck) *before* the TERM; when it
//!   cannot be stored, the message is NAKed instead and tried again later, never lost.
//! - [`nak_delay`]: the one delay policy of transient failures (0.5 s doubling per delivery, capped
//!   at 30 s), unless the failure names its own (an agent's `Retry-After`).
//! - [`run`]: the pull loop. It re-creates (idempotently) the consumer and resumes after every error,
//!   with a growing pause, until `shutdown`; the [`Health`] registry says whether it is consuming.
//! - [`watch_max_deliveries`]: the server's MAX_DELIVERIES advisory turned into a dead letter with
//!   reason `max_deliveries`; [`watch_depth`]: queue-depth gauges read from the consumer's info.

use super::Bus;
use super::deadletter::Origin;
use super::health::Health;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::{AckKind, Message};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A durable consumer definition committed under `streams/consumers/`.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerDef {
    /// The stream it reads.
    pub stream: &'static str,
    /// The file, for error messages and docs.
    pub file: &'static str,
    /// The file's JSON (embedded with `include_str!`).
    pub json: &'static str,
    /// The dead-letter stage and metric label of what it consumes.
    pub stage: &'static str,
}

/// The router's consumer on EVENTS.
pub const ROUTER: ConsumerDef = ConsumerDef {
    stream: "EVENTS",
    file: "streams/consumers/EVENTS.router.json",
    json: include_str!("../../streams/consumers/EVENTS.router.json"),
    stage: "router",
};

/// The provisioner's consumer on PROVISION.
pub const PROVISIONER: ConsumerDef = ConsumerDef {
    stream: "PROVISION",
    file: "streams/consumers/PROVISION.provisioner.json",
    json: include_str!("../../streams/consumers/PROVISION.provisioner.json"),
    stage: "provisioner",
};

/// The bridge's consumer on AGENT_RUNS.
pub const BRIDGE: ConsumerDef = ConsumerDef {
    stream: "AGENT_RUNS",
    file: "streams/consumers/AGENT_RUNS.bridge.json",
    json: include_str!("../../streams/consumers/AGENT_RUNS.bridge.json"),
    stage: "bridge",
};

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("{file} is invalid: {source}")]
    Definition {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file} has no durable_name")]
    Unnamed { file: &'static str },
    #[error("JetStream ({step}): {detail}")]
    JetStream { step: &'static str, detail: String },
}

fn js(step: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ConsumerError {
    move |e| ConsumerError::JetStream {
        step,
        detail: e.to_string(),
    }
}

impl ConsumerDef {
    /// The definition from the committed file, with `max_deliver` replaced when `max_deliver > 0`.
    pub fn config(&self, max_deliver: i64) -> Result<pull::Config, ConsumerError> {
        let mut config: pull::Config =
            serde_json::from_str(self.json).map_err(|source| ConsumerError::Definition {
                file: self.file,
                source,
            })?;
        if config.durable_name.as_deref().is_none_or(str::is_empty) {
            return Err(ConsumerError::Unnamed { file: self.file });
        }
        if max_deliver > 0 {
            config.max_deliver = max_deliver;
        }
        Ok(config)
    }

    /// The durable name (the file is checked by a test, so a missing name is a build-time mistake).
    pub fn name(&self) -> String {
        self.config(0)
            .ok()
            .and_then(|c| c.durable_name)
            .unwrap_or_default()
    }
}

/// What to tell JetStream about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done: its effects are durable.
    Ack,
    /// Not now: redeliver after the delay.
    Nak(Duration),
    /// Never: copy to `ifox.deadletter.<stage>.<reason>` (PubAck), then TERM.
    DeadLetter {
        reason: &'static str,
        detail: String,
    },
}

/// What was done with a settled delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acked,
    Naked,
    DeadLettered,
    /// The dead letter could not be stored: NAKed instead, to be tried again.
    DeadLetterFailed,
}

/// The delay before the redelivery of a message that failed transiently for the `delivered`-th time.
pub fn nak_delay(delivered: u64) -> Duration {
    let exp = delivered.saturating_sub(1).min(6) as u32;
    Duration::from_millis(500 * 2u64.pow(exp)).min(Duration::from_secs(30))
}

/// One received message with its JetStream position; settle it exactly once.
pub struct Delivery {
    msg: Option<Message>,
    stage: &'static str,
    stream: String,
    stream_seq: u64,
    delivered: u64,
    published: std::time::SystemTime,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("stage", &self.stage)
            .field("stream", &self.stream)
            .field("stream_seq", &self.stream_seq)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Wraps a message of `stage`'s consumer; `None` for a message without JetStream info (not a
    /// consumer delivery, so nothing to acknowledge).
    pub fn new(msg: Message, stage: &'static str) -> Option<Delivery> {
        let (stream, stream_seq, delivered, published) = match msg.info() {
            Ok(i) => (
                i.stream.to_owned(),
                i.stream_sequence,
                i.delivered.max(1) as u64,
                std::time::SystemTime::from(i.published),
            ),
            Err(_) => return None,
        };
        Some(Delivery {
            msg: Some(msg),
            stage,
            stream,
            stream_seq,
            delivered,
            published,
        })
    }

    // The message is present until `settle` or `Drop` takes it, and both consume `self`.
    fn msg(&self) -> &Message {
        self.msg
            .as_ref()
            .expect("a delivery holds its message until settled")
    }

    pub fn subject(&self) -> &str {
        self.msg().subject.as_str()
    }
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.msg().headers.as_ref()
    }
    pub fn payload(&self) -> &Bytes {
        &self.msg().payload
    }
    pub fn stream(&self) -> &str {
        &self.stream
    }
    pub fn stream_seq(&self) -> u64 {
        self.stream_seq
    }
    /// When the stream stored it (the same on every redelivery).
    pub fn published(&self) -> std::time::SystemTime {
        self.published
    }
    /// How many times the server delivered it (1 the first time).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The subject its acks go to, for in-progress acks sent while it is held elsewhere (see
    /// [`in_progress_all`]).
    pub fn ack_subject(&self) -> Option<async_nats::Subject> {
        self.msg().reply.clone()
    }

    /// Tells the server the message is being worked on (resets its `ack_wait`).
    pub async fn in_progress(&self) -> Result<(), ConsumerError> {
        self.msg()
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| js("in-progress ack")(&e))
    }

    /// Applies `disposition`. A dead letter is stored before the TERM, or the message is NAKed.
    pub async fn settle(mut self, bus: &Bus, disposition: Disposition) -> Settled {
        let Some(msg) = self.msg.take() else {
            return Settled::Naked;
        };
        let (kind, settled) = match disposition {
            Disposition::Ack => (None, Settled::Acked),
            Disposition::Nak(delay) => (Some(AckKind::Nak(Some(delay))), Settled::Naked),
            Disposition::DeadLetter { reason, detail } => {
                let origin = Origin {
                    stage: self.stage,
                    subject: msg.subject.as_str(),
                    stream: &self.stream,
                    stream_seq: self.stream_seq,
                    attempts: self.delivered,
                };
                match bus
                    .dead_letter(
                        &origin,
                        reason,
                        &detail,
                        msg.headers.as_ref(),
                        msg.payload.clone(),
                    )
                    .await
                {
                    Ok(()) => (Some(AckKind::Term), Settled::DeadLettered),
                    Err(e) => {
                        let delay = nak_delay(self.delivered);
                        tracing::error!(stage = self.stage, stream_seq = self.stream_seq, reason, error = %e, retry_in = ?delay, "dead letter not stored; the message will be retried");
                        (Some(AckKind::Nak(Some(delay))), Settled::DeadLetterFailed)
                    }
                }
            }
        };
        let acked = match kind {
            // Acks wait for the server's confirmation: the caller's effect is durable, and a lost
            // ack would redeliver an event whose effect is already there (idempotent, but wasted).
            None => msg.double_ack().await,
            Some(kind) => msg.ack_with(kind).await,
        };
        if let Err(e) = acked {
            tracing::warn!(stage = self.stage, stream_seq = self.stream_seq, error = %e, "ack not confirmed; the message will be redelivered");
        }
        settled
    }
}

/// In-progress acks (`+WPI`) for messages held by a scheduler (their `ack_subject`s): each resets
/// its message's `ack_wait`. Not confirmed by the server; sent again at the next tick.
pub async fn in_progress_all(bus: &Bus, subjects: Vec<async_nats::Subject>) {
    for s in subjects {
        if let Err(e) = bus.client().publish(s, Bytes::from_static(b"+WPI")).await {
            tracing::debug!(error = %e, "in-progress ack not sent");
        }
    }
}

/// Counter of deliveries dropped without a disposition (and NAKed by the guard).
pub const DROPPED: &str = "ifox_consumer_dropped_total";

impl Drop for Delivery {
    fn drop(&mut self) {
        let Some(msg) = self.msg.take() else {
            return;
        };
        metrics::counter!(DROPPED, "stage" => self.stage).increment(1);
        tracing::warn!(
            stage = self.stage,
            stream_seq = self.stream_seq,
            "delivery dropped without a disposition; NAKed for redelivery"
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = msg.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
}

/// How many messages a loop pulls and hands over at once.
#[derive(Debug, Clone, Copy)]
pub struct LoopOptions {
    /// Messages requested per pull.
    pub batch: usize,
    /// Handler calls in flight at once.
    pub concurrency: usize,
    /// Deliveries handed to one handler call at most (what has arrived, up to this many).
    pub chunk: usize,
}

impl LoopOptions {
    /// One delivery at a time.
    pub const SEQUENTIAL: LoopOptions = LoopOptions {
        batch: 16,
        concurrency: 1,
        chunk: 1,
    };
}

/// The pause before the consumer is re-established after an error (250 ms doubling, 10 s at most).
fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(10))
        .without_max_times()
        .with_jitter()
        .build()
}

/// Consumes `def` until `shutdown`: creates or updates the durable consumer from `config`, pulls,
/// and hands deliveries to `handler` in chunks, which must settle each. After an error (NATS gone,
/// stream missing) it resumes with a growing pause; [`Health`] shows it not consuming meanwhile.
pub async fn run<H, Fut>(
    bus: Bus,
    def: ConsumerDef,
    config: pull::Config,
    options: LoopOptions,
    health: Health,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Vec<Delivery>) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = config.durable_name.clone().unwrap_or_default();
    let key = format!("{}/{name}", def.stream);
    health.register(&key);
    let mut pauses = reconnect_backoff();
    while !shutdown.is_cancelled() {
        let outcome = consume(
            &bus, &def, &config, options, &health, &key, &shutdown, &handler,
        );
        match outcome.await {
            Ok(()) => break,
            Err(e) => {
                health.set(&key, Some(e.to_string()));
                let pause = pauses.next().unwrap_or(Duration::from_secs(10));
                tracing::warn!(consumer = %key, error = %e, retry_in = ?pause, "consumer interrupted; resuming");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    health.set(&key, Some("stopped".to_owned()));
}

#[allow(clippy::too_many_arguments)]
async fn consume<H, Fut>(
    bus: &Bus,
    def: &ConsumerDef,
    config: &pull::Config,
    options: LoopOptions,
    health: &Health,
    key: &str,
    shutdown: &CancellationToken,
    handler: &H,
) -> Result<(), ConsumerError>
where
    H: Fn(Vec<Delivery>) -> Fut,
    Fut: Future<Output = ()>,
{
    let stream = bus
        .jetstream()
        .get_stream(def.stream)
        .await
        .map_err(|e| js("get stream")(&e))?;
    let consumer: pull::Stream = stream
        .create_consumer(config.clone())
        .await
        .map_err(|e| js("create consumer")(&e))?
        .stream()
        .max_messages_per_batch(options.batch.max(1))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| js("pull")(&e))?;
    health.set(key, None);
    tracing::info!(consumer = %key, concurrency = options.concurrency, "consuming");
    let stage = def.stage;
    consumer
        .take_until(shutdown.clone().cancelled_owned())
        .ready_chunks(options.chunk.max(1))
        .map(Ok::<_, ConsumerError>)
        .try_for_each_concurrent(options.concurrency.max(1), |received| async move {
            let mut deliveries = Vec::with_capacity(received.len());
            let mut failed = None;
            for m in received {
                match m {
                    Ok(m) => match Delivery::new(m, stage) {
                        Some(d) => deliveries.push(d),
                        None => tracing::error!(consumer = %key, "a message without JetStream info; ignored"),
                    },
                    Err(e) => failed = Some(js("receive")(&e)),
                }
            }
            if !deliveries.is_empty() {
                handler(deliveries).await;
            }
            // A receive error ends this pass (the loop re-establishes the consumer), after the
            // deliveries that arrived with it were handled.
            failed.map_or(Ok(()), Err)
        })
        .await?;
    if shutdown.is_cancelled() {
        Ok(())
    } else {
        Err(ConsumerError::JetStream {
            step: "pull",
            detail: "the message stream ended".to_owned(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_consumer_file_parses_and_names_its_durable() {
        for def in [ROUTER, PROVISIONER, BRIDGE] {
            let c = def.config(0).unwrap_or_else(|e| panic!("{e}"));
            assert!(!def.name().is_empty(), "{}", def.file);
            assert!(
                c.filter_subject.starts_with("ifox."),
                "{}: {}",
                def.file,
                c.filter_subject
            );
        }
        assert_eq!(ROUTER.name(), "router");
        assert_eq!(PROVISIONER.name(), "provisioner");
        assert_eq!(BRIDGE.name(), "bridge");
        assert_eq!(ROUTER.config(3).map(|c| c.max_deliver).ok(), Some(3));
        assert_eq!(ROUTER.config(0).map(|c| c.max_deliver).ok(), Some(10));
    }

    #[test]
    fn a_definition_without_a_durable_name_is_refused() {
        let def = ConsumerDef {
            json: r#"{"durable_name": "", "deliver_policy": "all", "ack_policy": "explicit", "replay_policy": "instant", "filter_subject": "ifox.x.>"}"#,
            ..ROUTER
        };
        let r = def.config(0);
        assert!(matches!(r, Err(ConsumerError::Unnamed { .. })), "{r:?}");
        let def = ConsumerDef {
            json: "{not json",
            ..ROUTER
        };
        assert!(matches!(
            def.config(0),
            Err(ConsumerError::Definition { .. })
        ));
    }

    #[test]
    fn the_nak_delay_doubles_per_delivery_up_to_thirty_seconds() {
        assert_eq!(nak_delay(0), Duration::from_millis(500));
        assert_eq!(nak_delay(1), Duration::from_millis(500));
        assert_eq!(nak_delay(2), Duration::from_secs(1));
        assert_eq!(nak_delay(4), Duration::from_secs(4));
        assert_eq!(nak_delay(50), Duration::from_secs(30));
    }
}
