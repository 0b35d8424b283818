//! The reference agent (`ifox agent-echo`): a small HTTP server that speaks both agent protocols of
//! docs/agent-protocol.md, so `just run`, the tests and the benchmarks have a real agent on a
//! loopback port. It answers after a configurable delay, limits its own concurrency like real agents
//! (excess requests wait: backpressure), can be told to fail, and records every request it got
//! (`GET /_echo/requests`, or [`EchoAgent::requests`] in process).
//!
//! - [`investigate`]: `POST /investigate`, the original's SSE protocol;
//! - [`runs`]: `POST /v1/runs`, the `ifox` protocol (202, then status reports to ifox).
//!
//! It owns no ifox state and is not part of any role; it never logs or records a token.

pub mod investigate;
pub mod runs;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The most requests kept in the record (the oldest go first), so a long benchmark cannot grow it
/// without bound.
pub const MAX_RECORDED: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    #[error("unknown fail mode {0:?} (none, http-500-first-N, error-event, cut-stream, hang)")]
    FailMode(String),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving")]
    Serve(#[source] std::io::Error),
}

/// How the agent misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    #[default]
    None,
    /// The first N run requests (both protocols together) are answered 500.
    Http500FirstN(u64),
    /// `investigate`: an SSE `error` event; `ifox`: a `failed` report.
    ErrorEvent,
    /// `investigate`: progress events, then the body ends without a result; `ifox`: `running`, then
    /// nothing.
    CutStream,
    /// No answer at all until shutdown.
    Hang,
}

impl FromStr for FailMode {
    type Err = EchoError;
    fn from_str(s: &str) -> Result<Self, EchoError> {
        Ok(match s {
            "none" => Self::None,
            "error-event" => Self::ErrorEvent,
            "cut-stream" => Self::CutStream,
            "hang" => Self::Hang,
            other => other
                .strip_prefix("http-500-first-")
                .and_then(|n| n.parse().ok())
                .map(Self::Http500FirstN)
                .ok_or_else(|| EchoError::FailMode(other.to_owned()))?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// Wait before answering (after a concurrency slot is free).
    pub delay: Duration,
    pub fail: FailMode,
    /// Requests handled at once; the others wait for a slot.
    pub max_concurrent: usize,
    /// When set, run requests must carry `Authorization: Bearer <token>` (else 401).
    pub service_token: Option<String>,
}

impl Default for EchoOptions {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            fail: FailMode::None,
            max_concurrent: 16,
            service_token: None,
        }
    }
}

/// One request as the agent saw it (no token, no prompt).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Recorded {
    /// Arrival, Unix milliseconds.
    pub at_ms: i64,
    /// Arrival, microseconds since the agent started (monotonic; for latency figures).
    pub at_us: u64,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub traceparent: Option<String>,
    pub tenant_id: Option<String>,
    pub team_id: Option<String>,
    pub thread_id: Option<String>,
    pub run_id: Option<String>,
    /// The HTTP status the agent answered (0 while it has not answered).
    pub status: u16,
}

pub(crate) struct State {
    pub(crate) options: EchoOptions,
    started: std::time::Instant,
    recorded: Mutex<VecDeque<Recorded>>,
    /// Run requests seen, for `http-500-first-N`.
    seen: AtomicU64,
    pub(crate) slots: Arc<Semaphore>,
    /// `ifox` runs accepted, by run id: a duplicate delivery is acknowledged and not run twice.
    pub(crate) accepted: Mutex<HashSet<String>>,
    pub(crate) client: reqwest::Client,
    pub(crate) shutdown: CancellationToken,
}

impl State {
    /// Records a request; returns its index for [`State::answered`] and whether it is one of the
    /// first N to fail.
    pub(crate) fn arrive(&self, path: &str, headers: &HeaderMap, ids: Ids) -> (u64, bool) {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // Counted under the record's lock, so the n-th request is the n-th record.
        let mut recorded = self.recorded.lock().expect("echo record");
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        let rec = Recorded {
            at_ms: crate::domain::now_ms(),
            at_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            path: path.to_owned(),
            idempotency_key: header("idempotency-key"),
            traceparent: header("traceparent"),
            tenant_id: ids.tenant_id,
            team_id: ids.team_id,
            thread_id: ids.thread_id,
            run_id: ids.run_id,
            status: 0,
        };
        if recorded.len() == MAX_RECORDED {
            recorded.pop_front();
        }
        recorded.push_back(rec);
        let fails = matches!(self.options.fail, FailMode::Http500FirstN(k) if n < k);
        (n, fails)
    }

    /// Notes the status answered to request `n` (the `n`-th seen).
    pub(crate) fn answered(&self, n: u64, status: u16) {
        let mut recorded = self.recorded.lock().expect("echo record");
        let first = self.seen.load(Ordering::SeqCst) - recorded.len() as u64;
        if let Some(rec) = n
            .checked_sub(first)
            .and_then(|i| recorded.get_mut(usize::try_from(i).ok()?))
        {
            rec.status = status;
        }
    }

    /// Whether the service token, when one is required, was given.
    pub(crate) fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.options.service_token else {
            return true;
        };
        let got = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        got.is_some_and(|g| subtle::ConstantTimeEq::ct_eq(g.as_bytes(), want.as_bytes()).into())
    }
}

/// The ids a request names (for the record).
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub tenant_id: Option<String>,
    pub team_id: Option<String>,
    pub thread_id: Option<String>,
    pub run_id: Option<String>,
}

/// The agent; cheap to clone (one shared state).
#[derive(Clone)]
pub struct EchoAgent {
    state: Arc<State>,
}

impl EchoAgent {
    pub fn new(options: EchoOptions) -> Self {
        let slots = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        Self {
            state: Arc::new(State {
                options,
                started: std::time::Instant::now(),
                recorded: Mutex::new(VecDeque::new()),
                seen: AtomicU64::new(0),
                slots,
                accepted: Mutex::new(HashSet::new()),
                client: reqwest::Client::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Every request recorded so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        let recorded = self.state.recorded.lock().expect("echo record");
        recorded.iter().cloned().collect()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/investigate", post(investigate::handle))
            .route("/v1/runs", post(runs::handle))
            .route("/_echo/requests", get(list))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self.state.clone())
    }

    /// Serves until `shutdown` fires; hanging requests are then answered 503 and the server stops.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), EchoError> {
        let inner = self.state.shutdown.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            inner.cancel();
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(EchoError::Serve)
    }
}

/// Runs an echo agent with `options` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    options: EchoOptions,
    shutdown: CancellationToken,
) -> Result<(), EchoError> {
    EchoAgent::new(options).serve(listener, shutdown).await
}

async fn list(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
) -> axum::Json<Vec<Recorded>> {
    axum::Json(EchoAgent { state }.requests())
}

/// `ifox agent-echo`: the reference agent on a port.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Listen address (port 0 picks a free port; the address is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8090", env = "IFOX_ECHO_LISTEN")]
    pub listen: SocketAddr,
    /// Wait this long before answering, e.g. 0s, 250ms, 2s.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub delay: Duration,
    /// none, http-500-first-N, error-event, cut-stream or hang.
    #[arg(long, default_value = "none")]
    pub fail: FailMode,
    /// Requests handled at once; excess requests wait.
    #[arg(long, default_value_t = 16)]
    pub max_concurrent: usize,
    /// Require `Authorization: Bearer <token>` on run requests.
    #[arg(long, env = "IFOX_ECHO_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
}

/// Binds, prints the address, serves until `stop` completes.
pub async fn run_cli(
    args: EchoArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), EchoError> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| EchoError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(EchoError::Serve)?;
    eprintln!("agent-echo listening on http://{addr}");
    let options = EchoOptions {
        delay: args.delay,
        fail: args.fail,
        max_concurrent: args.max_concurrent,
        service_token: args.service_token,
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, options, shutdown.clone()));
    stop.await;
    shutdown.cancel();
    server
        .await
        .map_err(|e| EchoError::Serve(std::io::Error::other(e)))?
}

#[cfg(test)]
mod tests;
