//! One received message and what is done with it: [`Delivery`] (the guard: one dropped without a
//! [`Disposition`] is NAKed from its `Drop`, so it is redelivered at once instead of after
//! `ack_wait`), [`Disposition`] (a dead letter is published, PubAck, *before* the TERM; when it cannot
//! be stored the message is NAKed and tried again), and [`nak_delay`], the one delay policy of
//! transient failures.
//!
//! **The last delivery is dead-lettered here, not from the advisory.** A NAK of a message on its
//! consumer's last allowed delivery (`max_deliver`) becomes a dead letter `max_deliveries` at once:
//! the server would drop it after that NAK and only say so in a core-NATS advisory, which nobody
//! hears while every replica restarts. The advisory watcher ([`super::watch`]) stays as the safety
//! net for messages whose last delivery was never settled (a crash, an `ack_wait` expiry).

use super::Bus;
use super::consumer::{ConsumerError, js};
use super::deadletter::Origin;
use async_nats::HeaderMap;
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use std::time::Duration;

/// How long a dead letter that cannot be stored (DEADLETTER without quorum, no PubAck) is retried
/// while its message is kept alive, before the message is NAKed.
pub const DEAD_LETTER_RETRY_BUDGET: Duration = Duration::from_secs(600);

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

/// How long transient failures are absorbed by a consumer with `max_deliver` deliveries before the
/// last one is dead-lettered: the NAK delays between them (≤ 0: unbounded, `None`).
pub fn outage_budget(max_deliver: i64) -> Option<Duration> {
    let max = u64::try_from(max_deliver).ok().filter(|m| *m > 0)?;
    Some((1..max).map(nak_delay).sum())
}

/// One received message with its JetStream position; settle it exactly once.
pub struct Delivery {
    msg: Option<Message>,
    stage: &'static str,
    stream: String,
    stream_seq: u64,
    delivered: u64,
    published: std::time::SystemTime,
    /// The consumer's `max_deliver` (≤ 0: unlimited).
    max_deliver: i64,
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
            max_deliver: -1,
        })
    }

    /// Notes the consumer's `max_deliver`, so a NAK of the last delivery becomes a dead letter.
    pub fn with_max_deliver(mut self, max_deliver: i64) -> Delivery {
        self.max_deliver = max_deliver;
        self
    }

    /// Whether this is the consumer's last allowed delivery of the message.
    pub fn is_last(&self) -> bool {
        u64::try_from(self.max_deliver).is_ok_and(|max| max > 0 && self.delivered >= max)
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

    /// Lets go of a copy of a message that another copy in this process is working on (a
    /// redelivery after `ack_wait` that reached the process still holding the first): an
    /// in-progress ack resets the message's timer and no NAK follows. The first copy's
    /// disposition settles the message (JetStream acknowledges by stream sequence).
    pub async fn release_duplicate(mut self) {
        let Some(msg) = self.msg.take() else {
            return;
        };
        metrics::counter!("ifox_consumer_duplicate_copies_total", "stage" => self.stage)
            .increment(1);
        tracing::debug!(
            stage = self.stage,
            stream_seq = self.stream_seq,
            "a second copy of a message this process holds; released"
        );
        let _ = msg.ack_with(AckKind::Progress).await;
    }

    /// Applies `disposition`. A dead letter is stored before the TERM, or the message is NAKed.
    pub async fn settle(mut self, bus: &Bus, disposition: Disposition) -> Settled {
        let Some(msg) = self.msg.take() else {
            return Settled::Naked;
        };
        let disposition = match disposition {
            Disposition::Nak(_) if self.is_last() => Disposition::DeadLetter {
                reason: "max_deliveries",
                detail: format!(
                    "still failing transiently after {} deliveries (max_deliver)",
                    self.delivered
                ),
            },
            other => other,
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
                // Retried here, the message kept alive, rather than left to a redelivery: by then
                // the stage may see its effect done (a bridge run recorded `failed`) and settle it
                // without a dead letter, or it was the last delivery.
                let started = std::time::Instant::now();
                let mut tries = 0u64;
                loop {
                    tries += 1;
                    let stored = bus
                        .dead_letter(
                            &origin,
                            reason,
                            &detail,
                            msg.headers.as_ref(),
                            msg.payload.clone(),
                        )
                        .await;
                    match stored {
                        Ok(()) => break (Some(AckKind::Term), Settled::DeadLettered),
                        Err(e) if started.elapsed() < DEAD_LETTER_RETRY_BUDGET => {
                            let pause = nak_delay(tries).min(Duration::from_secs(10));
                            tracing::warn!(stage = self.stage, stream_seq = self.stream_seq, reason, error = %e, attempt = tries, retry_in = ?pause, "dead letter not stored; retrying");
                            metrics::counter!("ifox_dead_letter_retries_total", "stage" => self.stage).increment(1);
                            let _ = msg.ack_with(AckKind::Progress).await;
                            tokio::time::sleep(pause).await;
                        }
                        Err(e) => {
                            let delay = nak_delay(self.delivered);
                            tracing::error!(stage = self.stage, stream_seq = self.stream_seq, reason, error = %e, retry_in = ?delay, "dead letter not stored within the retry budget; the message will be redelivered");
                            break (Some(AckKind::Nak(Some(delay))), Settled::DeadLetterFailed);
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nak_delay_doubles_per_delivery_up_to_thirty_seconds() {
        assert_eq!(nak_delay(0), Duration::from_millis(500));
        assert_eq!(nak_delay(1), Duration::from_millis(500));
        assert_eq!(nak_delay(2), Duration::from_secs(1));
        assert_eq!(nak_delay(4), Duration::from_secs(4));
        assert_eq!(nak_delay(50), Duration::from_secs(30));
    }

    #[test]
    fn the_router_absorbs_more_than_an_hour_of_transient_failures() {
        let max = super::super::consumer::ROUTER
            .config(0)
            .map(|c| c.max_deliver)
            .unwrap_or_default();
        let budget = outage_budget(max).unwrap_or_default();
        assert!(budget >= Duration::from_secs(3600), "{budget:?}");
        // The old file's 10 deliveries absorbed about two minutes.
        assert_eq!(outage_budget(10), Some(Duration::from_millis(121_500)));
        assert_eq!(outage_budget(-1), None);
    }
}
