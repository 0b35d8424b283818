//! The process's role tasks in one `JoinSet`. A task that ends while the process is not shutting
//! down (a return, an error, a panic) is a failure of the whole process: it is logged with the
//! task's name and why, the others are stopped (shutdown token), and the process exits non-zero so
//! that Kubernetes (or systemd) restarts it — rather than a process that serves webhooks while its
//! router silently stopped.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long the other tasks get to finish what they hold once one failed or shutdown began.
const DRAIN: Duration = Duration::from_secs(30);

/// A task's end: `Ok` on a clean stop, else why.
pub type TaskResult = Result<(), String>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SupervisorError {
    #[error("role task {task} ended unexpectedly: {why}")]
    TaskEnded { task: &'static str, why: String },
}

#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<TaskResult>,
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Supervisor {
    /// Runs `task` under the name `name`.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = TaskResult> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    fn name(&self, id: tokio::task::Id) -> &'static str {
        self.names.get(&id).copied().unwrap_or("unnamed")
    }

    /// Waits until `shutdown` fires (then lets every task finish, within [`DRAIN`]) or a task ends
    /// on its own (then fires `shutdown`, drains the others and names the task).
    pub async fn wait(mut self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let failed = tokio::select! {
            // Shutdown first: a task that ends because shutdown began is not a failure.
            biased;
            () = shutdown.cancelled() => None,
            joined = self.tasks.join_next_with_id() => joined.map(|j| match j {
                Ok((id, Ok(()))) => (self.name(id), "it returned".to_owned()),
                Ok((id, Err(why))) => (self.name(id), why),
                Err(e) if e.is_panic() => (self.name(e.id()), "it panicked".to_owned()),
                Err(e) => (self.name(e.id()), e.to_string()),
            }),
        };
        // A task that ended cleanly in the same instant as the shutdown began stopped for it.
        let failed = failed.filter(|(_, why)| !(shutdown.is_cancelled() && why == "it returned"));
        if let Some((task, why)) = &failed {
            tracing::error!(task, why = %why, "a role task ended; stopping the process");
            metrics::counter!("ifox_role_task_ended_total", "task" => *task).increment(1);
        }
        shutdown.cancel();
        let drained = tokio::time::timeout(DRAIN, async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                match joined {
                    Ok((id, Err(why))) => tracing::warn!(task = self.name(id), why = %why, "task ended with an error during shutdown"),
                    Err(e) if e.is_panic() => tracing::error!(task = self.name(e.id()), "task panicked during shutdown"),
                    _ => {}
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(after = ?DRAIN, "tasks still running at the end of the drain; aborting them");
            self.tasks.abort_all();
        }
        match failed {
            None => Ok(()),
            Some((task, why)) => Err(SupervisorError::TaskEnded { task, why }),
        }
    }
}

/// A task that only ends when `shutdown` fires: its end before that is a failure.
pub async fn until_shutdown<F>(task: F, shutdown: CancellationToken) -> TaskResult
where
    F: Future<Output = ()>,
{
    task.await;
    if shutdown.is_cancelled() {
        Ok(())
    } else {
        Err("it stopped before shutdown".to_owned())
    }
}

/// A task that returns a result and only ends when `shutdown` fires: an error, or an end before
/// shutdown, is a failure.
pub async fn until_shutdown_ok<F, E>(task: F, shutdown: CancellationToken) -> TaskResult
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    task.await.map_err(|e| e.to_string())?;
    until_shutdown(async {}, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_task_that_ends_stops_the_others_and_is_named() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::default();
        let other_stopped = Arc::new(AtomicBool::new(false));
        let (token, flag) = (shutdown.clone(), other_stopped.clone());
        s.spawn("router", async move {
            token.cancelled().await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        let token = shutdown.clone();
        s.spawn("bridge", until_shutdown(async {}, token));
        let r = s.wait(shutdown.clone()).await;
        assert_eq!(
            r,
            Err(SupervisorError::TaskEnded {
                task: "bridge",
                why: "it stopped before shutdown".into()
            })
        );
        assert!(shutdown.is_cancelled());
        assert!(
            other_stopped.load(Ordering::SeqCst),
            "the router was drained"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_is_a_failure_too() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::default();
        s.spawn("ingest", async { panic!("boom") });
        let r = s.wait(shutdown).await;
        assert_eq!(
            r,
            Err(SupervisorError::TaskEnded {
                task: "ingest",
                why: "it panicked".into()
            })
        );
    }

    #[tokio::test]
    async fn a_shutdown_waits_for_every_task_and_is_not_a_failure() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::default();
        let finished = Arc::new(AtomicBool::new(false));
        let (token, flag) = (shutdown.clone(), finished.clone());
        s.spawn("router", async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        shutdown.cancel();
        assert_eq!(s.wait(shutdown).await, Ok(()));
        assert!(finished.load(Ordering::SeqCst));
    }
}
