//! The agent of the bench: ifox's reference echo agent (`ifox::bridge::echo`), in this process,
//! answering at once, plus what the bench needs around it: a count of the requests that reached it
//! (cheap to poll while a slice drains) and the arrival of each webhook's request on this process's
//! monotonic clock.
//!
//! The echo records `at_us`, microseconds since its own start `Instant`; that Instant is taken in
//! `EchoAgent::new`, so the one taken just before it stands for it (off by well under a
//! microsecond). Every request names its webhook by the number at the end of its `thread_id`
//! (`github-acme-team-3-issue-<n>` from ifox, `raw-issue-<n>` from the raw chain).

use crate::AnyResult;
use ifox::bridge::echo::{EchoAgent, EchoOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Requests that reached the agent (any path), since the start.
static ARRIVED: AtomicU64 = AtomicU64::new(0);

async fn count(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    ARRIVED.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

pub struct Agent {
    pub url: String,
    echo: EchoAgent,
    /// The echo's start, on this process's clock.
    started: Instant,
}

impl Agent {
    pub async fn start() -> AnyResult<Agent> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let started = Instant::now();
        // Enough slots that the agent never makes a delivery wait: it answers at once.
        let echo = EchoAgent::new(EchoOptions {
            max_concurrent: 4096,
            ..EchoOptions::default()
        });
        let app = echo.router().layer(axum::middleware::from_fn(count));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Agent { url, echo, started })
    }

    pub fn arrived(&self) -> u64 {
        ARRIVED.load(Ordering::Relaxed)
    }

    /// The first arrival of each webhook's request, by webhook number (the echo keeps the last
    /// 100,000 requests: a slice must stay below that).
    pub fn arrivals(&self) -> HashMap<u64, Instant> {
        let mut first = HashMap::new();
        for r in self.echo.requests() {
            let Some(n) = r
                .thread_id
                .as_deref()
                .and_then(|t| t.rsplit_once("-issue-"))
                .and_then(|(_, n)| n.parse::<u64>().ok())
            else {
                continue;
            };
            let at = self.started + Duration::from_micros(r.at_us);
            first
                .entry(n)
                .and_modify(|t: &mut Instant| *t = (*t).min(at))
                .or_insert(at);
        }
        first
    }
}
