//! The `runs` table: agent runs, recorded by the bridge from AGENT_RUNS (the projection of the log of
//! runs; the router only publishes). `run_id` is the primary key and derives from the event id, so
//! recording a run is idempotent.

use super::run_lifecycle::RunRecord;
use super::{AnyQuery, Conn, StoreError, marks};
use crate::domain::OrgId;
use sqlx::{FromRow, Row};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// The routing claim that chose the team, `<kind>=<value>`.
    pub matched: String,
    /// When its AGENT_RUNS message was stored (ms).
    pub dispatched_at: Option<i64>,
    pub created_at: i64,
    /// The AGENT_RUNS sequence of the message the record was made from (migration 0008).
    pub agent_runs_seq: Option<i64>,
}

const COLUMNS: usize = 16;

impl From<&RunRow> for RunRecord {
    /// The record `row` makes when it is inserted.
    fn from(r: &RunRow) -> RunRecord {
        RunRecord {
            run_id: r.run_id.clone(),
            event_id: r.event_id.clone(),
            org_id: r.org_id.clone(),
            team_id: r.team_id.clone(),
            source: r.source.clone(),
            event_type: r.event_type.clone(),
            deployment_mode: r.deployment_mode.clone(),
            subject: r.subject.clone(),
            config_version: r.config_version.clone(),
            status: r.status.clone(),
            replay_of: r.replay_of.clone(),
            matched: r.matched.clone(),
            created_at: r.created_at,
            dispatched_at: r.dispatched_at,
            delivering_at: None,
            running_at: None,
            finished_at: None,
            deadline_at: None,
            attempts: 0,
            delivered_to: None,
            protocol: None,
            result_text: None,
            error: None,
            agent_runs_seq: r.agent_runs_seq,
        }
    }
}
/// Rows per statement at most (PostgreSQL allows 65,535 parameters: 2,048 × 15 fits).
pub const CHUNK: usize = 512;

/// The statements below take a list whose length is padded to a power of two by repeating its last
/// element (a repeated row or id changes nothing: `ON CONFLICT DO NOTHING`, `IN`), so a batch
/// statement has one of ten shapes. They stay in each connection's prepared-statement cache, and
/// their text is built once per process: preparing a fresh 400-parameter statement per batch cost
/// the router an eighth of its SQL time.
fn padded(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Insert,
    States,
}

/// The text of statement `kind` for `n` (a power of two) list elements.
fn statement(conn: &Conn, kind: Kind, n: usize) -> Arc<str> {
    let sqlite = conn.backend_name().eq_ignore_ascii_case("sqlite");
    let name = match (kind, sqlite) {
        (Kind::Insert, true) => "runs.insert.sqlite",
        (Kind::Insert, false) => "runs.insert",
        (Kind::States, true) => "runs.states.sqlite",
        (Kind::States, false) => "runs.states",
    };
    super::cached_sql(name, n, || statement_text(conn, kind, n))
}

fn statement_text(conn: &Conn, kind: Kind, n: usize) -> String {
    match kind {
        Kind::Insert => {
            let values: Vec<String> = (0..n)
                .map(|r| format!("({})", marks(conn, r * COLUMNS + 1, COLUMNS).join(", ")))
                .collect();
            format!(
                "INSERT INTO runs (run_id, event_id, org_id, team_id, source, event_type, deployment_mode, \
                 subject, config_version, status, replay_of, matched, dispatched_at, created_at, agent_runs_seq, \
                 updated_at) \
                 VALUES {} ON CONFLICT (run_id) DO NOTHING",
                values.join(", ")
            )
        }
        Kind::States => format!(
            "SELECT {} FROM runs WHERE run_id IN ({})",
            super::run_lifecycle::COLUMNS,
            marks(conn, 1, n).join(", ")
        ),
    }
}

/// The chunks of `items`, each with its padded length and its elements, the last one repeated.
fn padded_chunks<T>(items: &[T]) -> impl Iterator<Item = (usize, impl Iterator<Item = &T>)> {
    items.chunks(CHUNK).map(|chunk| {
        let n = padded(chunk.len());
        let last = &chunk[chunk.len() - 1];
        (
            n,
            chunk
                .iter()
                .chain(std::iter::repeat_n(last, n - chunk.len())),
        )
    })
}

/// Records many runs (existing ids are left alone). No `RETURNING`: on SQLite every returned row is a
/// thread hop, and the caller already knows which ids existed (see [`states`]).
pub async fn record_many(conn: &mut Conn, rows: &[RunRow]) -> Result<(), StoreError> {
    for (n, chunk) in padded_chunks(rows) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(statement(conn, Kind::Insert, n)));
        for r in chunk {
            q = bind_row(q, r);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Of `ids`, the records that exist already.
pub async fn states(
    conn: &mut Conn,
    ids: &[String],
) -> Result<HashMap<String, RunRecord>, StoreError> {
    let mut found = HashMap::new();
    for (n, chunk) in padded_chunks(ids) {
        let mut q =
            sqlx::query_as::<_, RunRecord>(sqlx::AssertSqlSafe(statement(conn, Kind::States, n)));
        for id in chunk {
            q = q.bind(id.clone());
        }
        for record in q.fetch_all(&mut *conn).await? {
            found.insert(record.run_id.clone(), record);
        }
    }
    Ok(found)
}

/// One batch of the run recorder on SQLite, in one call: `BEGIN IMMEDIATE`, which of `rows` exist,
/// insert the rest, `COMMIT` — one hand-off to the connection's thread instead of four. The list is
/// padded to a power of two `k`, so the call has one of ten shapes and stays prepared. On an error
/// the transaction is rolled back. At most [`CHUNK`] rows.
pub async fn record_batch_sqlite(
    conn: &mut Conn,
    rows: &[RunRow],
) -> Result<HashMap<String, RunRecord>, StoreError> {
    debug_assert!(rows.len() <= CHUNK);
    let Some(last) = rows.last() else {
        return Ok(HashMap::new());
    };
    let k = padded(rows.len());
    let sql = batch_statement(conn, k);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let padded_rows = || rows.iter().chain(std::iter::repeat_n(last, k - rows.len()));
    for r in padded_rows() {
        q = q.bind(r.run_id.clone());
    }
    for r in padded_rows() {
        q = bind_row(q, r);
    }
    let mut earlier = HashMap::new();
    for row in super::fetch_all_or_rollback(conn, q).await? {
        let record = RunRecord::from_row(&row)?;
        earlier.insert(record.run_id.clone(), record);
    }
    Ok(earlier)
}

/// The text of [`record_batch_sqlite`]'s statement.
fn batch_statement(conn: &Conn, k: usize) -> Arc<str> {
    super::cached_sql("runs.batch.sqlite", k, || {
        format!(
            "BEGIN IMMEDIATE; {}; {}; COMMIT",
            statement_text(conn, Kind::States, k),
            statement_text(conn, Kind::Insert, k)
        )
    })
}

fn bind_row<'q>(q: AnyQuery<'q>, r: &RunRow) -> AnyQuery<'q> {
    q.bind(r.run_id.clone())
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
        .bind(r.matched.clone())
        .bind(r.dispatched_at)
        .bind(r.created_at)
        .bind(r.agent_runs_seq)
        .bind(r.created_at)
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

#[cfg(test)]
mod tests {
    use super::{padded, padded_chunks};

    #[test]
    fn lists_are_padded_to_a_power_of_two_with_their_last_element() {
        assert_eq!(
            (padded(0), padded(1), padded(3), padded(512)),
            (1, 1, 4, 512)
        );
        let items: Vec<u32> = (1..=5).collect();
        let chunks: Vec<(usize, Vec<u32>)> = padded_chunks(&items)
            .map(|(n, c)| (n, c.copied().collect()))
            .collect();
        assert_eq!(chunks, vec![(8, vec![1, 2, 3, 4, 5, 5, 5, 5])]);
        let many: Vec<u32> = (0..600).collect();
        let sizes: Vec<(usize, usize)> =
            padded_chunks(&many).map(|(n, c)| (n, c.count())).collect();
        assert_eq!(sizes, vec![(512, 512), (128, 128)]);
    }
}
