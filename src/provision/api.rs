//! HTTP: `POST /api/v1/admin/provision/team` (202 + run id, and the first team token once),
//! `GET /api/v1/admin/provision/runs/{id}`, `POST /api/v1/admin/provision/team/{org}/{team}/deprovision`
//! and `GET /api/v1/admin/orgs/{org}/cost`. Callers: the global admin or the org's admin; anything of
//! another org answers 404, as if it did not exist.

use super::admit;
use super::cost::{self, Prices, TeamInput};
use super::request::{self, Mode};
use super::{ProvisionError, consumer};
use crate::bus::Bus;
use crate::domain::{NodeId, NodeType, OrgId, now_ms};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::settings::provision::ProvisionSettings;
use crate::store::StoreError;
use crate::store::{deployments, provision_runs, runs};
use crate::tenancy::{OrgScope, Tenancy};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the handlers need beyond [`AppState`].
#[derive(Clone)]
pub struct ProvisionApi {
    /// Where nudges go; without it the resync picks the run up.
    pub bus: Option<Bus>,
    pub settings: ProvisionSettings,
}

pub fn routes(ctx: ProvisionApi) -> Router<AppState> {
    let p = "/api/v1/admin/provision";
    Router::new()
        .route(&format!("{p}/team"), post(provision))
        .route(
            &format!("{p}/team/{{org}}/{{team}}/deprovision"),
            post(deprovision),
        )
        .route(&format!("{p}/runs/{{id}}"), get(run))
        .route("/api/v1/admin/orgs/{org}/cost", get(org_cost))
        .layer(Extension(ctx))
}

impl From<ProvisionError> for ApiError {
    fn from(e: ProvisionError) -> Self {
        let msg = e.to_string();
        match e {
            ProvisionError::Request(r) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", msg).with("field", r.field)
            }
            ProvisionError::IdempotencyMismatch { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                msg,
            ),
            ProvisionError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", msg),
            ProvisionError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            ProvisionError::Tenancy(t) => t.into(),
            ProvisionError::Store(s) => crate::tenancy::TenancyError::Store(s).into(),
            ProvisionError::Backend(super::backend::BackendError::OwnedByAnotherTenant {
                name,
                ..
            }) => ApiError::new(StatusCode::CONFLICT, "object_owned_by_another_tenant", msg)
                .with("object", name),
            ProvisionError::Backend(_) | ProvisionError::NotAvailable { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cluster_unavailable", msg)
            }
        }
    }
}

async fn nudge(ctx: &ProvisionApi, org: &OrgId, team: &NodeId, run_id: &str) -> bool {
    let Some(bus) = &ctx.bus else { return false };
    match consumer::nudge(bus, org, team, run_id).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(%org, %team, run_id, error = %e, "provisioning nudge not published; the resync will pick the run up");
            false
        }
    }
}

async fn provision(
    State(s): State<AppState>,
    Extension(ctx): Extension<ProvisionApi>,
    Auth(principal): Auth,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let policy = super::policy::Policy::from_settings(&ctx.settings);
    let req = request::parse_with(body.clone(), &policy).map_err(ProvisionError::from)?;
    let header_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let v = v.to_str().unwrap_or_default().to_owned();
            request::check_idempotency_key("Idempotency-Key", &v).map_err(ProvisionError::from)?;
            Some(v)
        }
    };
    if let (Some(h), Some(f)) = (&header_key, &req.idempotency_key)
        && h != f
    {
        let e = request::RequestError {
            field: "idempotency_key".to_owned(),
            message: "differs from the Idempotency-Key header".to_owned(),
        };
        return Err(ProvisionError::from(e).into());
    }
    let key = header_key.or_else(|| req.idempotency_key.clone());
    let scope = s.tenancy.org_scope(&principal, &req.org)?;
    let hash = admit::request_hash(&body);
    let admitted = admit::provision(
        &s.tenancy,
        &scope,
        &req,
        key.as_deref(),
        &hash,
        ctx.settings.grace,
    )
    .await?;
    let nudged = if admitted.replayed {
        false
    } else {
        nudge(&ctx, &req.org, &req.team, &admitted.run_id).await
    };
    let mut out = json!({
        "run_id": admitted.run_id,
        "status_url": format!("/api/v1/admin/provision/runs/{}", admitted.run_id),
        "org_id": req.org,
        "team_node_id": req.team,
        "deployment_mode": req.mode.as_str(),
        "replayed": admitted.replayed,
        "nudged": nudged,
    });
    if let Some(token) = admitted.token {
        out["team_token"] = serde_json::to_value(token).unwrap_or(Value::Null);
    }
    Ok((StatusCode::ACCEPTED, Json(out)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeprovisionBody {
    /// Also delete the team node (its claims, history and tokens), as `DELETE …/nodes/{team}?cascade=true`.
    #[serde(default)]
    delete_team: bool,
}

async fn deprovision(
    State(s): State<AppState>,
    Extension(ctx): Extension<ProvisionApi>,
    Auth(principal): Auth,
    Path((org, team)): Path<(String, String)>,
    body: Option<Body<DeprovisionBody>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org = OrgId::parse(org)?;
    let team = NodeId::parse(team)?;
    let scope = s.tenancy.org_scope(&principal, &org)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let run_id = admit::deprovision(&s.tenancy, &scope, &team, ctx.settings.grace).await?;
    if body.delete_team {
        s.tenancy.delete_node(&scope, &team, true).await?;
    }
    nudge(&ctx, &org, &team, &run_id).await;
    let delete_after = now_ms() + ctx.settings.grace.as_millis() as i64;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": run_id,
            "status_url": format!("/api/v1/admin/provision/runs/{run_id}"),
            "team_deleted": body.delete_team,
            "objects_deleted_after": crate::domain::rfc3339(delete_after),
        })),
    ))
}

async fn run(
    State(s): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("run {id} not found"),
        )
    };
    let mut conn = s
        .tenancy
        .store()
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)
        .map_err(ProvisionError::from)?;
    let row = provision_runs::get(&mut conn, &id)
        .await
        .map_err(ProvisionError::from)?
        .ok_or_else(not_found)?;
    // Another org's run is invisible, whatever the reason the scope is refused.
    let org = OrgId::parse(row.org_id.clone()).map_err(|_| not_found())?;
    s.tenancy
        .org_scope(&principal, &org)
        .map_err(|_| not_found())?;
    let steps = provision_runs::steps(&mut conn, &id)
        .await
        .map_err(ProvisionError::from)?;
    let mut out = serde_json::to_value(&row).unwrap_or(Value::Null);
    out["created_at"] = json!(crate::domain::rfc3339(row.created_at));
    out["updated_at"] = json!(crate::domain::rfc3339(row.updated_at));
    out["steps"] = serde_json::to_value(steps).unwrap_or(Value::Null);
    Ok(Json(out))
}

async fn org_cost(
    State(s): State<AppState>,
    Extension(ctx): Extension<ProvisionApi>,
    Auth(principal): Auth,
    Path(org): Path<String>,
) -> Result<Json<cost::CostReport>, ApiError> {
    let org = OrgId::parse(org)?;
    let scope = s.tenancy.org_scope(&principal, &org)?;
    Ok(Json(org_report(&s.tenancy, &scope, &ctx.settings).await?))
}

/// The cost report of an org (the HTTP endpoint and `ifox cost`).
pub async fn org_report(
    tenancy: &Tenancy,
    scope: &OrgScope,
    settings: &ProvisionSettings,
) -> Result<cost::CostReport, ProvisionError> {
    let org = scope.org();
    let mut conn = tenancy
        .store()
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let since = now_ms() - 30 * 24 * 3600 * 1000;
    let teams = tenancy.list_nodes(scope).await?;
    let deployments = deployments::list_org(&mut conn, org).await?;
    let runs = runs::shared_runs_per_team(&mut conn, org, since).await?;
    let all_runs = runs::shared_runs_total(&mut conn, since).await?;
    let inputs: Vec<TeamInput<'_>> = teams
        .iter()
        .filter(|n| n.node_type == NodeType::Team)
        .map(|n| TeamInput {
            team: n.node_id.to_string(),
            spec: deployments
                .iter()
                .find(|d| d.team == n.node_id && d.mode == Mode::Dedicated)
                .and_then(|d| d.spec.as_ref()),
            shared_runs: runs
                .iter()
                .find(|(t, _)| t == n.node_id.as_str())
                .map_or(0, |(_, c)| *c),
        })
        .collect();
    Ok(cost::report(&Prices::from(settings), &inputs, all_runs))
}
