//! Why a webhook was not accepted, and what each reason answers: a status, a stable `reason` (also
//! the metric label of `ifox_ingest_rejected_total`), and `Retry-After` where the provider should retry.

use super::verify::VerifyError;
use crate::bus::PublishError;
use crate::http::error::ApiError;
use crate::store::StoreError;
use axum::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Missing, malformed, stale or wrong signature, or no secret to check it with.
    #[error("signature check failed: {0}")]
    Signature(#[from] VerifyError),
    #[error("send Content-Type: {expected}")]
    MediaType { expected: &'static str },
    #[error("the body is not a {provider} payload: {problem}")]
    Malformed {
        provider: &'static str,
        problem: String,
    },
    #[error("header {0} is required")]
    MissingHeader(&'static str),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The listener's body deadline (`http.body_timeout`) passed while the body was read.
    #[error("the body did not arrive in time (http.body_timeout)")]
    BodyTimeout,
    #[error("no webhook source {0:?} is configured here")]
    UnknownSource(String),
    #[error("no org {0:?}")]
    UnknownOrg(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Shared by every request that waited for the same failed read (see `secret_cache`).
    #[error("the org's webhook secrets cannot be read: {0}")]
    Secrets(#[source] std::sync::Arc<StoreError>),
}

impl IngestError {
    pub fn malformed(provider: &'static str, problem: impl Into<String>) -> Self {
        IngestError::Malformed {
            provider,
            problem: problem.into(),
        }
    }

    /// Stable snake_case label for answers, metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Signature(e) => e.reason(),
            IngestError::MediaType { .. } => "unsupported_media_type",
            IngestError::Malformed { .. } => "malformed_body",
            IngestError::MissingHeader(_) => "missing_header",
            IngestError::TooLarge { .. } | IngestError::Publish(PublishError::TooLarge(_)) => {
                "payload_too_large"
            }
            IngestError::BodyTimeout => "body_timeout",
            IngestError::UnknownSource(_) => "unknown_source",
            IngestError::UnknownOrg(_) => "unknown_org",
            IngestError::Publish(PublishError::Unavailable(_)) => "nats_unavailable",
            IngestError::Secrets(_) => "database_unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Signature(_) => StatusCode::UNAUTHORIZED,
            IngestError::MediaType { .. }
            | IngestError::Malformed { .. }
            | IngestError::MissingHeader(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge { .. } | IngestError::Publish(PublishError::TooLarge(_)) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            IngestError::UnknownSource(_) | IngestError::UnknownOrg(_) => StatusCode::NOT_FOUND,
            // 503 carries Retry-After (set by ApiError), so providers retry.
            IngestError::Publish(PublishError::Unavailable(_)) | IngestError::Secrets(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        // A provider needs no detail beyond the reason for our own faults; the log has it.
        let message = match &e {
            IngestError::Publish(PublishError::Unavailable(_)) => {
                "the event store is unavailable; retry".to_owned()
            }
            IngestError::Secrets(_) => "the secret store is unavailable; retry".to_owned(),
            other => other.to_string(),
        };
        ApiError::new(e.status(), e.reason(), message)
    }
}
