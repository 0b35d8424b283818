//! What every HTTP surface shares, below the roles: the handler state ([`AppState`]), the one error
//! answer ([`error::ApiError`]), the request extractors ([`extract`]), and the listener's own routes:
//! `/healthz` (process up), `/readyz` (database reachable, NATS connected and every consumer of this
//! process consuming), `/metrics` (Prometheus; on its own listener when `http.metrics_listen` is set,
//! see [`metrics_router`]). Each role brings its routes and `app` merges them onto [`router`], so this
//! module never names a role (the layering test in `lib.rs` keeps it so). [`serve`] runs a router on a
//! listener with the limits against slow and greedy clients.

pub mod error;
pub mod extract;
pub mod serve;

use crate::tenancy::Tenancy;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub tenancy: Tenancy,
    pub metrics: PrometheusHandle,
    /// The NATS side of readiness.
    pub health: crate::bus::Health,
    /// Where run transitions are announced (agents' status reports; see the bridge's `Lifecycle`).
    /// A plain bus handle, not the bridge's type, so this module stays below the roles.
    pub runs_bus: Option<crate::bus::Bus>,
    /// Verifies run tokens (see [`crate::domain::run_token`]).
    pub run_token_key: std::sync::Arc<Vec<u8>>,
    /// Bytes of a reported result text kept (`bridge.result_limit`).
    pub result_limit: usize,
}

/// The listener's own routes and the 404 fallback; `app` merges the routes of each enabled role.
/// `with_metrics`: `/metrics` too (false when it has its own listener).
pub fn router(state: AppState, with_metrics: bool) -> Router {
    let mut routes = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz));
    if with_metrics {
        routes = routes.route("/metrics", get(metrics));
    }
    routes.fallback(not_found).with_state(state)
}

/// The separate metrics listener's routes: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.tenancy.store().ping().await {
        Ok(()) => match s.health.problem() {
            None => (
                StatusCode::OK,
                axum::Json(json!({"status": "ready", "database": "ok", "nats": "ok"})),
            ),
            Some(p) => {
                tracing::warn!(reason = p.reason, message = %p.message, "readiness: NATS side not ready");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(
                        json!({"status": "not_ready", "database": "ok", "reason": p.reason, "message": p.message}),
                    ),
                )
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    json!({"status": "not_ready", "reason": "database_unavailable", "message": e.to_string()}),
                ),
            )
        }
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such path")
}

/// The answer to a request whose handler panicked (tower-http's catch-panic layer): 500 with a
/// reason, counted in `ifox_http_panics_total`; the process keeps serving.
pub fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = what, "request handler panicked; answered 500");
    metrics::counter!("ifox_http_panics_total").increment(1);
    error::ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the request failed inside ifox; it is logged",
    )
    .into_response()
}
