//! The `recorder` role: the runs table as the projection of two streams.
//!
//! - AGENT_RUNS (consumer `recorder`, `streams/consumers/AGENT_RUNS.recorder.json`): every run
//!   document becomes a `queued` record (`INSERT … ON CONFLICT DO NOTHING`, one transaction per
//!   chunk), so runs waiting for a delivery slot show in `ifox runs list`. A message that is not a
//!   run document is left to the bridge, which dead-letters it.
//! - RUNS (consumer `recorder`, `streams/consumers/RUNS.recorder.json`): the bridge's transitions,
//!   signed ([`super::lifecycle`]), applied in stream order with the guarded transitions of
//!   [`crate::store::run_lifecycle`] (a chunk in one transaction; on SQLite set operations over the
//!   staged batch, [`run_lifecycle::transition_batch_sqlite`]), so the first outcome of a run wins
//!   as when the bridge wrote it itself. A `delivering` carries the run's record, made first if the
//!   AGENT_RUNS side has not made it yet. Unsigned messages (the API's and the sweeper's
//!   announcements, already recorded; anyone else's publish) change nothing.
//!
//! Every message is acked after its chunk committed; a database failure NAKs the chunk with the
//! toolkit's delay (no delivery limit: an outage is waited out, nothing is dropped). A transition
//! of a run that has no record yet is NAKed too: after a recorder crash JetStream redelivers the
//! messages it held (the `delivering` that makes the record among them) behind newer ones; past
//! [`UNKNOWN_RUN_DELIVERIES`] it is dead-lettered (`run_unknown`). The lag between
//! RUNS and the table is `ifox_consumer_pending{stream="RUNS",consumer="recorder"}`; the run token
//! checks of the API wait up to [`LAG_BUDGET`] for it.

use super::lifecycle::{self, Transition};
use super::plan::Planner;
use crate::bus::consumer::{self, LoopOptions, RECORDER_QUEUED, RECORDER_RUNS};
use crate::bus::{Bus, Delivery, Disposition, Health};
use crate::domain::headers;
use crate::store::run_lifecycle::{self, OwnedChange, RunRecord};
use crate::store::{Backend, Store, StoreError, runs};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a reader that needs a run's newest transition (the API checking a run token) waits for
/// the recorder to catch up.
pub const LAG_BUDGET: Duration = Duration::from_secs(3);

/// Deliveries of a transition whose run has no record before it is dead-lettered (`run_unknown`):
/// with the NAK delay (0.5 s doubling to 30 s) about 2.5 minutes, past the 30 s `ack_wait` after
/// which a crashed recorder's messages (the `delivering` that makes the record) come back.
const UNKNOWN_RUN_DELIVERIES: u64 = 12;

/// Transitions per SQLite call at most.
const TRANSITIONS_PER_CALL: usize = 64;

const OPTIONS: LoopOptions = LoopOptions {
    batch: 512,
    // One chunk at a time: the transitions of a run are applied in the order RUNS stored them.
    concurrency: 1,
    chunk: 256,
};

/// The role; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    store: Store,
    bus: Bus,
    key: Arc<[u8]>,
}

impl Recorder {
    /// `record_key`: [`lifecycle::record_key`] of the bridge's run-token key.
    pub fn new(store: Store, bus: Bus, record_key: Arc<[u8]>) -> Recorder {
        Recorder {
            store,
            bus,
            key: record_key,
        }
    }

    /// Consumes AGENT_RUNS and RUNS until `shutdown`.
    pub async fn run(
        self,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<(), consumer::ConsumerError> {
        let queued = consumer::run(
            self.bus.clone(),
            RECORDER_QUEUED,
            RECORDER_QUEUED.config(0)?,
            OPTIONS,
            health.clone(),
            shutdown.clone(),
            |deliveries| self.queued(deliveries),
        );
        let transitions = consumer::run(
            self.bus.clone(),
            RECORDER_RUNS,
            RECORDER_RUNS.config(0)?,
            OPTIONS,
            health,
            shutdown.clone(),
            |deliveries| self.transitions(deliveries),
        );
        tokio::join!(queued, transitions);
        Ok(())
    }

    async fn queued(&self, deliveries: Vec<Delivery>) {
        let rows: Vec<runs::RunRow> = deliveries
            .iter()
            .filter_map(|d| Planner::check(d).ok().map(|c| c.row(d)))
            .collect();
        let disposition = match write(&self.store, rows).await {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, runs = deliveries.len(), "run records not stored; retrying");
                Some(e)
            }
        };
        for d in deliveries {
            let settle = match &disposition {
                None => Disposition::Ack,
                Some(_) => Disposition::Nak(crate::bus::nak_delay(d.delivered())),
            };
            d.settle(&self.bus, settle).await;
        }
    }

    async fn transitions(&self, deliveries: Vec<Delivery>) {
        let mut rows = Vec::new();
        let mut changes = Vec::new();
        let mut kept = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match self.read(&d) {
                Read::Apply(mut t, change) => {
                    rows.extend(t.run.take());
                    changes.push(change);
                    kept.push(d);
                }
                Read::Feed => {
                    d.settle(&self.bus, Disposition::Ack).await;
                }
                Read::Invalid(detail) => {
                    let reason = "invalid_transition";
                    d.settle(&self.bus, Disposition::DeadLetter { reason, detail })
                        .await;
                }
            }
        }
        if kept.is_empty() {
            return;
        }
        let written = async {
            write(&self.store, rows).await?;
            let applied = write_transitions(&self.store, &changes).await?;
            // A refused transition of a run with no record yet came before the one that makes it:
            // after a recorder's crash JetStream redelivers what it held after `ack_wait`, behind
            // newer messages. It is tried again, not dropped.
            let refused: Vec<String> = changes
                .iter()
                .zip(&applied)
                .filter(|(_, applied)| !**applied)
                .map(|(c, _)| c.run_id.clone())
                .collect();
            let known = if refused.is_empty() {
                HashMap::new()
            } else {
                let mut conn = self.store.pool().acquire().await?;
                runs::states(&mut conn, &refused).await?
            };
            Ok::<_, StoreError>((applied, known))
        };
        match written.await {
            Ok((applied, known)) => {
                for ((change, applied), d) in changes.iter().zip(applied).zip(kept) {
                    let settle = if applied {
                        metrics::counter!("ifox_bridge_transitions_total", "status" => change.to)
                            .increment(1);
                        Disposition::Ack
                    } else if known.contains_key(&change.run_id) {
                        // The guard refused it: the run had finished (the first outcome stays).
                        metrics::counter!("ifox_recorder_transitions_refused_total", "status" => change.to)
                            .increment(1);
                        Disposition::Ack
                    } else if d.delivered() < UNKNOWN_RUN_DELIVERIES {
                        Disposition::Nak(crate::bus::nak_delay(d.delivered()))
                    } else {
                        Disposition::DeadLetter {
                            reason: "run_unknown",
                            detail: format!(
                                "no record of run {} after {} deliveries of its {} transition",
                                change.run_id,
                                d.delivered(),
                                change.to
                            ),
                        }
                    };
                    d.settle(&self.bus, settle).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, transitions = kept.len(), "run transitions not recorded; retrying");
                for d in kept {
                    let delay = crate::bus::nak_delay(d.delivered());
                    d.settle(&self.bus, Disposition::Nak(delay)).await;
                }
            }
        }
    }

    /// What a RUNS message is to the record.
    fn read(&self, d: &Delivery) -> Read {
        let h = d.headers();
        let sig = h
            .and_then(|h| h.get(headers::RECORD_SIG))
            .map(|v| v.as_str());
        let msg_id = h
            .and_then(|h| h.get(headers::NATS_MSG_ID))
            .map(|v| v.as_str());
        let (Some(sig), Some(msg_id)) = (sig, msg_id) else {
            return Read::Feed;
        };
        if !lifecycle::verify(&self.key, d.subject(), msg_id, d.payload(), sig) {
            metrics::counter!("ifox_recorder_unsigned_total").increment(1);
            tracing::warn!(
                subject = d.subject(),
                "a RUNS message with an invalid record signature changes no run"
            );
            return Read::Feed;
        }
        let t: Transition = match serde_json::from_slice(d.payload()) {
            Ok(t) => t,
            Err(e) => return Read::Invalid(format!("not an ifox.run_status.v1 document: {e}")),
        };
        match t.change() {
            Some(change) => Read::Apply(Box::new(t), change),
            None => Read::Invalid(format!(
                "status {:?} or time {:?} is not a transition",
                t.status, t.at
            )),
        }
    }
}

enum Read {
    /// A bridge's transition.
    Apply(Box<Transition>, OwnedChange),
    /// Part of the feed, not of the record.
    Feed,
    /// Signed but unreadable: dead-lettered.
    Invalid(String),
}

/// The transitions in order, in one transaction (SQLite: one call per 64); whether each applied.
async fn write_transitions(
    store: &Store,
    changes: &[OwnedChange],
) -> Result<Vec<bool>, StoreError> {
    let changes: Vec<_> = changes.iter().map(OwnedChange::as_change).collect();
    if store.backend() == Backend::Sqlite {
        let mut conn = store.pool().acquire().await?;
        let mut applied = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(TRANSITIONS_PER_CALL) {
            applied.extend(run_lifecycle::transition_batch_sqlite(&mut conn, chunk).await?);
        }
        return Ok(applied);
    }
    let mut tx = store.begin().await?;
    let mut applied = Vec::with_capacity(changes.len());
    for c in &changes {
        applied.push(run_lifecycle::transition(&mut tx, c).await?);
    }
    tx.commit().await?;
    Ok(applied)
}

/// One transaction: which runs exist, insert the others; the records that existed before.
pub async fn write(
    store: &Store,
    mut rows: Vec<runs::RunRow>,
) -> Result<HashMap<String, RunRecord>, StoreError> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    if store.backend() == Backend::Sqlite {
        let mut conn = store.pool().acquire().await?;
        let mut earlier = HashMap::new();
        for chunk in rows.chunks(runs::CHUNK) {
            earlier.extend(runs::record_batch_sqlite(&mut conn, chunk).await?);
        }
        return Ok(earlier);
    }
    let mut tx = store.begin().await?;
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    let earlier = runs::states(&mut tx, &ids).await?;
    rows.retain(|r| !earlier.contains_key(&r.run_id));
    if !rows.is_empty() {
        runs::record_many(&mut tx, &rows).await?;
    }
    tx.commit().await?;
    Ok(earlier)
}
