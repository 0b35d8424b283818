//! The one error answer of the HTTP API: a status and `{"reason": <machine-readable>, "message": …}`
//! (plus fields that name what was in the way: `path`, `locked_by`, `team`, `identifier`).

use crate::domain::limits::{Class, Exceeded};
use crate::store::StoreError;
use crate::tenancy::TenancyError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            TenancyError::InvalidId(_) => ApiError::new(S::BAD_REQUEST, "invalid_id", msg),
            TenancyError::Invalid { reason, .. } => ApiError::new(S::BAD_REQUEST, reason, msg),
            TenancyError::Config(crate::domain::config::ConfigError::NotAnObject(_)) => {
                ApiError::new(S::BAD_REQUEST, "not_an_object", msg)
            }
            TenancyError::Config(_) => ApiError::new(S::BAD_REQUEST, "invalid_path", msg),
            TenancyError::Routing(_) => ApiError::new(S::BAD_REQUEST, "invalid_routing", msg),
            TenancyError::NotFound { .. } => ApiError::new(S::NOT_FOUND, "not_found", msg),
            TenancyError::AlreadyExists { .. } => ApiError::new(S::CONFLICT, "already_exists", msg),
            TenancyError::HasDependents { reason, .. } => ApiError::new(S::CONFLICT, reason, msg),
            TenancyError::VersionMismatch { current, .. } => {
                ApiError::new(S::PRECONDITION_FAILED, "version_mismatch", msg)
                    .with("current_version", current)
            }
            TenancyError::Locked { path, locked_by } => {
                ApiError::new(S::FORBIDDEN, "locked_path", msg)
                    .with("path", path)
                    .with("locked_by", locked_by.to_string())
            }
            TenancyError::ClaimConflict { identifier, team } => {
                ApiError::new(S::CONFLICT, "claim_conflict", msg)
                    .with("team", team.to_string())
                    .with(
                        "identifier",
                        json!({"kind": identifier.kind, "value": identifier.value}),
                    )
            }
            TenancyError::ForeignClaim { identifier, org } => {
                let e = ApiError::new(S::CONFLICT, "claim_conflict", msg).with(
                    "identifier",
                    json!({"kind": identifier.kind, "value": identifier.value}),
                );
                match org {
                    Some(org) => e.with("org", org.to_string()),
                    None => e,
                }
            }
            TenancyError::PlatformOwnedKey { key } => {
                ApiError::new(S::FORBIDDEN, "platform_owned_key", msg).with("key", key)
            }
            TenancyError::Forbidden(_) => ApiError::new(S::FORBIDDEN, "forbidden", msg),
            TenancyError::Unauthorized { reason } => ApiError::new(S::UNAUTHORIZED, reason, msg),
            TenancyError::OverLimit(e) => e.into(),
            TenancyError::Store(StoreError::Corrupt(_)) => {
                tracing::error!(error = %msg, "stored data is invalid");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
            TenancyError::Store(e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable; retry",
                )
            }
        }
    }
}

/// A bound of the `limits` settings: 400 for the shape of a request (depth, header count), 413 for
/// bytes, 422 for a quota or range; `limit` names the setting and `max` its value.
impl From<Exceeded> for ApiError {
    fn from(e: Exceeded) -> Self {
        let status = match e.limit.class() {
            Class::Shape => StatusCode::BAD_REQUEST,
            Class::Size => StatusCode::PAYLOAD_TOO_LARGE,
            Class::Quota => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.limit.reason(), e.to_string())
            .with("limit", e.limit.setting())
            .with("max", e.max)
    }
}

impl From<crate::domain::ids::IdError> for ApiError {
    fn from(e: crate::domain::ids::IdError) -> Self {
        TenancyError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("reason".into(), self.reason.into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra);
        let mut res = (self.status, axum::Json(Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}
