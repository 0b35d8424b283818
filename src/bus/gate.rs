//! The publish gate: one task that hands the publishes of many concurrent callers to the NATS
//! connection together.
//!
//! Without it, every webhook's publish wakes the connection's task on its own, and that task runs
//! next (tokio runs a task woken by the running one right after it), so it writes about one message
//! per socket write, and nats-server reads, stores and acknowledges them one by one. The gate runs
//! once per scheduler pass instead: it takes every publish queued so far, yields once so that callers
//! made ready by the same I/O add theirs, then sends them all before the connection's task runs. No
//! timer: a lone publish waits one scheduler pass, not a linger.
//!
//! Each caller still gets its own PubAck future, and still bounds the whole publish by
//! `nats.publish_timeout` (see [`super::publish`]). A caller that gave up before its turn is skipped,
//! so a message refused with 503 is not sent afterwards by the gate. `just bench-ingest` measured
//! 10 % less CPU per webhook (ifox and nats-server together) with the gate; docs/ingest.md has the
//! figures.

use async_nats::jetstream::context::{Context, PublishAckFuture, PublishError};
use async_nats::jetstream::message::PublishMessage;
use tokio::sync::{mpsc, oneshot};

/// The most publishes handed over in one go (a bound on one pass, not on what may queue).
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<PublishAckFuture, PublishError>>;

struct Job {
    subject: String,
    message: PublishMessage,
    reply: Reply,
}

/// The sending side; cheap to clone. The gate's task ends when the last clone is dropped.
#[derive(Clone)]
pub(super) struct Gate {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Why a publish never reached the connection.
#[derive(Debug)]
pub(super) struct GateClosed;

impl Gate {
    /// Starts the gate's task on the current runtime.
    pub(super) fn start(js: Context) -> Gate {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(js, queue));
        Gate { jobs }
    }

    /// Queues one publish and waits for the connection to take it; the PubAck is awaited by the
    /// caller. Unbounded: every queued job has a caller waiting on it, so the queue is bounded by the
    /// requests in flight.
    pub(super) async fn send(
        &self,
        subject: String,
        message: PublishMessage,
    ) -> Result<Result<PublishAckFuture, PublishError>, GateClosed> {
        let (reply, sent) = oneshot::channel();
        let job = Job {
            subject,
            message,
            reply,
        };
        self.jobs.send(job).map_err(|_| GateClosed)?;
        sent.await.map_err(|_| GateClosed)
    }
}

async fn run(js: Context, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // One scheduler pass: the callers woken by the same reads queue theirs meanwhile.
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        for job in batch.drain(..) {
            if job.reply.is_closed() {
                continue; // its caller timed out or went away: it answered without this message
            }
            let sent = js.send_publish(job.subject, job.message).await;
            let _ = job.reply.send(sent);
        }
    }
}
