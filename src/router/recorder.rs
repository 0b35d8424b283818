//! Batched run-record IO. Every chunk of in-flight events hands its run rows to one task ("record
//! these runs", later "they were dispatched", which nobody waits for); the task serves whatever is
//! waiting with one `SELECT … IN (…)` of those already recorded, one multi-row
//! `INSERT … ON CONFLICT DO NOTHING` of the rest, and one `UPDATE … IN (…)` of the dispatched marks, in
//! one transaction (per 512 rows), and answers each request after the commit.
//! On SQLite that is one multi-statement call (`BEGIN IMMEDIATE; …; COMMIT`), one hand-off to the
//! connection's thread instead of writers fighting for the one write lock with a hop per statement;
//! on PostgreSQL a transaction of three statements: a commit per batch, not per event. Nobody is
//! answered before their rows are durable, so the caller's ack still follows its effect.

use crate::domain::now_ms;
use crate::store::{Backend, Store, StoreError, runs};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;

/// Where a run stands after `record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Recorded by this call: publish it.
    New,
    /// Recorded earlier but its publish was never confirmed (a crash in between): publish again.
    Pending,
    /// Recorded and published earlier: nothing to do.
    Dispatched,
}

type Reply = oneshot::Sender<Result<Vec<RunState>, String>>;

enum Request {
    Record(Vec<runs::RunRow>, Reply),
    /// Noted in the next transaction; nobody waits for it (see [`Recorder::dispatched`]).
    Dispatched(Vec<String>),
    /// Answered once everything queued before it is committed (or failed).
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the writer on a thread and runtime of its own, with its own pool: its few sequential
    /// statements per batch must not queue behind hundreds of event tasks for a turn on the shared
    /// runtime (that wait, not SQL, dominated a batch on 2 cores). The pool holds one connection:
    /// batches are sequential anyway, and on SQLite a connection drops its whole page cache whenever
    /// another connection wrote, so two alternating connections re-read the indexes every batch.
    /// It stops when the last `Recorder` clone is dropped.
    pub fn spawn(store: Store) -> Recorder {
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
                serve(own, rx).await;
            });
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the run recorder thread");
        }
        Recorder { tx }
    }

    /// Records runs (`queued`) unless they exist; says where each stands, in order. Answers after
    /// the commit.
    pub async fn record(&self, rows: Vec<runs::RunRow>) -> Result<Vec<RunState>, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Record(rows, reply))
            .await
            .map_err(|_| STOPPED.to_owned())?;
        answer.await.map_err(|_| STOPPED.to_owned())?
    }

    /// Notes the PubAck of a run's AGENT_RUNS message, in the next batch's transaction, without
    /// waiting for it: the run is already recorded and published (the effects the ack stands for),
    /// and a waited-for second round trip per event halved the router's throughput. Should the
    /// process die before that commit, the run stays `Pending`: a later delivery of its event
    /// publishes it again under the same `Nats-Msg-Id`, which AGENT_RUNS collapses within its
    /// duplicate window (1 h).
    pub async fn dispatched(&self, run_ids: Vec<String>) {
        if run_ids.is_empty() {
            return;
        }
        let runs = run_ids.len();
        if self.tx.send(Request::Dispatched(run_ids)).await.is_err() {
            tracing::warn!(
                runs,
                "{STOPPED}: these runs stay pending until their events are seen again"
            );
        }
    }

    /// Waits until everything handed over so far is committed (used on shutdown).
    pub async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Request::Flush(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

const STOPPED: &str = "the run recorder stopped";

async fn serve(store: Store, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut rows, mut records, mut marks, mut flushes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for req in batch.drain(..) {
            match req {
                Request::Record(mut more, reply) => {
                    let ids: Vec<String> = more.iter().map(|r| r.run_id.clone()).collect();
                    records.push((ids, reply));
                    rows.append(&mut more);
                }
                Request::Dispatched(mut ids) => marks.append(&mut ids),
                Request::Flush(reply) => flushes.push(reply),
            }
        }
        match write(&store, rows, &marks).await {
            Ok(earlier) => {
                for (ids, reply) in records {
                    let states = ids
                        .iter()
                        .map(|id| match earlier.get(id) {
                            None => RunState::New,
                            Some(true) => RunState::Dispatched,
                            Some(false) => RunState::Pending,
                        })
                        .collect();
                    let _ = reply.send(Ok(states));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if !marks.is_empty() {
                    tracing::warn!(error = %msg, runs = marks.len(), "dispatched marks not stored; those runs stay pending");
                }
                for (_, reply) in records {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
        for reply in flushes {
            let _ = reply.send(());
        }
    }
}

/// One transaction: which runs exist (and are dispatched), insert the others, note the dispatched.
/// Two routers racing on one new run both see it as new and both publish it; AGENT_RUNS keeps one
/// (same `Nats-Msg-Id`) and the insert keeps one row.
async fn write(
    store: &Store,
    mut rows: Vec<runs::RunRow>,
    marks: &[String],
) -> Result<HashMap<String, bool>, StoreError> {
    if store.backend() == Backend::Sqlite {
        let mut conn = store.pool().acquire().await?;
        let mut earlier = HashMap::new();
        let (mut rows, mut marks) = (rows.as_slice(), marks);
        while !rows.is_empty() || !marks.is_empty() {
            let (r, m) = (rows.len().min(runs::CHUNK), marks.len().min(runs::CHUNK));
            earlier.extend(
                runs::record_batch_sqlite(&mut conn, &rows[..r], &marks[..m], now_ms()).await?,
            );
            (rows, marks) = (&rows[r..], &marks[m..]);
        }
        return Ok(earlier);
    }
    let mut tx = store.begin().await?;
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    let earlier = if ids.is_empty() {
        HashMap::new()
    } else {
        runs::states(&mut tx, &ids).await?
    };
    rows.retain(|r| !earlier.contains_key(&r.run_id));
    if !rows.is_empty() {
        runs::record_many(&mut tx, &rows).await?;
    }
    if !marks.is_empty() {
        runs::mark_dispatched(&mut tx, marks, now_ms()).await?;
    }
    tx.commit().await?;
    Ok(earlier)
}
