//! Request extractors: the authenticated principal, and a JSON body whose every rejection is an
//! [`ApiError`] with a reason (malformed JSON, not an object, too large, wrong content type).

use super::AppState;
use super::error::ApiError;
use crate::domain::token::Principal;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The caller, from `Authorization: Bearer <token>`.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => {
                let value = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                match value {
                    Some(v) if !v.is_empty() => Some(v),
                    _ => {
                        return Err(ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "malformed_token",
                            "Authorization must be `Bearer <token>`",
                        ));
                    }
                }
            }
        };
        Ok(Auth(state.tenancy.authenticate(bearer).await?))
    }
}

/// A JSON object body, parsed into `T`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.starts_with("application/json") || v.starts_with("application/merge-patch+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the body is larger than 1 MiB",
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not JSON: {e}"),
            )
        })?;
        if !value.is_object() {
            let kind = crate::domain::config::type_name(&value);
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "not_an_object",
                format!("the body must be a JSON object, got {kind}"),
            ));
        }
        let parsed = serde_json::from_value(value).map_err(|e| {
            let msg = e.to_string();
            let reason = if msg.contains("DNS label") {
                "invalid_id"
            } else {
                "invalid_body"
            };
            ApiError::new(StatusCode::BAD_REQUEST, reason, msg)
        })?;
        Ok(Body(parsed))
    }
}

/// An optional JSON body: absent (no content type and no bytes) is `None`.
impl<T: DeserializeOwned> axum::extract::OptionalFromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Option<Self>, ApiError> {
        let empty = req.headers().get(header::CONTENT_TYPE).is_none()
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v == "0");
        if empty {
            return Ok(None);
        }
        <Body<T> as FromRequest<AppState>>::from_request(req, state)
            .await
            .map(Some)
    }
}
