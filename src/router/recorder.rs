//! Batched run-record IO. Every in-flight event hands its run row to one task ("record this run",
//! later "it was dispatched"); the task serves whatever is waiting (up to 512 requests) with one
//! `SELECT … IN (…)` of those already recorded, one multi-row `INSERT … ON CONFLICT DO NOTHING` of the
//! rest, and one `UPDATE … IN (…)`, in one transaction, and answers each caller after the commit.
//! On SQLite this turns 64 writers fighting for the one write lock (and a thread hop per statement)
//! into three statements per batch; on PostgreSQL it saves a commit per event. Nobody is answered
//! before their row is durable, so the caller's ack still follows its effect.

use crate::domain::now_ms;
use crate::store::{Store, StoreError, runs};
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

type Reply = oneshot::Sender<Result<RunState, String>>;

enum Request {
    Record(Box<runs::RunRow>, Reply),
    Dispatched(String, Reply),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the writer on a thread and runtime of its own, with its own pool: its few sequential
    /// statements per batch must not queue behind hundreds of event tasks for a turn on the shared
    /// runtime (that wait, not SQL, dominated a batch on 2 cores). It stops when the last `Recorder`
    /// clone is dropped.
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
                let own = match store.reconnect(2).await {
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

    async fn ask(&self, request: impl FnOnce(Reply) -> Request) -> Result<RunState, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(request(reply))
            .await
            .map_err(|_| "the run recorder stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the run recorder stopped".to_owned())?
    }

    /// Records a run (`queued`) unless it exists; says where it stands.
    pub async fn record(&self, row: runs::RunRow) -> Result<RunState, String> {
        self.ask(|reply| Request::Record(Box::new(row), reply))
            .await
    }

    /// Notes the PubAck of a run's AGENT_RUNS message.
    pub async fn dispatched(&self, run_id: &str) -> Result<(), String> {
        self.ask(|reply| Request::Dispatched(run_id.to_owned(), reply))
            .await
            .map(|_| ())
    }
}

async fn serve(store: Store, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut rows, mut records, mut marks) = (Vec::new(), Vec::new(), Vec::new());
        for req in batch.drain(..) {
            match req {
                Request::Record(row, reply) => {
                    records.push((row.run_id.clone(), reply));
                    rows.push(*row);
                }
                Request::Dispatched(id, reply) => marks.push((id, reply)),
            }
        }
        let marked: Vec<String> = marks.iter().map(|(id, _)| id.clone()).collect();
        match write(&store, &rows, &marked).await {
            Ok(earlier) => {
                for (id, reply) in records {
                    let state = match earlier.get(&id) {
                        None => RunState::New,
                        Some(true) => RunState::Dispatched,
                        Some(false) => RunState::Pending,
                    };
                    let _ = reply.send(Ok(state));
                }
                for (_, reply) in marks {
                    let _ = reply.send(Ok(RunState::Dispatched));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, reply) in records.into_iter().chain(marks) {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}

/// One transaction: which runs exist (and are dispatched), insert the others, note the dispatched.
/// Two routers racing on one new run both see it as new and both publish it; AGENT_RUNS keeps one
/// (same `Nats-Msg-Id`) and the insert keeps one row.
async fn write(
    store: &Store,
    rows: &[runs::RunRow],
    marks: &[String],
) -> Result<HashMap<String, bool>, StoreError> {
    let mut tx = store.begin().await?;
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    let earlier = if ids.is_empty() {
        HashMap::new()
    } else {
        runs::states(&mut tx, &ids).await?
    };
    let fresh: Vec<runs::RunRow> = rows
        .iter()
        .filter(|r| !earlier.contains_key(&r.run_id))
        .cloned()
        .collect();
    if !fresh.is_empty() {
        runs::record_many(&mut tx, &fresh).await?;
    }
    if !marks.is_empty() {
        runs::mark_dispatched(&mut tx, marks, now_ms()).await?;
    }
    tx.commit().await?;
    Ok(earlier)
}
