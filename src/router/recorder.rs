//! Batched run-record IO. Every in-flight event asks one task "is this run recorded?" and later
//! "record this run"; the task answers whatever is waiting (up to 512 requests) with one `SELECT … IN`
//! and one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` in a transaction, and answers each
//! caller only after the commit. On SQLite this turns 64 writers fighting for the one write lock (and
//! a thread hop per statement) into one statement per batch; on PostgreSQL it saves a commit per
//! event. Nobody is answered before their row is durable, so the caller's ack still follows its effect.

use crate::store::{Store, StoreError, runs};
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<bool, String>>;

enum Request {
    /// Does the run exist?
    Exists(String, Reply),
    /// Record it; answers whether this call inserted it.
    Record(Box<runs::RunRow>, Reply),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the task; it stops when the last `Recorder` clone is dropped.
    pub fn spawn(store: Store) -> Recorder {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(serve(store, rx));
        Recorder { tx }
    }

    async fn ask(&self, make: impl FnOnce(Reply) -> Request) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| "the run recorder stopped".to_owned())?;
        answer.await.map_err(|_| "the run recorder stopped".to_owned())?
    }

    pub async fn exists(&self, run_id: &str) -> Result<bool, String> {
        self.ask(|reply| Request::Exists(run_id.to_owned(), reply)).await
    }

    pub async fn record(&self, row: runs::RunRow) -> Result<bool, String> {
        self.ask(|reply| Request::Record(Box::new(row), reply)).await
    }
}

async fn serve(store: Store, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut asks, mut rows) = (Vec::new(), Vec::new());
        for req in batch.drain(..) {
            match req {
                Request::Exists(id, reply) => asks.push((id, reply)),
                Request::Record(row, reply) => rows.push((*row, reply)),
            }
        }
        if !asks.is_empty() {
            let ids: Vec<String> = asks.iter().map(|(id, _)| id.clone()).collect();
            answer(asks, lookup(&store, &ids).await);
        }
        if !rows.is_empty() {
            let (rows, replies): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
            let ids: Vec<String> = rows.iter().map(|r: &runs::RunRow| r.run_id.clone()).collect();
            answer(ids.into_iter().zip(replies).collect(), insert(&store, &rows).await);
        }
    }
}

fn answer(pending: Vec<(String, Reply)>, result: Result<std::collections::HashSet<String>, StoreError>) {
    match result {
        Ok(hits) => {
            for (id, reply) in pending {
                let _ = reply.send(Ok(hits.contains(&id)));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for (_, reply) in pending {
                let _ = reply.send(Err(msg.clone()));
            }
        }
    }
}

async fn lookup(store: &Store, ids: &[String]) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    runs::existing(&mut conn, ids).await
}

async fn insert(store: &Store, rows: &[runs::RunRow]) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut tx = store.begin().await?;
    let inserted = runs::record_many(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(inserted)
}
