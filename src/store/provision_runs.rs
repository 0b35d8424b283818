//! The `provision_runs`, `provision_steps` and `provision_idempotency` tables (migration 0004):
//! provisioning runs, their steps, the API's idempotency keys, and runs whose nudge was lost.

use super::{Conn, StoreError, row};
use crate::domain::{NodeId, OrgId};
use serde::Serialize;
use sqlx::Row;

/// A provisioning run with its steps, as `GET …/runs/{id}` shows it. Plain columns only, so sqlx
/// maps the row by name.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunRow {
    pub run_id: String,
    pub org_id: String,
    pub team_id: String,
    pub kind: String,
    pub status: String,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StepRow {
    pub step: String,
    pub status: String,
    pub attempts: i64,
    pub detail: Option<String>,
    pub error: Option<String>,
    pub updated_at: i64,
}

const RUN_COLUMNS: &str =
    "run_id, org_id, team_id, kind, status, error, created_by, created_at, updated_at";

pub async fn insert(conn: &mut Conn, r: &RunRow) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO provision_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&r.run_id)
        .bind(&r.org_id)
        .bind(&r.team_id)
        .bind(&r.kind)
        .bind(&r.status)
        .bind(r.error.clone())
        .bind(&r.created_by)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, run_id: &str) -> Result<Option<RunRow>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM provision_runs WHERE run_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(run_id)
        .fetch_optional(conn)
        .await?)
}

pub async fn set_status(
    conn: &mut Conn,
    run_id: &str,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE provision_runs SET status = $1, error = $2, updated_at = $3 WHERE run_id = $4",
    )
    .bind(status)
    .bind(error.map(str::to_owned))
    .bind(now)
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn steps(conn: &mut Conn, run_id: &str) -> Result<Vec<StepRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT step, status, attempts, detail, error, updated_at FROM provision_steps WHERE run_id = $1 ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(conn)
    .await?)
}

/// Inserts the step or updates it in place (one row per step, however often it is retried);
/// `attempt` counts one more try.
#[allow(clippy::too_many_arguments)]
pub async fn put_step(
    conn: &mut Conn,
    run_id: &str,
    step: &str,
    position: i64,
    status: &str,
    attempt: bool,
    detail: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO provision_steps (run_id, step, position, status, attempts, detail, error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, \
         attempts = provision_steps.attempts + excluded.attempts, detail = COALESCE(excluded.detail, provision_steps.detail), \
         error = excluded.error, updated_at = excluded.updated_at",
    )
    .bind(run_id)
    .bind(step)
    .bind(position)
    .bind(status)
    .bind(i64::from(attempt))
    .bind(detail.map(str::to_owned))
    .bind(error.map(str::to_owned))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// `(request hash, run id)` of an idempotency key.
pub async fn idempotency(
    conn: &mut Conn,
    org: &OrgId,
    key: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT request_hash, run_id FROM provision_idempotency WHERE org_id = $1 AND idem_key = $2",
    )
    .bind(org.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get("request_hash")?, r.try_get("run_id")?)))
        .transpose()
}

pub async fn insert_idempotency(
    conn: &mut Conn,
    org: &OrgId,
    key: &str,
    hash: &str,
    run_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO provision_idempotency (org_id, idem_key, request_hash, run_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org.as_str())
    .bind(key)
    .bind(hash)
    .bind(run_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Teams whose current run is still `pending` although admitted before `before` (ms): their nudge
/// was lost. One query, however many teams there are.
pub async fn stale_pending(
    conn: &mut Conn,
    before: i64,
) -> Result<Vec<(OrgId, NodeId)>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.org_id, d.team_id FROM provision_deployments d JOIN provision_runs r ON r.run_id = d.run_id \
         WHERE r.status = 'pending' AND r.created_at < $1",
    )
    .bind(before)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row::org_team).collect()
}

/// The current run of every provisioned team (the one its `provision_deployments` row names), for
/// `ifox status`.
pub async fn current(conn: &mut Conn) -> Result<Vec<RunRow>, StoreError> {
    let columns = RUN_COLUMNS
        .split(", ")
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM provision_runs r JOIN provision_deployments d ON d.run_id = r.run_id \
         ORDER BY r.org_id, r.team_id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// Deletes every provisioning run of an org with its steps, and its idempotency keys (the org is
/// being deleted).
pub async fn delete_org(conn: &mut Conn, org: &OrgId) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM provision_steps WHERE run_id IN (SELECT run_id FROM provision_runs WHERE org_id = $1)",
    )
    .bind(org.as_str())
    .execute(&mut *conn)
    .await?;
    for sql in [
        "DELETE FROM provision_runs WHERE org_id = $1",
        "DELETE FROM provision_idempotency WHERE org_id = $1",
    ] {
        sqlx::query(sql)
            .bind(org.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
