//! The one HTTP listener (`http.listen`): `/healthz` (process up), `/readyz` (database reachable,
//! NATS connected and every consumer of this process consuming),
//! `/metrics` (Prometheus), and the routes of each enabled role.

use crate::tenancy::Tenancy;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
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
    /// Run transitions (agents' status reports).
    pub lifecycle: crate::bridge::lifecycle::Lifecycle,
    /// Verifies run tokens (see [`crate::domain::run_token`]).
    pub run_token_key: std::sync::Arc<Vec<u8>>,
    /// Bytes of a reported result text kept (`bridge.result_limit`).
    pub result_limit: usize,
}

pub fn router(state: AppState, admin: bool, body_limit: usize) -> Router {
    let mut app = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if admin {
        app = app.merge(crate::admin::routes().layer(DefaultBodyLimit::max(body_limit)));
    }
    app.fallback(not_found).with_state(state)
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

async fn not_found() -> crate::admin::error::ApiError {
    crate::admin::error::ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such path")
}
