//! The `config_history` table: one row per config write (the full config after it, and the diff as a
//! merge patch), so any version can be shown or rolled back to.

use super::{Conn, StoreError, row};
use crate::domain::{NodeId, OrgId};
use serde_json::Value;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub version: i64,
    pub config: Value,
    pub diff: Value,
    pub actor: String,
    pub at: i64,
}

pub async fn insert(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    row: &HistoryRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO config_history (org_id, node_id, version, config, diff, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(org.as_str())
    .bind(node.as_str())
    .bind(row.version)
    .bind(row.config.to_string())
    .bind(row.diff.to_string())
    .bind(&row.actor)
    .bind(row.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops the versions of `node` older than the newest `keep`, `newest` being the version just
/// written.
pub async fn prune(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    newest: i64,
    keep: u32,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM config_history WHERE org_id = $1 AND node_id = $2 AND version <= $3")
        .bind(org.as_str())
        .bind(node.as_str())
        .bind(newest - i64::from(keep))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
) -> Result<Vec<HistoryRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, config, diff, actor, at FROM config_history WHERE org_id = $1 AND node_id = $2 ORDER BY version",
    )
    .bind(org.as_str())
    .bind(node.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                version: r.try_get("version")?,
                config: row::json(r, "config")?,
                diff: row::json(r, "diff")?,
                actor: r.try_get("actor")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}

pub async fn get(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    version: i64,
) -> Result<Option<Value>, StoreError> {
    let row = sqlx::query(
        "SELECT config FROM config_history WHERE org_id = $1 AND node_id = $2 AND version = $3",
    )
    .bind(org.as_str())
    .bind(node.as_str())
    .bind(version)
    .fetch_optional(conn)
    .await?;
    row.map(|r| row::json(&r, "config")).transpose()
}

pub async fn delete_nodes(
    conn: &mut Conn,
    org: &OrgId,
    nodes: &[NodeId],
) -> Result<(), StoreError> {
    for node in nodes {
        sqlx::query("DELETE FROM config_history WHERE org_id = $1 AND node_id = $2")
            .bind(org.as_str())
            .bind(node.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
