//! Batched run-record IO: the run records are the bridge's projection of AGENT_RUNS. Every chunk of
//! AGENT_RUNS messages hands its runs to one task ("record these runs"); the task serves whatever is
//! waiting with one `SELECT … IN (…)` of those already recorded and one multi-row
//! `INSERT … ON CONFLICT DO NOTHING` of the rest, in one transaction (per 512 rows), and answers each
//! request after the commit with the records that existed before.
//! On SQLite that is one multi-statement call (`BEGIN IMMEDIATE; …; COMMIT`), one hand-off to the
//! connection's thread instead of writers fighting for the one write lock with a hop per statement;
//! on PostgreSQL a transaction of two statements: a commit per batch, not per run. Nobody is answered
//! before their rows are durable, so no delivery starts before its record exists.

use crate::store::run_lifecycle::RunRecord;
use crate::store::{Backend, Store, StoreError, runs};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;

/// Per run handed to `record`, in order: the record that existed before (`None`: recorded now).
pub type Earlier = Vec<Option<RunRecord>>;

type Reply = oneshot::Sender<Result<Earlier, String>>;

enum Request {
    Record(Vec<runs::RunRow>, Reply),
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
}

const STOPPED: &str = "the run recorder stopped";

async fn serve(store: Store, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut rows, mut records) = (Vec::new(), Vec::new());
        for Request::Record(mut more, reply) in batch.drain(..) {
            let ids: Vec<String> = more.iter().map(|r| r.run_id.clone()).collect();
            records.push((ids, reply));
            rows.append(&mut more);
        }
        // A run named twice in one batch (two messages of one run pulled together): the first is
        // recorded, the second sees the first's record.
        let mut first: HashMap<String, RunRecord> = HashMap::new();
        for r in &rows {
            first
                .entry(r.run_id.clone())
                .or_insert_with(|| RunRecord::from(r));
        }
        match write(&store, rows).await {
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
