//! Admission: a provisioning or deprovisioning request written in ONE transaction, so a refusal
//! (claim conflict, locked path, idempotency mismatch) leaves nothing behind.
//!
//! Provision: idempotency key check → team node created when missing → `routing` written into its
//! config with its claims (409 on conflict) → dedicated→shared removes `agent_service_url` at once
//! and schedules the deletion of what the team no longer wants (a shared team keeps its pipeline's
//! objects); shared→dedicated cancels a pending deletion → desired deployment
//! stored → first team token issued (only when the team has none) → run and its planned steps →
//! audit. The caller nudges the provisioner after the commit.
//!
//! The team node, its config and its tokens are written by tenancy's own write path
//! (`create_node_in`, `write_config_in`, `issue_token_in`: locks, claims, version, history, audit)
//! joining this transaction, so the request is all-or-nothing across tables tenancy does not own and
//! a refusal answers exactly as through the config API.

use super::request::{Mode, ProvisionRequest};
use super::{ProvisionError, reconcile};
use crate::domain::token;
use crate::domain::{NodeId, NodeType, now_ms};
use crate::store::deployments::{self, DeploymentRow};
use crate::store::provision_runs::{self, RunRow};
use crate::store::{Conn, StoreError, audit, nodes, tokens};
use crate::tenancy::{
    ConfigWrite, IssuedToken, NewNode, OrgScope, Tenancy, TenancyError, create_node_in,
    issue_token_in, write_config_in,
};
use serde_json::{Value, json};
use std::time::Duration;

/// The name of the token the provisioner hands to the team's pods.
pub const RUNTIME_TOKEN_NAME: &str = "agent-runtime";

/// What the API answers.
#[derive(Debug)]
pub struct Admitted {
    pub run_id: String,
    /// The first team token: present once, never for a replayed key.
    pub token: Option<IssuedToken>,
    /// The key was seen before with the same body: nothing new was written.
    pub replayed: bool,
}

/// SHA-256 of the canonical JSON of the body (keys sorted by serde_json's map), minus the key itself.
pub fn request_hash(body: &Value) -> String {
    let mut body = body.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("idempotency_key");
    }
    token::hash(&body.to_string())
}

pub async fn provision(
    tenancy: &Tenancy,
    scope: &OrgScope,
    req: &ProvisionRequest,
    key: Option<&str>,
    body_hash: &str,
    grace: Duration,
) -> Result<Admitted, ProvisionError> {
    // Two concurrent requests for the same key or team: on PostgreSQL both may pass the reads and
    // one loses on a unique index. Its transaction is gone; running it again answers as a replay
    // (same key), a mismatch, or on top of the winner's writes. (Tenancy names a lost race on the
    // team node `AlreadyExists`; a lost claim race is a final 409 `claim_conflict`.)
    let lost_race = |e: &ProvisionError| match e {
        ProvisionError::Store(e) => e.is_unique_violation(),
        ProvisionError::Tenancy(TenancyError::AlreadyExists { .. }) => true,
        _ => false,
    };
    let mut attempt = 0;
    loop {
        match provision_once(tenancy, scope, req, key, body_hash, grace).await {
            Err(e) if lost_race(&e) && attempt < 2 => attempt += 1,
            other => return other,
        }
    }
}

async fn provision_once(
    tenancy: &Tenancy,
    scope: &OrgScope,
    req: &ProvisionRequest,
    key: Option<&str>,
    body_hash: &str,
    grace: Duration,
) -> Result<Admitted, ProvisionError> {
    let org = scope.org();
    let team = &req.team;
    let now = now_ms();
    let mut tx = tenancy.store().begin().await?;
    if let Some(key) = key
        && let Some((hash, run_id)) = provision_runs::idempotency(&mut tx, org, key).await?
    {
        if hash != body_hash {
            return Err(ProvisionError::IdempotencyMismatch {
                key: key.to_owned(),
            });
        }
        return Ok(Admitted {
            run_id,
            token: None,
            replayed: true,
        });
    }
    let existing = ensure_team(&mut tx, scope, tenancy.limits(), req, now).await?;
    let mut patch = serde_json::Map::new();
    if let Some(routing) = &req.routing {
        patch.insert("routing".to_owned(), routing.clone());
    }
    if req.mode == Mode::Shared && existing.config.get("agent_service_url").is_some() {
        patch.insert("agent_service_url".to_owned(), Value::Null);
    }
    if !patch.is_empty() {
        let patch = ConfigWrite::Patch(Value::Object(patch));
        write_config_in(&mut tx, scope, tenancy.limits(), team, &patch, None, now).await?;
    }
    let previous = deployments::get(&mut tx, org, team).await?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let runtime_token = match previous.as_ref().and_then(|p| p.runtime_token.clone()) {
        Some(t) => Some(t),
        // The pods read it: a dedicated team's agent, or a shared team's pipeline.
        None if req.mode == Mode::Dedicated || req.pipeline.is_some() => Some(
            issue_token_in(
                &mut tx,
                scope,
                tenancy.limits(),
                Some(team),
                name(RUNTIME_TOKEN_NAME),
                None,
                now,
            )
            .await?
            .token,
        ),
        None => None,
    };
    let has_token = tokens::list(&mut tx, org, Some(team))
        .await?
        .iter()
        .any(|t| t.revoked_at.is_none() && t.name != RUNTIME_TOKEN_NAME);
    let first = if has_token {
        None
    } else {
        let name = name("provisioned");
        Some(
            issue_token_in(
                &mut tx,
                scope,
                tenancy.limits(),
                Some(team),
                name,
                None,
                now,
            )
            .await?,
        )
    };
    match req.mode {
        Mode::Dedicated => {
            deployments::cancel_deletion(&mut tx, org, team).await?;
        }
        Mode::Shared if previous.as_ref().is_some_and(has_objects) => {
            let after = now + grace.as_millis() as i64;
            deployments::schedule_deletion(&mut tx, org, team, &run_id, after).await?;
        }
        Mode::Shared => {}
    }
    let row = DeploymentRow {
        org: org.clone(),
        team: team.clone(),
        mode: req.mode,
        spec: req.spec.clone(),
        pipeline: req.pipeline.clone(),
        runtime_token,
        run_id: run_id.clone(),
        generation: previous.as_ref().map_or(1, |p| p.generation + 1),
        url_set: req.mode == Mode::Dedicated && previous.as_ref().is_some_and(|p| p.url_set),
        updated_at: now,
    };
    deployments::upsert(&mut tx, &row).await?;
    let kind = match req.mode {
        Mode::Dedicated => "provision_dedicated",
        Mode::Shared => "provision_shared",
    };
    start_run(&mut tx, scope, team, &run_id, kind, now).await?;
    if let Some(key) = key {
        provision_runs::insert_idempotency(&mut tx, org, key, body_hash, &run_id, now).await?;
    }
    let detail = json!({"run_id": run_id, "mode": req.mode.as_str(), "spec": req.spec});
    let target = format!("{org}/{team}");
    audit::record(
        &mut tx,
        Some(org),
        scope.actor(),
        "provision.request",
        &target,
        &detail,
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    // This process's catalog at once, then a change notice for the router's caches.
    tenancy.changed(org, Some(team)).await?;
    Ok(Admitted {
        run_id,
        token: first,
        replayed: false,
    })
}

/// Deprovision: back to shared at once (URL removed in this transaction), objects deleted after
/// `grace`. 404 when the team was never provisioned.
pub async fn deprovision(
    tenancy: &Tenancy,
    scope: &OrgScope,
    team: &NodeId,
    grace: Duration,
) -> Result<String, ProvisionError> {
    let org = scope.org();
    let now = now_ms();
    let mut tx = tenancy.store().begin().await?;
    let Some(row) = deployments::get(&mut tx, org, team).await? else {
        return Err(ProvisionError::NotFound(format!("provisioned team {team}")));
    };
    if let Some(node) = nodes::get(&mut tx, org, team).await?
        && node.config.get("agent_service_url").is_some()
    {
        let patch = ConfigWrite::Patch(json!({"agent_service_url": null}));
        write_config_in(&mut tx, scope, tenancy.limits(), team, &patch, None, now).await?;
    }
    let after = now + grace.as_millis() as i64;
    let delete_after = (has_objects(&row) || row.url_set).then_some(after);
    // Deprovisioning removes all the team's runtime, a shared pipeline too.
    let mut row = row;
    row.pipeline = None;
    let run_id = back_to_shared(&mut tx, scope, row, delete_after, "deprovision", now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    // This process's catalog at once, then a change notice for the router's caches.
    tenancy.changed(org, Some(team)).await?;
    Ok(run_id)
}

/// The URL of a converged dedicated team was removed through the config API (the design's
/// `PUT …/config {"agent_service_url": null}`): record the move back to shared and schedule the
/// deletion. A newer admission in between wins (nothing is done).
pub async fn url_removed(
    tenancy: &Tenancy,
    seen: &DeploymentRow,
    grace: Duration,
) -> Result<(), ProvisionError> {
    let scope = crate::tenancy::scope::provisioner_scope(&seen.org);
    let now = now_ms();
    let mut tx = tenancy.store().begin().await?;
    let Some(row) = deployments::get(&mut tx, &seen.org, &seen.team).await? else {
        return Ok(());
    };
    if row.generation != seen.generation {
        return Ok(());
    }
    let after = now + grace.as_millis() as i64;
    back_to_shared(&mut tx, &scope, row, Some(after), "url_removed", now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A deployment back to shared as its next generation under a new run of `kind` (audited as
/// `provision.<kind>`), its objects' deletion scheduled at `delete_after` when given. The run id.
async fn back_to_shared(
    conn: &mut Conn,
    scope: &OrgScope,
    mut row: DeploymentRow,
    delete_after: Option<i64>,
    kind: &str,
    now: i64,
) -> Result<String, StoreError> {
    let run_id = uuid::Uuid::now_v7().to_string();
    if let Some(after) = delete_after {
        deployments::schedule_deletion(conn, &row.org, &row.team, &run_id, after).await?;
    }
    row.mode = Mode::Shared;
    row.run_id = run_id.clone();
    row.generation += 1;
    row.url_set = false;
    row.updated_at = now;
    deployments::upsert(conn, &row).await?;
    start_run(conn, scope, &row.team, &run_id, kind, now).await?;
    let target = format!("{}/{}", row.org, row.team);
    let detail = json!({"run_id": run_id});
    let action = format!("provision.{kind}");
    audit::record(
        conn,
        Some(&row.org),
        scope.actor(),
        &action,
        &target,
        &detail,
        now,
    )
    .await?;
    Ok(run_id)
}

/// The team node, created under `parent` (the org by default) when missing.
async fn ensure_team(
    conn: &mut Conn,
    scope: &OrgScope,
    limits: &crate::domain::limits::Limits,
    req: &ProvisionRequest,
    now: i64,
) -> Result<nodes::NodeRow, ProvisionError> {
    match nodes::get(conn, scope.org(), &req.team).await? {
        Some(row) if row.node_type != NodeType::Team => Err(ProvisionError::Conflict(format!(
            "{} is a {}, not a team",
            req.team,
            row.node_type.as_str()
        ))),
        Some(row) => Ok(row),
        None => {
            let new = NewNode {
                node_id: req.team.clone(),
                parent_id: req.parent.clone(),
                node_type: NodeType::Team,
                name: req.name.clone(),
            };
            Ok(create_node_in(conn, scope, limits, new, now).await?)
        }
    }
}

/// A runtime with objects in the cluster: a dedicated team's, or a shared team's pipeline.
fn has_objects(row: &DeploymentRow) -> bool {
    row.mode == Mode::Dedicated || row.pipeline.is_some()
}

fn name(name: &str) -> Option<String> {
    Some(name.to_owned())
}

async fn start_run(
    conn: &mut Conn,
    scope: &OrgScope,
    team: &NodeId,
    run_id: &str,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    let run = RunRow {
        run_id: run_id.to_owned(),
        org_id: scope.org().to_string(),
        team_id: team.to_string(),
        kind: kind.to_owned(),
        status: "pending".to_owned(),
        error: None,
        created_by: scope.actor().to_owned(),
        created_at: now,
        updated_at: now,
    };
    provision_runs::insert(conn, &run).await?;
    let plan = if kind == "provision_dedicated" {
        reconcile::DEDICATED_STEPS
    } else {
        reconcile::SHARED_STEPS
    };
    for (i, step) in plan.iter().enumerate() {
        provision_runs::put_step(
            conn, run_id, step, i as i64, "pending", false, None, None, now,
        )
        .await?;
    }
    Ok(())
}
