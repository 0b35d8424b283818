//! Token handlers: org admin tokens (global admin only) and team tokens (org admin or global).

use super::nodes::{node_scope, org_scope};
use crate::domain::now_ms;
use crate::domain::token::Principal;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::tenancy::TenancyError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// `{"name": "...", "expires_in": "30d"}` or `{"expires_at": "2027-01-01T00:00:00Z"}`; both optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: Option<String>,
    expires_in: Option<String>,
    expires_at: Option<String>,
}

impl NewToken {
    /// The expiry in Unix ms; far-away values saturate, and the issue refuses them past
    /// `limits.token_lifetime` (422 `token_lifetime_too_long`).
    fn expiry_ms(&self) -> Result<Option<i64>, ApiError> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_expiry", m);
        let now = now_ms();
        let at = match (&self.expires_in, &self.expires_at) {
            (Some(_), Some(_)) => {
                return Err(bad("give expires_in or expires_at, not both".into()));
            }
            (Some(d), None) => {
                let d = humantime::parse_duration(d)
                    .map_err(|e| bad(format!("expires_in {d:?}: {e}")))?;
                now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            (None, Some(t)) => {
                let t = humantime::parse_rfc3339_weak(t)
                    .map_err(|e| bad(format!("expires_at {t:?}: {e}")))?;
                let ms = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                i64::try_from(ms).unwrap_or(i64::MAX)
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(at))
    }
}

fn global_only(p: &Principal) -> Result<(), ApiError> {
    if *p != Principal::GlobalAdmin {
        return Err(
            TenancyError::Forbidden("only the global admin manages org admin tokens").into(),
        );
    }
    Ok(())
}

pub async fn issue_org(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
    body: Option<Body<NewToken>>,
) -> Result<Response, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    global_only(&p)?;
    let b = body.map(|Body(b)| b).unwrap_or_default();
    let issued = s
        .tenancy
        .issue_token(&scope, None, b.name.clone(), b.expiry_ms()?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

pub async fn list_org(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    global_only(&p)?;
    Ok(Json(
        json!({"tokens": s.tenancy.list_tokens(&scope, None).await?}),
    ))
}

pub async fn revoke_org(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    global_only(&p)?;
    s.tenancy.revoke_token(&scope, None, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn issue_team(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, team)): Path<(String, String)>,
    body: Option<Body<NewToken>>,
) -> Result<Response, ApiError> {
    let (scope, team) = node_scope(&s, &p, &org, &team)?;
    let b = body.map(|Body(b)| b).unwrap_or_default();
    let issued = s
        .tenancy
        .issue_token(&scope, Some(&team), b.name.clone(), b.expiry_ms()?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

pub async fn list_team(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, team)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (scope, team) = node_scope(&s, &p, &org, &team)?;
    Ok(Json(
        json!({"tokens": s.tenancy.list_tokens(&scope, Some(&team)).await?}),
    ))
}

pub async fn revoke_team(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, team, token)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (scope, team) = node_scope(&s, &p, &org, &team)?;
    s.tenancy.revoke_token(&scope, Some(&team), &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
