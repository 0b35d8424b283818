//! The `routing_claims` table: `(org, kind, value)` is the primary key, so two teams of one org can
//! never own the same identifier, whatever the application does; a partial unique index on
//! `(kind, value)` does the same across orgs for tenant-level kinds (workspace, GitHub owner).

use super::{Conn, StoreError, row};
use crate::domain::routing::{Claim, Identifier, IdentifierKind};
use crate::domain::{NodeId, OrgId};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeSet;

fn from_row(r: &AnyRow) -> Result<Claim, StoreError> {
    let (org_id, team_id) = row::org_team(r)?;
    let kind: String = r.try_get("kind")?;
    Ok(Claim {
        org_id,
        team_id,
        kind: IdentifierKind::from_key(&kind).ok_or_else(|| row::corrupt("kind", &kind))?,
        value: r.try_get("value")?,
    })
}

pub async fn list_all(conn: &mut Conn) -> Result<Vec<Claim>, StoreError> {
    let rows = sqlx::query("SELECT org_id, kind, value, team_id FROM routing_claims")
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn list_org(conn: &mut Conn, org: &OrgId) -> Result<Vec<Claim>, StoreError> {
    let rows = sqlx::query(
        "SELECT org_id, kind, value, team_id FROM routing_claims WHERE org_id = $1 ORDER BY team_id, kind, value",
    )
    .bind(org.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn list_team(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
) -> Result<Vec<Claim>, StoreError> {
    let rows = sqlx::query(
        "SELECT org_id, kind, value, team_id FROM routing_claims WHERE org_id = $1 AND team_id = $2 ORDER BY kind, value",
    )
    .bind(org.as_str())
    .bind(team.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The first identifier of `wanted` that another team of the org already owns, with that team.
pub async fn first_conflict(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
    wanted: &BTreeSet<Identifier>,
) -> Result<Option<(Identifier, NodeId)>, StoreError> {
    for id in wanted {
        let found = sqlx::query(
            "SELECT team_id FROM routing_claims WHERE org_id = $1 AND kind = $2 AND value = $3 AND team_id <> $4",
        )
        .bind(org.as_str())
        .bind(id.kind.key())
        .bind(&id.value)
        .bind(team.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(found) = found {
            return Ok(Some((id.clone(), row::node(&found, "team_id")?)));
        }
    }
    Ok(None)
}

/// The first identifier of `wanted` that another org owns at the tenant level: the same tenant-level
/// claim (unique across all orgs), or the tenant namespace a team-level identifier lies in (the GitHub
/// owner of a repo). Returns the identifier and the owning org.
pub async fn first_foreign(
    conn: &mut Conn,
    org: &OrgId,
    wanted: &BTreeSet<Identifier>,
) -> Result<Option<(Identifier, OrgId)>, StoreError> {
    for id in wanted {
        let tenant = if id.kind.is_tenant_level() {
            id.clone()
        } else {
            match id.namespace() {
                Some(ns) => ns,
                None => continue,
            }
        };
        let found = sqlx::query(
            "SELECT org_id FROM routing_claims WHERE kind = $1 AND value = $2 AND org_id <> $3 ORDER BY org_id LIMIT 1",
        )
        .bind(tenant.kind.key())
        .bind(&tenant.value)
        .bind(org.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(found) = found {
            return Ok(Some((id.clone(), row::org(&found, "org_id")?)));
        }
    }
    Ok(None)
}

/// Another org that routes team-level identifiers inside the namespace of `tenant` (a repo of GitHub
/// owner `tenant`), if any.
pub async fn foreign_inside(
    conn: &mut Conn,
    org: &OrgId,
    tenant: &Identifier,
) -> Result<Option<OrgId>, StoreError> {
    let Some((kind, prefix)) = tenant.inner_prefix() else {
        return Ok(None);
    };
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let found = sqlx::query(
        "SELECT org_id FROM routing_claims WHERE kind = $1 AND value LIKE $2 ESCAPE '\\' AND org_id <> $3 ORDER BY org_id LIMIT 1",
    )
    .bind(kind.key())
    .bind(pattern)
    .bind(org.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    found.map(|r| row::org(&r, "org_id")).transpose()
}

/// Replaces a team's claims. A unique violation here means a concurrent writer claimed one first.
pub async fn replace_team(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
    claims: &BTreeSet<Identifier>,
) -> Result<(), StoreError> {
    delete_teams(conn, org, std::slice::from_ref(team)).await?;
    for id in claims {
        sqlx::query(
            "INSERT INTO routing_claims (org_id, kind, value, team_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(org.as_str())
        .bind(id.kind.key())
        .bind(&id.value)
        .bind(team.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn delete_teams(
    conn: &mut Conn,
    org: &OrgId,
    teams: &[NodeId],
) -> Result<(), StoreError> {
    for team in teams {
        sqlx::query("DELETE FROM routing_claims WHERE org_id = $1 AND team_id = $2")
            .bind(org.as_str())
            .bind(team.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn count_team(conn: &mut Conn, org: &OrgId, team: &NodeId) -> Result<i64, StoreError> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM routing_claims WHERE org_id = $1 AND team_id = $2")
            .bind(org.as_str())
            .bind(team.as_str())
            .fetch_one(conn)
            .await?;
    Ok(row.try_get("n")?)
}
