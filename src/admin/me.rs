//! Team-token endpoints (`/api/v1/config/me…`) and the operators' route lookup.

use super::config::{config_response, effective_response};
use crate::domain::OrgId;
use crate::domain::limits::{Exceeded, Limit, Limits, json_len};
use crate::domain::routing::{Identifier, IdentifierKind};
use crate::domain::token::Principal;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::tenancy::scope::team_scope;
use crate::tenancy::{ConfigWrite, TenancyError};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
pub struct Explain {
    #[serde(default)]
    explain: bool,
}

pub async fn effective(
    State(s): State<AppState>,
    super::runs::ReadAuth(p): super::runs::ReadAuth,
    Query(q): Query<Explain>,
) -> Result<Response, ApiError> {
    let team = team_scope(&p)?;
    let (eff, sources) = s
        .tenancy
        .effective(&team.as_org_scope(), team.team(), q.explain)?;
    Ok(effective_response(&eff, sources))
}

pub async fn get_config(State(s): State<AppState>, Auth(p): Auth) -> Result<Response, ApiError> {
    let team = team_scope(&p)?;
    let (config, version) = s
        .tenancy
        .get_config(&team.as_org_scope(), team.team())
        .await?;
    Ok(config_response(config, version))
}

/// A team patches its own raw config; ancestors' locks and claim uniqueness still apply.
pub async fn patch_config(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    let team = team_scope(&p)?;
    let if_match = match headers.get(axum::http::header::IF_MATCH) {
        None => None,
        Some(v) => crate::tenancy::parse_if_match(v.to_str().unwrap_or("invalid")),
    };
    let (config, version) = s
        .tenancy
        .write_config(
            &team.as_org_scope(),
            team.team(),
            ConfigWrite::Patch(body),
            if_match,
        )
        .await?;
    Ok(config_response(config, version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// `{"github_repos": ["acme/api"], "slack_channel_ids": ["C1"]}`
    identifiers: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    org_hints: Vec<OrgId>,
}

/// `POST /api/v1/admin/route/lookup`: global admin over every org; an org admin within its own org.
pub async fn route_lookup(
    State(s): State<AppState>,
    Auth(p): Auth,
    Body(b): Body<Lookup>,
) -> Result<Json<Value>, ApiError> {
    let hints = match &p {
        Principal::GlobalAdmin => b.org_hints,
        Principal::OrgAdmin { org, .. } => vec![org.clone()],
        Principal::Team { .. } => {
            return Err(TenancyError::Forbidden("route lookup needs an admin token").into());
        }
    };
    let mut ids = Vec::new();
    for (key, values) in &b.identifiers {
        let kind = IdentifierKind::from_key(key).ok_or_else(|| {
            TenancyError::from(crate::domain::routing::ClaimError::UnknownKind(key.clone()))
        })?;
        ids.extend(values.iter().map(|v| Identifier::new(kind, v)));
    }
    Ok(Json(json!(s.tenancy.catalog().route(&ids, &hints))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    source: String,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    /// The provider payload: a JSON value, or a string taken verbatim.
    #[serde(default)]
    payload: Value,
}

/// `POST /api/v1/admin/route/explain`: what the router would do with an event, without side effects.
/// An org admin's explain is limited to its own org (its id is the org hint).
pub async fn route_explain(
    State(s): State<AppState>,
    Auth(p): Auth,
    Body(b): Body<ExplainRequest>,
) -> Result<Json<Value>, ApiError> {
    let mut headers: Vec<(String, String)> = b.headers.into_iter().collect();
    match &p {
        Principal::GlobalAdmin => {}
        Principal::OrgAdmin { org, .. } => {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(crate::domain::headers::ORG));
            headers.push((crate::domain::headers::ORG.to_owned(), org.to_string()));
        }
        Principal::Team { .. } => {
            return Err(TenancyError::Forbidden("route explain needs an admin token").into());
        }
    }
    check_explain_bounds(s.tenancy.limits(), &headers, &b.payload)?;
    let payload = match &b.payload {
        Value::String(text) => text.clone().into_bytes(),
        Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    };
    let event_type = b.event_type.unwrap_or_else(|| "explain".to_owned());
    crate::router::explain::check_request(&b.source, &event_type, &headers)
        .map_err(|m| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_header", m))?;
    let out = crate::router::explain::explain(
        s.tenancy.catalog(),
        &b.source,
        &event_type,
        &headers,
        &payload,
    );
    Ok(Json(json!(out)))
}

/// The `limits.explain_*` bounds of a route explain request, before anything is built from it:
/// header count (400 `too_many_headers`), one header's bytes (413 `header_too_large`) and the
/// payload's bytes (413 `payload_too_large`), each naming its setting. `check_request` then refuses
/// what a NATS header cannot hold.
fn check_explain_bounds(
    limits: &Limits,
    headers: &[(String, String)],
    payload: &Value,
) -> Result<(), Exceeded> {
    limits.check(Limit::ExplainHeaders, headers.len() as u64)?;
    for (k, v) in headers {
        limits.check(Limit::ExplainHeaderBytes, (k.len() + v.len()) as u64)?;
    }
    let bytes = match payload {
        Value::String(text) => text.len(),
        Value::Null => 0,
        other => json_len(other),
    };
    limits.check(Limit::ExplainPayloadBytes, bytes as u64)
}
