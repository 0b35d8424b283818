//! The team-level writes of admission, run inside admission's transaction: the team node created
//! when missing, a merge patch on its config under the tenancy rules (ancestors' locks, claim
//! uniqueness, version, history, audit; the same rules as `tenancy::write_config`, which cannot join
//! another transaction), and team tokens.

use super::ProvisionError;
use super::request::ProvisionRequest;
use crate::domain::config::{self, LockViolation};
use crate::domain::routing::claims_of;
use crate::domain::token::{self, TokenShape};
use crate::domain::{NodeId, NodeType, OrgId};
use crate::store::{Conn, StoreError, audit, claims, history, nodes, tokens};
use crate::tenancy::{IssuedToken, OrgScope, TenancyError, TokenView};
use serde_json::{Value, json};

/// The team node, created under `parent_id` (the org by default) when missing.
pub(super) async fn ensure_team(
    conn: &mut Conn,
    scope: &OrgScope,
    req: &ProvisionRequest,
    now: i64,
) -> Result<nodes::NodeRow, ProvisionError> {
    let org = scope.org();
    if let Some(row) = nodes::get(conn, org, &req.team).await? {
        if row.node_type != NodeType::Team {
            return Err(ProvisionError::Conflict(format!(
                "{} is a {}, not a team",
                req.team,
                row.node_type.as_str()
            )));
        }
        return Ok(row);
    }
    let parent = req.parent.clone().unwrap_or_else(|| NodeId::root_of(org));
    let Some(parent_row) = nodes::get(conn, org, &parent).await? else {
        return Err(TenancyError::not_found(format!("parent node {parent}")).into());
    };
    if parent_row.node_type == NodeType::Team {
        return Err(ProvisionError::Conflict(format!(
            "{parent} is a team; teams have no children"
        )));
    }
    let row = nodes::NodeRow {
        org_id: org.clone(),
        node_id: req.team.clone(),
        parent_id: Some(parent),
        node_type: NodeType::Team,
        name: req.name.clone().unwrap_or_else(|| req.team.to_string()),
        config: json!({}),
        locked_paths: vec![],
        version: 1,
        created_at: now,
        updated_at: now,
    };
    nodes::insert(conn, &row).await?;
    let first = history::HistoryRow {
        version: 1,
        config: row.config.clone(),
        diff: json!({}),
        actor: scope.actor().to_owned(),
        at: now,
    };
    history::insert(conn, org, &row.node_id, &first).await?;
    let target = format!("{org}/{}", row.node_id);
    let detail = json!({"parent_id": row.parent_id, "node_type": "team", "name": row.name});
    audit::record(
        conn,
        Some(org),
        scope.actor(),
        "node.create",
        &target,
        &detail,
        now,
    )
    .await?;
    Ok(row)
}

/// A merge patch on the team's config with the tenancy rules: ancestors' locks, claim uniqueness,
/// version bump, history, audit.
pub(super) async fn write_team_config(
    conn: &mut Conn,
    scope: &OrgScope,
    team: &NodeId,
    patch: &Value,
    now: i64,
) -> Result<(), ProvisionError> {
    let org = scope.org();
    let chain = nodes::chain(conn, org, team).await?;
    let Some(current) = chain.last() else {
        return Err(ProvisionError::NotFound(format!("team {team}")));
    };
    let next = config::patched(&current.config, patch).map_err(TenancyError::from)?;
    if next == current.config {
        return Ok(());
    }
    let locks: Vec<(NodeId, Vec<String>)> = chain[..chain.len() - 1]
        .iter()
        .filter(|n| !n.locked_paths.is_empty())
        .map(|n| (n.node_id.clone(), n.locked_paths.clone()))
        .collect();
    config::check_locks(&locks, &current.config, &next)
        .map_err(|LockViolation { path, locked_by }| TenancyError::Locked { path, locked_by })?;
    let wanted = claims_of(&next).map_err(TenancyError::from)?;
    if wanted != claims_of(&current.config).unwrap_or_default() {
        if let Some((identifier, owner)) = claims::first_conflict(conn, org, team, &wanted).await? {
            return Err(TenancyError::ClaimConflict {
                identifier,
                team: owner,
            }
            .into());
        }
        claims::replace_team(conn, org, team, &wanted).await?;
    }
    if !nodes::set_config(conn, org, team, &next, current.version, now).await? {
        return Err(TenancyError::VersionMismatch {
            current: current.version + 1,
            expected: current.version.to_string(),
        }
        .into());
    }
    let version = current.version + 1;
    let diff = config::diff(&current.config, &next);
    let entry = history::HistoryRow {
        version,
        config: next,
        diff: diff.clone(),
        actor: scope.actor().to_owned(),
        at: now,
    };
    history::insert(conn, org, team, &entry).await?;
    let target = format!("{org}/{team}");
    audit::record(
        conn,
        Some(org),
        scope.actor(),
        "config.patch",
        &target,
        &json!({"version": version, "diff": diff}),
        now,
    )
    .await?;
    Ok(())
}

pub(super) async fn issue(
    conn: &mut Conn,
    scope: &OrgScope,
    team: &NodeId,
    name: &str,
    now: i64,
) -> Result<IssuedToken, StoreError> {
    let org: &OrgId = scope.org();
    let secret = token::generate(&TokenShape::Team {
        org: org.clone(),
        team: team.clone(),
    });
    let row = tokens::TokenRow {
        token_id: token::new_token_id(),
        token_hash: token::hash(&secret),
        org_id: org.clone(),
        team_id: Some(team.clone()),
        name: name.to_owned(),
        created_by: scope.actor().to_owned(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    };
    tokens::insert(conn, &row).await?;
    let detail = json!({"token_id": row.token_id, "team_id": row.team_id, "expires_at": null});
    audit::record(
        conn,
        Some(org),
        scope.actor(),
        "token.issue",
        &row.token_id,
        &detail,
        now,
    )
    .await?;
    Ok(IssuedToken {
        token: secret,
        view: TokenView::from(&row),
    })
}
