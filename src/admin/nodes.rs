//! Org, node, claim and audit handlers (configs, locks and effective configs: `config.rs`).

use crate::domain::limits as domain_limits;
use crate::domain::token::Principal;
use crate::domain::{NodeId, OrgId, rfc3339};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::store::nodes::NodeRow;
use crate::tenancy::scope::node_visibility;
use crate::tenancy::{NewNode, NodeChange, OrgScope, TenancyError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn node_json(n: &NodeRow) -> Value {
    json!({
        "org_id": n.org_id, "node_id": n.node_id, "parent_id": n.parent_id, "node_type": n.node_type,
        "name": n.name, "version": n.version, "locked_paths": n.locked_paths,
        "created_at": rfc3339(n.created_at), "updated_at": rfc3339(n.updated_at),
    })
}

/// Levels of the nested tree answer: the recursion below stops there whatever the database holds
/// (a tree stored before `limits.tree_depth` existed may be deeper; its deeper nodes are still in
/// the flat `nodes` list).
const TREE_JSON_DEPTH: usize = domain_limits::MAX_TREE_DEPTH as usize + 1;

fn tree_json(nodes: &[NodeRow]) -> Value {
    let mut children: BTreeMap<Option<&NodeId>, Vec<&NodeRow>> = BTreeMap::new();
    for n in nodes {
        children.entry(n.parent_id.as_ref()).or_default().push(n);
    }
    fn build(
        n: &NodeRow,
        children: &BTreeMap<Option<&NodeId>, Vec<&NodeRow>>,
        depth: usize,
    ) -> Value {
        let kids: Vec<Value> = match children.get(&Some(&n.node_id)) {
            Some(k) if depth < TREE_JSON_DEPTH => {
                k.iter().map(|c| build(c, children, depth + 1)).collect()
            }
            _ => Vec::new(),
        };
        json!({"node_id": n.node_id, "node_type": n.node_type, "name": n.name, "children": kids})
    }
    children
        .get(&None)
        .and_then(|roots| roots.first())
        .map(|root| build(root, &children, 0))
        .unwrap_or(Value::Null)
}

/// Org scope for a route naming an org.
pub fn org_scope(state: &AppState, principal: &Principal, org: &str) -> Result<OrgScope, ApiError> {
    let org = OrgId::parse(org)?;
    Ok(state.tenancy.org_scope(principal, &org)?)
}

/// Org scope for a route naming a node: a team token sees only its own node (403), nothing else (404).
pub fn node_scope(
    state: &AppState,
    principal: &Principal,
    org: &str,
    node: &str,
) -> Result<(OrgScope, NodeId), ApiError> {
    let org_id = OrgId::parse(org)?;
    let node = NodeId::parse(node)?;
    if !principal.sees_org(&org_id) {
        return Err(TenancyError::not_found(format!("org {org_id}")).into());
    }
    node_visibility(principal, &org_id, &node)?;
    Ok((org_scope(state, principal, org)?, node))
}

#[derive(Deserialize)]
pub struct NewOrg {
    org_id: OrgId,
    name: Option<String>,
}

pub async fn create_org(
    State(s): State<AppState>,
    Auth(p): Auth,
    Body(b): Body<NewOrg>,
) -> Result<Response, ApiError> {
    if p != Principal::GlobalAdmin {
        return Err(TenancyError::Forbidden("only the global admin creates orgs").into());
    }
    let name = b.name.unwrap_or_else(|| b.org_id.to_string());
    let row = s.tenancy.create_org(&p.actor(), &b.org_id, &name).await?;
    Ok((StatusCode::CREATED, Json(node_json(&row))).into_response())
}

pub async fn list_orgs(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let orgs = s.tenancy.list_orgs().await?;
    let visible: Vec<Value> = match &p {
        Principal::GlobalAdmin => orgs.iter().map(node_json).collect(),
        Principal::OrgAdmin { org, .. } => orgs
            .iter()
            .filter(|o| &o.org_id == org)
            .map(node_json)
            .collect(),
        Principal::Team { .. } => {
            return Err(
                TenancyError::Forbidden("a team token can only use /api/v1/config/me").into(),
            );
        }
    };
    Ok(Json(json!({"orgs": visible})))
}

pub async fn get_org(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    let root = NodeId::root_of(scope.org());
    Ok(Json(node_json(&s.tenancy.get_node(&scope, &root).await?)))
}

#[derive(Deserialize, Default)]
pub struct Cascade {
    #[serde(default)]
    cascade: bool,
}

pub async fn delete_org(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<Cascade>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    if p != Principal::GlobalAdmin {
        return Err(TenancyError::Forbidden("only the global admin deletes orgs").into());
    }
    let root = NodeId::root_of(scope.org());
    let deleted = s.tenancy.delete_node(&scope, &root, q.cascade).await?;
    Ok(Json(json!({"deleted": deleted})))
}

pub async fn create_node(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Body(b): Body<NewNode>,
) -> Result<Response, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    let row = s.tenancy.create_node(&scope, b).await?;
    Ok((StatusCode::CREATED, Json(node_json(&row))).into_response())
}

pub async fn list_nodes(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    let nodes = s.tenancy.list_nodes(&scope).await?;
    Ok(Json(
        json!({"org_id": scope.org(), "nodes": nodes.iter().map(node_json).collect::<Vec<_>>(), "tree": tree_json(&nodes)}),
    ))
}

pub async fn get_node(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    Ok(Json(node_json(&s.tenancy.get_node(&scope, &node).await?)))
}

pub async fn change_node(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    Body(b): Body<NodeChange>,
) -> Result<Json<Value>, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    Ok(Json(node_json(
        &s.tenancy.change_node(&scope, &node, b).await?,
    )))
}

pub async fn delete_node(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, node)): Path<(String, String)>,
    Query(q): Query<Cascade>,
) -> Result<Json<Value>, ApiError> {
    let (scope, node) = node_scope(&s, &p, &org, &node)?;
    if node.as_str() == scope.org().as_str() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "use_org_delete",
            "delete the org root with DELETE /api/v1/admin/orgs/{org}",
        ));
    }
    let deleted = s.tenancy.delete_node(&scope, &node, q.cascade).await?;
    Ok(Json(json!({"deleted": deleted})))
}

pub async fn claims(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    Ok(Json(
        json!({"org_id": scope.org(), "claims": s.tenancy.list_claims(&scope).await?}),
    ))
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

pub async fn audit(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    let entries = s.tenancy.audit_log(&scope, q.limit.unwrap_or(100)).await?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({"actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail, "at": rfc3339(e.at)}))
        .collect();
    Ok(Json(json!({"org_id": scope.org(), "entries": entries})))
}
