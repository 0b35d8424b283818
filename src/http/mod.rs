//! What every HTTP surface shares, below the roles: the handler state ([`AppState`]), the one error
//! answer ([`error::ApiError`]), the request extractors ([`extract`]), and the listener's own routes:
//! `/healthz` (process up), `/readyz` (database reachable), `/metrics` (Prometheus). Each role brings
//! its routes and `app` merges them onto [`router`], so this module never names a role (the layering
//! test in `lib.rs` keeps it so).

pub mod error;
pub mod extract;

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
}

/// The listener's own routes and the 404 fallback; `app` merges the routes of each enabled role.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.tenancy.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "database": "ok"})),
        ),
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
