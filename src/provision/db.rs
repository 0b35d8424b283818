//! The provisioning tables of migration 0004: desired deployments and pending deletions here; runs,
//! steps and idempotency keys in [`super::db_runs`] (re-exported, so callers say `db::…`). Plain
//! functions over a connection (the caller decides the transaction), in the common SQL dialect of
//! SQLite and PostgreSQL; no policy here.

use super::request::{DedicatedSpec, Mode, Pipeline};
use crate::domain::{NodeId, OrgId};
use crate::store::{Conn, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

pub use super::db_runs::*;

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("provisioning row: {e}"))
}

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

const DEPLOYMENT_COLS: &str =
    "org_id, team_id, mode, spec, pipeline, runtime_token, run_id, generation, url_set, updated_at";

fn deployment(r: &AnyRow) -> Result<DeploymentRow, StoreError> {
    let mode: String = r.try_get("mode")?;
    let spec: String = r.try_get("spec")?;
    let pipeline: Option<String> = r.try_get("pipeline")?;
    Ok(DeploymentRow {
        org: OrgId::parse(r.try_get::<String, _>("org_id")?).map_err(corrupt)?,
        team: NodeId::parse(r.try_get::<String, _>("team_id")?).map_err(corrupt)?,
        mode: if mode == "dedicated" {
            Mode::Dedicated
        } else {
            Mode::Shared
        },
        spec: serde_json::from_str(&spec).map_err(corrupt)?,
        pipeline: pipeline
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(corrupt)?
            .flatten(),
        runtime_token: r.try_get("runtime_token")?,
        run_id: r.try_get("run_id")?,
        generation: r.try_get("generation")?,
        url_set: r.try_get::<i64, _>("url_set")? != 0,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn get_deployment(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
) -> Result<Option<DeploymentRow>, StoreError> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLS} FROM provision_deployments WHERE org_id = $1 AND team_id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.as_str())
        .bind(team.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(deployment).transpose()
}

pub async fn list_deployments(conn: &mut Conn) -> Result<Vec<DeploymentRow>, StoreError> {
    let sql =
        format!("SELECT {DEPLOYMENT_COLS} FROM provision_deployments ORDER BY org_id, team_id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter().map(deployment).collect()
}

pub async fn list_org_deployments(
    conn: &mut Conn,
    org: &OrgId,
) -> Result<Vec<DeploymentRow>, StoreError> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLS} FROM provision_deployments WHERE org_id = $1 ORDER BY team_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.as_str())
        .fetch_all(conn)
        .await?;
    rows.iter().map(deployment).collect()
}

pub async fn upsert_deployment(conn: &mut Conn, d: &DeploymentRow) -> Result<(), StoreError> {
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
    .bind(serde_json::to_string(&d.spec).map_err(corrupt)?)
    .bind(d.pipeline.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default()))
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

/// `(org, team, run id, deadline)` of every scheduled deletion.
pub async fn deletions(conn: &mut Conn) -> Result<Vec<(OrgId, NodeId, String, i64)>, StoreError> {
    let rows = sqlx::query("SELECT org_id, team_id, run_id, delete_after FROM provision_deletions ORDER BY delete_after")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                OrgId::parse(r.try_get::<String, _>("org_id")?).map_err(corrupt)?,
                NodeId::parse(r.try_get::<String, _>("team_id")?).map_err(corrupt)?,
                r.try_get("run_id")?,
                r.try_get("delete_after")?,
            ))
        })
        .collect()
}

/// Shared-runtime runs per team of an org since `since` (ms), from the router's `runs` table
/// (migration 0003). When that table does not exist (yet), every team counts 0 runs.
pub async fn shared_runs_per_team(
    conn: &mut Conn,
    org: &OrgId,
    since: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT team_id, COUNT(*) AS n FROM runs WHERE org_id = $1 AND deployment_mode = 'shared' \
         AND created_at >= $2 GROUP BY team_id",
    )
    .bind(org.as_str())
    .bind(since)
    .fetch_all(conn)
    .await;
    match rows {
        Ok(rows) => rows
            .iter()
            .map(|r| Ok((r.try_get("team_id")?, r.try_get("n")?)))
            .collect(),
        Err(sqlx::Error::Database(e)) if e.message().contains("runs") => Ok(vec![]),
        Err(e) => Err(e.into()),
    }
}

/// Shared-runtime runs of every org since `since` (0 when the `runs` table does not exist yet).
pub async fn shared_runs_total(conn: &mut Conn, since: i64) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM runs WHERE deployment_mode = 'shared' AND created_at >= $1",
    )
    .bind(since)
    .fetch_one(conn)
    .await;
    match row {
        Ok(r) => Ok(r.try_get("n")?),
        Err(sqlx::Error::Database(e)) if e.message().contains("runs") => Ok(0),
        Err(e) => Err(e.into()),
    }
}
