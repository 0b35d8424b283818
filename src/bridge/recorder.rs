//! Batched run-record IO: the run records are the bridge's projection of AGENT_RUNS. Every chunk of
//! AGENT_RUNS messages hands its runs to one task ("record these runs"); the task serves whatever is
//! waiting with one `SELECT … IN (…)` of those already recorded and one multi-row
//! `INSERT … ON CONFLICT DO NOTHING` of the rest, in one transaction (per 512 rows), and answers each
//! request after the commit with the records that existed before.
//! On SQLite that is one multi-statement call (`BEGIN IMMEDIATE; …; COMMIT`), one hand-off to the
//! connection's thread instead of writers fighting for the one write lock with a hop per statement;
//! on PostgreSQL a transaction of two statements: a commit per batch, not per run. Nobody is answered
//! before their rows are durable, so no delivery starts before its record exists.
//!
//! The same task writes the bridge's lifecycle transitions (`delivering`, `running`, outcomes, the
//! sweeper's `timeout`): whatever is waiting goes in one transaction (on SQLite one multi-statement
//! call of set operations over the staged batch, [`run_lifecycle::transition_batch_sqlite`]: a
//! handful of statement results cross from SQLite's thread per batch, not two per transition), in
//! the order they were handed over, and each
//! applied transition is then announced on RUNS in that order (published at once; its PubAck is
//! awaited off the writer's path and a missing one counted in
//! `ifox_bridge_status_unpublished_total`). A transition handed over without waiting
//! ([`Recorder::transition_later`], the `running` of an `investigate` answer) still comes before any
//! later one of the same run.

use super::lifecycle::RunRef;
use crate::bus::Bus;
use crate::store::run_lifecycle::{self, OwnedChange, RunRecord};
use crate::store::{Backend, Store, StoreError, runs};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;

/// How long a batch of transitions nobody waits for waits for company.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Per run handed to `record`, in order: the record that existed before (`None`: recorded now).
pub type Earlier = Vec<Option<RunRecord>>;

type Reply = oneshot::Sender<Result<Earlier, String>>;

/// A transition to write, and whom to tell whether it applied.
struct Transition {
    run: RunRef,
    change: OwnedChange,
    reply: Option<oneshot::Sender<Result<bool, String>>>,
}

enum Request {
    Record(Vec<runs::RunRow>, Reply),
    Transition(Box<Transition>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

/// Transitions per SQLite call at most.
const TRANSITIONS_PER_CALL: usize = 64;

impl Recorder {
    /// Starts the writer on a thread and runtime of its own, with its own pool: its few sequential
    /// statements per batch must not queue behind hundreds of event tasks for a turn on the shared
    /// runtime (that wait, not SQL, dominated a batch on 2 cores). The pool holds one connection:
    /// batches are sequential anyway, and on SQLite a connection drops its whole page cache whenever
    /// another connection wrote, so two alternating connections re-read the indexes every batch.
    /// It stops when the last `Recorder` clone is dropped.
    /// `bus`: where applied transitions are announced (RUNS); `None` records without announcing.
    pub fn spawn(store: Store, bus: Option<Bus>) -> Recorder {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let spawned = std::thread::Builder::new().name("ifox-run-recorder".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the run recorder's runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                let own = match store.reconnect(1).await {
                    Ok(own) => own,
                    Err(e) => {
                        tracing::warn!(error = %e, "run recorder: no pool of its own yet; sharing the main one");
                        store
                    }
                };
                serve(own, bus, rx).await;
            });
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the run recorder thread");
        }
        Recorder { tx }
    }

    /// Records runs (`queued`) unless they exist; the records that existed, in order. Answers after
    /// the commit.
    pub async fn record(&self, rows: Vec<runs::RunRow>) -> Result<Earlier, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Record(rows, reply))
            .await
            .map_err(|_| STOPPED.to_owned())?;
        answer.await.map_err(|_| STOPPED.to_owned())?
    }

    /// Writes a lifecycle transition in the next batch; whether it applied (the run's status
    /// allowed it), after the commit.
    pub async fn transition(&self, run: RunRef, change: OwnedChange) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        let t = Transition {
            run,
            change,
            reply: Some(reply),
        };
        self.tx
            .send(Request::Transition(Box::new(t)))
            .await
            .map_err(|_| STOPPED.to_owned())?;
        answer.await.map_err(|_| STOPPED.to_owned())?
    }

    /// As [`Recorder::transition`], without waiting for it: it is written before any transition
    /// handed over later. A failure is logged.
    pub async fn transition_later(&self, run: RunRef, change: OwnedChange) {
        let t = Transition {
            run,
            change,
            reply: None,
        };
        if self
            .tx
            .send(Request::Transition(Box::new(t)))
            .await
            .is_err()
        {
            tracing::warn!("{STOPPED}: a transition was not recorded");
        }
    }
}

const STOPPED: &str = "the run recorder stopped";

async fn serve(store: Store, bus: Option<Bus>, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Nobody waits for a batch of `transition_later`s alone (an `investigate` answer's
        // `running`): the answer's outcome usually follows within a millisecond, and both then go
        // in one write and one wake-up of this thread and SQLite's instead of two.
        let later = |r: &Request| matches!(r, Request::Transition(t) if t.reply.is_none());
        if batch.len() < MAX_BATCH && batch.iter().all(later) {
            let room = MAX_BATCH - batch.len();
            let _ = tokio::time::timeout(LINGER, rx.recv_many(&mut batch, room)).await;
        }
        let (mut rows, mut records, mut transitions) = (Vec::new(), Vec::new(), Vec::new());
        for request in batch.drain(..) {
            match request {
                Request::Record(mut more, reply) => {
                    let ids: Vec<String> = more.iter().map(|r| r.run_id.clone()).collect();
                    records.push((ids, reply));
                    rows.append(&mut more);
                }
                Request::Transition(t) => transitions.push(*t),
            }
        }
        if !rows.is_empty() {
            serve_records(&store, rows, records).await;
        }
        if !transitions.is_empty() {
            serve_transitions(&store, bus.as_ref(), transitions).await;
        }
    }
}

async fn serve_records(store: &Store, rows: Vec<runs::RunRow>, records: Vec<(Vec<String>, Reply)>) {
    // A run named twice in one batch (two messages of one run pulled together): the first is
    // recorded, the second sees the first's record.
    let mut first: HashMap<String, RunRecord> = HashMap::new();
    for r in &rows {
        first
            .entry(r.run_id.clone())
            .or_insert_with(|| RunRecord::from(r));
    }
    match write(store, rows).await {
        Ok(mut earlier) => {
            for (ids, reply) in records {
                let found = ids
                    .iter()
                    .map(|id| match earlier.get(id) {
                        Some(r) => Some(r.clone()),
                        None => {
                            let mine = first.remove(id);
                            if let Some(r) = &mine {
                                earlier.insert(id.clone(), r.clone());
                            }
                            None
                        }
                    })
                    .collect();
                let _ = reply.send(Ok(found));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for (_, reply) in records {
                let _ = reply.send(Err(msg.clone()));
            }
        }
    }
}

async fn serve_transitions(store: &Store, bus: Option<&Bus>, transitions: Vec<Transition>) {
    let applied = write_transitions(store, &transitions).await;
    for (i, t) in transitions.into_iter().enumerate() {
        let outcome = match &applied {
            Ok(applied) => Ok(applied.get(i).copied().unwrap_or(false)),
            Err(e) => Err(e.to_string()),
        };
        match &outcome {
            Ok(true) => {
                let change = t.change.as_change();
                metrics::counter!("ifox_bridge_transitions_total", "status" => t.change.to)
                    .increment(1);
                if let Some(bus) = bus {
                    super::lifecycle::announce(bus, &t.run, &change).await;
                }
            }
            Ok(false) => {}
            Err(e) if t.reply.is_none() => {
                tracing::warn!(run_id = %t.run.run_id, status = t.change.to, error = %e, "transition not recorded");
            }
            Err(_) => {}
        }
        if let Some(reply) = t.reply {
            let _ = reply.send(outcome);
        }
    }
}

/// The transitions in order, in one transaction (SQLite: one call per 64); whether each applied.
async fn write_transitions(
    store: &Store,
    transitions: &[Transition],
) -> Result<Vec<bool>, StoreError> {
    let changes: Vec<_> = transitions.iter().map(|t| t.change.as_change()).collect();
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

/// One transaction: which runs exist, insert the others. Two bridges racing on one new run both
/// see it as new; the insert keeps one row, and the lifecycle's guarded transitions let one outcome
/// win.
async fn write(
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
