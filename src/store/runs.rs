//! The `runs` table: agent runs the router dispatched. `run_id` is the primary key and derives from
//! the event id, so recording a run is idempotent.

use super::{Conn, StoreError, marks};
use serde_json::Value;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub event_id: String,
    pub org_id: String,
    pub team_id: String,
    pub source: String,
    pub event_type: String,
    pub deployment_mode: String,
    pub subject: String,
    pub config_version: String,
    pub status: String,
    pub replay_of: Option<String>,
    pub document: Value,
    pub dispatched_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: usize = 15;

/// Records many runs in one statement each of up to 500 rows (existing ids are left alone). No
/// `RETURNING`: on SQLite every returned row is a thread hop, and the caller already knows which ids
/// existed (see [`states`]).
pub async fn record_many(conn: &mut Conn, rows: &[RunRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(500) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", marks(conn, r * COLUMNS + 1, COLUMNS).join(", ")))
            .collect();
        let sql = format!(
            "INSERT INTO runs (run_id, event_id, org_id, team_id, source, event_type, deployment_mode, subject, \
             config_version, status, replay_of, document, dispatched_at, created_at, updated_at) VALUES {} \
             ON CONFLICT (run_id) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.run_id.clone())
                .bind(r.event_id.clone())
                .bind(r.org_id.clone())
                .bind(r.team_id.clone())
                .bind(r.source.clone())
                .bind(r.event_type.clone())
                .bind(r.deployment_mode.clone())
                .bind(r.subject.clone())
                .bind(r.config_version.clone())
                .bind(r.status.clone())
                .bind(r.replay_of.clone())
                .bind(r.document.to_string())
                .bind(r.dispatched_at)
                .bind(r.created_at)
                .bind(r.created_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Of `ids`, those recorded already, each with whether its AGENT_RUNS message is confirmed.
pub async fn states(
    conn: &mut Conn,
    ids: &[String],
) -> Result<std::collections::HashMap<String, bool>, StoreError> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(1_000) {
        let list = marks(conn, 1, chunk.len()).join(", ");
        let sql = format!("SELECT run_id, dispatched_at FROM runs WHERE run_id IN ({list})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let dispatched: Option<i64> = row.try_get("dispatched_at")?;
            found.insert(row.try_get::<String, _>("run_id")?, dispatched.is_some());
        }
    }
    Ok(found)
}

/// Notes that these runs' AGENT_RUNS messages were stored (PubAck received).
pub async fn mark_dispatched(conn: &mut Conn, ids: &[String], now: i64) -> Result<(), StoreError> {
    for chunk in ids.chunks(1_000) {
        let head = marks(conn, 1, 2);
        let list = marks(conn, 3, chunk.len()).join(", ");
        let sql = format!(
            "UPDATE runs SET dispatched_at = {}, updated_at = {} WHERE dispatched_at IS NULL AND run_id IN ({list})",
            head[0], head[1]
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now);
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
