//! The consumer toolkit: every durable pull consumer of ifox (the router on EVENTS, the provisioner
//! on PROVISION, the bridge on AGENT_RUNS, the run recorder on AGENT_RUNS and RUNS) runs on it, so
//! they share one definition loader, one pull loop with reconnect, one delivery guard, one
//! NAK-delay policy and one dead-letter format.
//!
//! The pieces live in three files: this one (definitions and the loop), [`super::delivery`] (the
//! guard and dispositions) and [`super::watch`] (advisories and gauges); they are re-exported here.
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

pub use super::delivery::{DROPPED, Delivery, Disposition, Settled, in_progress_all, nak_delay};
pub use super::watch::{watch_depth, watch_max_deliveries};

use super::Bus;
use super::health::Health;
use async_nats::jetstream::consumer::pull;
use backon::{BackoffBuilder, ExponentialBuilder};
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

/// The run recorder's consumer on AGENT_RUNS (runs recorded `queued`).
pub const RECORDER_QUEUED: ConsumerDef = ConsumerDef {
    stream: "AGENT_RUNS",
    file: "streams/consumers/AGENT_RUNS.recorder.json",
    json: include_str!("../../streams/consumers/AGENT_RUNS.recorder.json"),
    stage: "recorder",
};

/// The run recorder's consumer on RUNS (the bridge's transitions recorded).
pub const RECORDER_RUNS: ConsumerDef = ConsumerDef {
    stream: "RUNS",
    file: "streams/consumers/RUNS.recorder.json",
    json: include_str!("../../streams/consumers/RUNS.recorder.json"),
    stage: "recorder",
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

/// A JetStream failure at `step`, as a [`ConsumerError`] (shared by the toolkit's files).
pub(super) fn js(step: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ConsumerError {
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
    let max_deliver = config.max_deliver;
    consumer
        .take_until(shutdown.clone().cancelled_owned())
        .ready_chunks(options.chunk.max(1))
        .map(Ok::<_, ConsumerError>)
        .try_for_each_concurrent(options.concurrency.max(1), |received| async move {
            let mut deliveries = Vec::with_capacity(received.len());
            let mut failed = None;
            for m in received {
                match m {
                    Ok(m) => match Delivery::new(m, stage).map(|d| d.with_max_deliver(max_deliver)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_consumer_file_parses_and_names_its_durable() {
        for def in [ROUTER, PROVISIONER, BRIDGE, RECORDER_QUEUED, RECORDER_RUNS] {
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
        assert_eq!(RECORDER_QUEUED.name(), "recorder");
        assert_eq!(RECORDER_RUNS.name(), "recorder");
        assert_eq!(ROUTER.config(3).map(|c| c.max_deliver).ok(), Some(3));
        assert_eq!(ROUTER.config(0).map(|c| c.max_deliver).ok(), Some(150));
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
}
