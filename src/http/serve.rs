//! Serving a router on a listener with the limits a public listener needs, in place of
//! `axum::serve` (which has neither a header-read timeout nor a connection limit):
//!
//! - **Connection limit** (`http.max_connections` per listener): every connection holds a slot; with
//!   none free the loop stops accepting, so new connections wait in the kernel's accept queue (they
//!   are not refused) until one closes. `ifox_http_connection_limit_reached_total` counts the waits.
//! - **Header read timeout** (`http.header_read_timeout`, hyper's): a connection whose request
//!   headers are not complete in time is closed without an answer. hyper starts that clock whenever
//!   it waits for a request, so it also closes idle keep-alive connections.
//! - **Body timeout** (`http.body_timeout`): the body must arrive within it after the headers
//!   ([`DeadlineBody`]); a handler that was still reading it is answered 408 `body_timeout` instead,
//!   whatever it answered itself, and the connection is closed.
//! - **Requests per connection** (`http.max_requests_per_connection`): the last answer carries
//!   `Connection: close`.
//!
//! On shutdown the loop stops accepting, every connection finishes the request it serves (idle
//! ones close at once), and [`serve`] returns when the last one has closed.

use super::error::ApiError;
use crate::settings::HttpSettings;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The limits of one listener (see the module header).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_requests_per_connection: u64,
}

impl Limits {
    pub fn from_settings(http: &HttpSettings) -> Limits {
        Limits {
            header_read_timeout: http.header_read_timeout,
            body_timeout: http.body_timeout,
            max_connections: http.max_connections,
            max_requests_per_connection: http.max_requests_per_connection,
        }
    }
}

/// The "connection limit reached" warning is repeated at most this often (an attack would make it
/// one line per connection otherwise); the counter counts every wait.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown`, then waits for the open connections to finish.
/// `name` labels the metrics (`main`, `metrics`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    name: &'static str,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    let mut warned: Option<Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics::counter!("ifox_http_connection_limit_reached_total", "listener" => name)
                    .increment(1);
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warned = Some(Instant::now());
                    tracing::warn!(
                        listener = name,
                        limit = limits.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let tcp = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                Err(e) => {
                    accept_failed(name, e).await;
                    continue;
                }
            },
        };
        let conn = connection(
            tcp,
            router.clone(),
            limits.clone(),
            slot,
            name,
            shutdown.clone(),
        );
        tokio::spawn(conn);
    }
    drop(listener);
    // Every connection holds its slot until it ends: holding them all means every one has ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// A failed accept: per-connection errors (the peer reset before we took it) are skipped; others
/// (out of file descriptors) get a pause, so the loop does not spin while they last.
async fn accept_failed(name: &'static str, e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(listener = name, error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection, from accept to close; `_slot` is given back when it ends.
async fn connection(
    tcp: TcpStream,
    router: Router,
    limits: Arc<Limits>,
    _slot: OwnedSemaphorePermit,
    name: &'static str,
    shutdown: CancellationToken,
) {
    // No Nagle: every answer is one small write that the sender waits for.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    let open = metrics::gauge!("ifox_http_connections", "listener" => name);
    open.increment(1.0);
    let served = Arc::new(AtomicU64::new(0));
    let header_read_timeout = limits.header_read_timeout;
    let service = hyper::service::service_fn(move |req| {
        respond(router.clone(), limits.clone(), served.clone(), req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    let mut conn = std::pin::pin!(conn);
    let outcome = tokio::select! {
        outcome = conn.as_mut() => outcome,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = outcome {
        if e.is_timeout() {
            metrics::counter!("ifox_http_header_timeouts_total", "listener" => name).increment(1);
        }
        tracing::debug!(listener = name, error = %e, "connection ended with an error");
    }
    open.decrement(1.0);
}

/// One request: its body under the deadline, then the router; the answer is replaced by 408 when
/// the deadline cut the body, and carries `Connection: close` when the connection is done.
async fn respond(
    mut router: Router,
    limits: Arc<Limits>,
    served: Arc<AtomicU64>,
    req: Request<Incoming>,
) -> Result<Response, Infallible> {
    let count = served.fetch_add(1, Ordering::Relaxed) + 1;
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| DeadlineBody::new(body, limits.body_timeout, expired.clone()));
    // A `Router` is always ready (its `poll_ready` is `Ready(Ok)`), so it is called directly.
    let mut answer = match tower_service::Service::call(&mut router, req).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    let expired = expired.load(Ordering::Relaxed);
    if expired {
        metrics::counter!("ifox_http_body_timeouts_total").increment(1);
        answer = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} (http.body_timeout)",
                humantime::format_duration(limits.body_timeout)
            ),
        )
        .into_response();
    }
    // After a cut body the rest of it is still on the wire: the connection cannot be reused.
    if expired || count >= limits.max_requests_per_connection {
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(answer)
}

/// A request body that fails with [`BodyTimedOut`] when it is waited for past its deadline (set
/// when the headers arrived). Data already received is still handed out, so a handler that reads
/// the body late (after a slow lookup) is not punished for its own delay; only waiting on the
/// client past the deadline is.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error of a [`DeadlineBody`] past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

impl BodyTimedOut {
    /// Whether `error` or one of its sources is a [`BodyTimedOut`] (body readers wrap it).
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut at = Some(error);
        while let Some(e) = at {
            if e.is::<BodyTimedOut>() {
                return true;
            }
            at = e.source();
        }
        false
    }
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration, expired: Arc<AtomicBool>) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            expired,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
