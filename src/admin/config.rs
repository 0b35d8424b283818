//! Config handlers of a node: its raw config (ETag / If-Match), history and rollback, effective
//! config (with `explain`), and locks.

use super::nodes::node_scope;
use crate::domain::{NodeId, rfc3339};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::tenancy::ConfigWrite;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn etag(version: i64) -> HeaderValue {
    // Invariant, not input: a quoted decimal number is always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => Ok(crate::tenancy::parse_if_match(
            v.to_str().unwrap_or("invalid"),
        )),
    }
}

pub fn config_response(config: Value, version: i64) -> Response {
    let mut res = Json(json!({"config": config, "version": version})).into_response();
    res.headers_mut().insert(header::ETAG, etag(version));
    res
}

pub async fn get_config(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let (config, version) = s.tenancy.get_config(&scope, &node).await?;
    Ok(config_response(config, version))
}

#[derive(Deserialize, Default)]
pub struct PutMode {
    #[serde(default)]
    replace: bool,
}

/// `PUT` takes a merge patch (as the design's `{"agent_service_url": null}` example); `?replace=true`
/// makes the body the whole config.
pub async fn put_config(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    Query(mode): Query<PutMode>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let write = if mode.replace {
        ConfigWrite::Replace(body)
    } else {
        ConfigWrite::Patch(body)
    };
    let (config, version) = s
        .tenancy
        .write_config(&scope, &node, write, if_match(&headers)?)
        .await?;
    Ok(config_response(config, version))
}

pub async fn patch_config(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let (config, version) = s
        .tenancy
        .write_config(&scope, &node, ConfigWrite::Patch(body), if_match(&headers)?)
        .await?;
    Ok(config_response(config, version))
}

pub async fn config_history(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let rows = s.tenancy.config_history(&scope, &node).await?;
    let versions: Vec<Value> = rows
        .iter()
        .map(|h| json!({"version": h.version, "actor": h.actor, "at": rfc3339(h.at), "diff": h.diff, "config": h.config}))
        .collect();
    Ok(Json(json!({"node_id": node, "versions": versions})))
}

#[derive(Deserialize)]
pub struct Rollback {
    version: i64,
}

pub async fn rollback(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    headers: HeaderMap,
    Body(b): Body<Rollback>,
) -> Result<Response, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let (config, version) = s
        .tenancy
        .write_config(
            &scope,
            &node,
            ConfigWrite::Rollback(b.version),
            if_match(&headers)?,
        )
        .await?;
    Ok(config_response(config, version))
}

#[derive(Deserialize, Default)]
pub struct Explain {
    #[serde(default)]
    explain: bool,
}

pub fn effective_response(
    eff: &crate::tenancy::Effective,
    sources: Option<BTreeMap<String, NodeId>>,
) -> Response {
    let mut body = json!({
        "org_id": eff.org_id, "node_id": eff.node_id, "config": eff.config, "version": eff.version,
        "chain": eff.chain.iter().map(|(n, v)| json!({"node_id": n, "version": v})).collect::<Vec<_>>(),
    });
    if let Some(sources) = sources {
        body["sources"] = json!(sources);
    }
    let mut res = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", eff.version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

pub async fn effective(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    Query(q): Query<Explain>,
) -> Result<Response, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let (eff, sources) = s.tenancy.effective(&scope, &node, q.explain)?;
    Ok(effective_response(&eff, sources))
}

pub async fn get_locks(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let row = s.tenancy.get_node(&scope, &node).await?;
    Ok(Json(json!({"node_id": node, "paths": row.locked_paths})))
}

#[derive(Deserialize)]
pub struct Locks {
    paths: Vec<String>,
}

pub async fn put_locks(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    Body(b): Body<Locks>,
) -> Result<Json<Value>, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    let paths = s.tenancy.set_locks(&scope, &node, b.paths).await?;
    Ok(Json(json!({"node_id": node, "paths": paths})))
}
