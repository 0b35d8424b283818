//! The `provision_deployments` and `provision_deletions` tables (migration 0004): the desired runtime
//! of each provisioned team, and the pending deletion of a team's objects after the grace period.
//! Rows only; what they mean for the cluster is `provision`'s business.

use super::row;
use super::{Conn, StoreError};
use crate::domain::runtime::{DedicatedSpec, Mode, Pipeline};
use crate::domain::{NodeId, OrgId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The desired runtime of one team.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    pub org: OrgId,
    pub team: NodeId,
    pub mode: Mode,
    pub spec: Option<DedicatedSpec>,
    pub pipeline: Option<Pipeline>,
    pub runtime_token: Option<String>,
    pub run_id: String,
    pub generation: i64,
    pub url_set: bool,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "org_id, team_id, mode, spec, pipeline, runtime_token, run_id, generation, url_set, updated_at";

fn from_row(r: &AnyRow) -> Result<DeploymentRow, StoreError> {
    let (org, team) = row::org_team(r)?;
    let mode: String = r.try_get("mode")?;
    Ok(DeploymentRow {
        org,
        team,
        mode: if mode == "dedicated" {
            Mode::Dedicated
        } else {
            Mode::Shared
        },
        spec: row::json(r, "spec")?,
        pipeline: row::opt_json::<Option<Pipeline>>(r, "pipeline")?.flatten(),
        runtime_token: r.try_get("runtime_token")?,
        run_id: r.try_get("run_id")?,
        generation: r.try_get("generation")?,
        url_set: r.try_get::<i64, _>("url_set")? != 0,
        updated_at: r.try_get("updated_at")?,
    })
}

/// `SELECT` of every column, then `tail` (a `WHERE`/`ORDER BY`).
async fn select(
    conn: &mut Conn,
    tail: &str,
    binds: &[&str],
) -> Result<Vec<DeploymentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM provision_deployments {tail}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.fetch_all(conn).await?.iter().map(from_row).collect()
}

pub async fn get(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
) -> Result<Option<DeploymentRow>, StoreError> {
    let where_ = "WHERE org_id = $1 AND team_id = $2";
    Ok(select(conn, where_, &[org.as_str(), team.as_str()])
        .await?
        .pop())
}

pub async fn list(conn: &mut Conn) -> Result<Vec<DeploymentRow>, StoreError> {
    select(conn, "ORDER BY org_id, team_id", &[]).await
}

pub async fn list_org(conn: &mut Conn, org: &OrgId) -> Result<Vec<DeploymentRow>, StoreError> {
    select(conn, "WHERE org_id = $1 ORDER BY team_id", &[org.as_str()]).await
}

pub async fn upsert(conn: &mut Conn, d: &DeploymentRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO provision_deployments (org_id, team_id, mode, spec, pipeline, runtime_token, run_id, generation, url_set, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (org_id, team_id) DO UPDATE SET mode = excluded.mode, spec = excluded.spec, \
         pipeline = excluded.pipeline, runtime_token = excluded.runtime_token, run_id = excluded.run_id, \
         generation = excluded.generation, url_set = excluded.url_set, updated_at = excluded.updated_at",
    )
    .bind(d.org.as_str())
    .bind(d.team.as_str())
    .bind(d.mode.as_str())
    .bind(row::json_text("spec", &d.spec)?)
    .bind(
        d.pipeline
            .as_ref()
            .map(|p| row::json_text("pipeline", p))
            .transpose()?,
    )
    .bind(d.runtime_token.clone())
    .bind(&d.run_id)
    .bind(d.generation)
    .bind(i64::from(d.url_set))
    .bind(d.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the team's URL points at its service (or no longer does), for that generation only.
pub async fn set_url_set(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
    generation: i64,
    url_set: bool,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE provision_deployments SET url_set = $1 WHERE org_id = $2 AND team_id = $3 AND generation = $4",
    )
    .bind(i64::from(url_set))
    .bind(org.as_str())
    .bind(team.as_str())
    .bind(generation)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Schedules the deletion of a team's objects (keeps an earlier deadline already scheduled).
pub async fn schedule_deletion(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
    run_id: &str,
    delete_after: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO provision_deletions (org_id, team_id, run_id, delete_after) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, team_id) DO NOTHING",
    )
    .bind(org.as_str())
    .bind(team.as_str())
    .bind(run_id)
    .bind(delete_after)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn cancel_deletion(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM provision_deletions WHERE org_id = $1 AND team_id = $2")
        .bind(org.as_str())
        .bind(team.as_str())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// `(org, team, run id, deadline)` of every scheduled deletion, soonest first.
pub async fn deletions(conn: &mut Conn) -> Result<Vec<(OrgId, NodeId, String, i64)>, StoreError> {
    let rows = sqlx::query("SELECT org_id, team_id, run_id, delete_after FROM provision_deletions ORDER BY delete_after")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            let (org, team) = row::org_team(r)?;
            Ok((org, team, r.try_get("run_id")?, r.try_get("delete_after")?))
        })
        .collect()
}

/// Deletes the desired runtimes of an org (the org is being deleted; the runtime tokens they hold go
/// with them). Its pending deletions stay: they are what removes its Kubernetes objects after the
/// grace. They no longer name a provisioning run to report to (`resync`, as for orphans), since the
/// org's runs are deleted too; the resync schedules the objects of its other dedicated teams.
pub async fn delete_org(conn: &mut Conn, org: &OrgId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM provision_deployments WHERE org_id = $1")
        .bind(org.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE provision_deletions SET run_id = 'resync' WHERE org_id = $1")
        .bind(org.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
