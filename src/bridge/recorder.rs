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
//!   AGENT_RUNS side has not made it yet. Unsigned messages (anyone's publish on `ifox.runs.>`
//!   but ifox's own) change nothing: they are the feed, acked and left alone.
//!
//! Every transition is acked after its chunk committed; a database failure NAKs the chunk with the
//! toolkit's delay (no delivery limit: an outage is waited out, nothing is dropped); a chunk the
//! database refuses as data is applied one message at a time, and the message it still refuses is
//! dead-lettered (`invalid_transition`), so one poisoned message never holds up the others. A
//! transition of a run that has no record yet is NAKed too: after a recorder crash JetStream
//! redelivers the messages it held (the `delivering` that makes the record among them) behind newer
//! ones; [`UNKNOWN_RUN_AGE`] after RUNS stored it, it is dead-lettered (`run_unknown`). A message
//! whose signature does not verify is dead-lettered (`bad_signature`), one made more than
//! [`STALE_AFTER`] before RUNS stored it too (`stale_transition`). The lag between
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

/// How long a transition whose run has no record is tried again (NAK, 0.5 s doubling to 30 s)
/// before it is dead-lettered (`run_unknown`): counted from when RUNS stored it, so the
/// redeliveries of a database outage do not use it up; well past the 30 s `ack_wait` after which a
/// crashed recorder's messages (the `delivering` that makes the record) come back.
const UNKNOWN_RUN_AGE: Duration = Duration::from_secs(600);

/// A signed transition stored this long after it was made is not applied (RUNS's duplicate window).
const STALE_AFTER: Duration = Duration::from_secs(3600);

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
        let mut items = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match self.read(&d) {
                Read::Apply(mut t, change) => items.push(Item {
                    row: t.run.take(),
                    change,
                    d,
                }),
                Read::Feed => {
                    d.settle(&self.bus, Disposition::Ack).await;
                }
                Read::Invalid(reason, detail) => {
                    d.settle(&self.bus, Disposition::DeadLetter { reason, detail })
                        .await;
                }
            }
        }
        if items.is_empty() {
            return;
        }
        match self.apply(&items).await {
            Ok(outcomes) => {
                for (item, outcome) in items.into_iter().zip(outcomes) {
                    self.settle(item, outcome).await;
                }
            }
            // A message the database refuses as data (e.g. PostgreSQL's NUL in text) must not hold
            // up the others in its chunk: each is applied on its own, in order, and the one the
            // database still refuses is dead-lettered.
            Err(e) if is_data_error(&e) && items.len() > 1 => {
                tracing::warn!(error = %e, transitions = items.len(), "a chunk of run transitions refused as data; applying them one by one");
                for item in items {
                    match self.apply(std::slice::from_ref(&item)).await {
                        Ok(outcomes) => self.settle(item, outcomes[0]).await,
                        Err(e) => self.failed(item, &e).await,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, transitions = items.len(), "run transitions not recorded; retrying");
                for item in items {
                    self.failed(item, &e).await;
                }
            }
        }
    }

    /// `items` in order, in one transaction per kind: the records carried, then the transitions;
    /// what became of each.
    async fn apply(&self, items: &[Item]) -> Result<Vec<Outcome>, StoreError> {
        let rows: Vec<_> = items.iter().filter_map(|i| i.row.clone()).collect();
        write(&self.store, rows).await?;
        let changes: Vec<_> = items.iter().map(|i| i.change.clone()).collect();
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
        Ok(changes
            .iter()
            .zip(applied)
            .map(|(c, applied)| outcome(applied, known.get(&c.run_id)))
            .collect())
    }

    async fn settle(&self, item: Item, outcome: Outcome) {
        let Item { d, change, .. } = item;
        let settle = match outcome {
            Outcome::Applied => {
                metrics::counter!("ifox_bridge_transitions_total", "status" => change.to)
                    .increment(1);
                Disposition::Ack
            }
            Outcome::Finished => {
                // The guard refused it: the run had finished (the first outcome stays).
                metrics::counter!("ifox_recorder_transitions_refused_total", "status" => change.to)
                    .increment(1);
                Disposition::Ack
            }
            Outcome::Unknown if age(&d) < UNKNOWN_RUN_AGE => {
                Disposition::Nak(crate::bus::nak_delay(d.delivered()))
            }
            Outcome::Unknown => Disposition::DeadLetter {
                reason: "run_unknown",
                detail: format!(
                    "no record of run {} {} s after its {} transition was stored",
                    change.run_id,
                    age(&d).as_secs(),
                    change.to
                ),
            },
        };
        d.settle(&self.bus, settle).await;
    }

    /// A message whose write failed: dead-lettered when the database refuses it as data, else
    /// tried again later.
    async fn failed(&self, item: Item, e: &StoreError) {
        let d = item.d;
        let settle = if is_data_error(e) {
            Disposition::DeadLetter {
                reason: "invalid_transition",
                detail: format!("the database refuses it: {e}"),
            }
        } else {
            Disposition::Nak(crate::bus::nak_delay(d.delivered()))
        };
        d.settle(&self.bus, settle).await;
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
        let Some(sig) = sig else {
            return Read::Feed;
        };
        if !lifecycle::verify(
            &self.key,
            d.subject(),
            msg_id.unwrap_or(""),
            d.payload(),
            sig,
        ) {
            // Not silent: a forgery, or a bridge and a recorder with different keys (every
            // transition would be lost) — kept in DEADLETTER, replayable once the keys agree.
            metrics::counter!("ifox_recorder_unsigned_total").increment(1);
            tracing::warn!(
                subject = d.subject(),
                "a RUNS message with an invalid record signature changes no run"
            );
            return Read::Invalid(
                "bad_signature",
                "Ifox-Record-Sig does not verify with this recorder's key".to_owned(),
            );
        }
        let t: Transition = match serde_json::from_slice(d.payload()) {
            Ok(t) => t,
            Err(e) => {
                return Read::Invalid(
                    "invalid_transition",
                    format!("not an ifox.run_status.v1 document: {e}"),
                );
            }
        };
        let Some(change) = t.change() else {
            return Read::Invalid(
                "invalid_transition",
                format!(
                    "status {:?} or time {:?} is not a transition",
                    t.status, t.at
                ),
            );
        };
        // A signed transition stored again long after it was made (copied from the feed and
        // published once RUNS's duplicate window forgot it) is not applied a second time.
        let stored = d
            .published()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
        if stored.saturating_sub(change.at) > STALE_AFTER.as_millis() as i64 {
            return Read::Invalid(
                "stale_transition",
                format!(
                    "made at {} but stored more than {STALE_AFTER:?} later",
                    t.at
                ),
            );
        }
        Read::Apply(Box::new(t), change)
    }
}

enum Read {
    /// A bridge's transition.
    Apply(Box<Transition>, OwnedChange),
    /// Part of the feed, not of the record (no signature).
    Feed,
    /// A signature that does not verify, or a signed message that is not a transition:
    /// dead-lettered with this reason.
    Invalid(&'static str, String),
}

struct Item {
    d: Delivery,
    row: Option<runs::RunRow>,
    change: OwnedChange,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Applied,
    /// Refused by the guard: the run had finished.
    Finished,
    /// No record of the run (yet).
    Unknown,
}

/// What became of a transition: applied, refused by the guard because its run had finished (the
/// record read after the write is final), or neither — no record when the write looked (one found
/// now in another status was made in between, by the AGENT_RUNS side): tried again, never acked
/// unapplied.
fn outcome(applied: bool, found_after: Option<&RunRecord>) -> Outcome {
    match (applied, found_after) {
        (true, _) => Outcome::Applied,
        (false, Some(r)) if run_lifecycle::is_final(&r.status) => Outcome::Finished,
        (false, _) => Outcome::Unknown,
    }
}

/// How long a transition has been in RUNS.
fn age(d: &Delivery) -> Duration {
    d.published().elapsed().unwrap_or_default()
}

/// The database refused the values, not the request: trying again will not help (PostgreSQL
/// SQLSTATE classes 22, data exception, and 23, integrity constraint violation).
fn is_data_error(e: &StoreError) -> bool {
    match e {
        StoreError::Query(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
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

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
