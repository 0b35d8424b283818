//! The run lifecycle on the `runs` table (migration 0006): status transitions with their
//! timestamps, the `run_transitions` history, the sweeper's query and the runs API's reads.
//!
//! A transition is one guarded `UPDATE` (the status only moves forward: `queued → delivering →
//! running → completed | failed | timeout`, except that a redelivery after a crash takes a `running`
//! run back to `delivering`; a finished run never changes again), so two bridges, a
//! late agent report and the sweeper cannot overwrite each other's outcome: whoever moves the run
//! first wins, the others see `false`.
//!
//! Statements built with `format!` (`AssertSqlSafe`) only splice constant column lists, status
//! names and placeholder numbers; every value is bound.

mod batch;

pub use batch::{EACH_UP_TO, transition_batch_sqlite};

use super::{AnyQuery, Conn, StoreError};
use crate::domain::OrgId;

/// The statuses a run can be in, in lifecycle order.
pub const STATUSES: [&str; 6] = [
    "queued",
    "delivering",
    "running",
    "completed",
    "failed",
    "timeout",
];

/// Statuses no transition leaves.
pub fn is_final(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "timeout")
}

/// The statuses a run may be in to move to `to`.
fn predecessors(to: &str) -> &'static [&'static str] {
    match to {
        // `running` too: an `investigate` answer cut by a bridge crash is delivered again.
        "delivering" => &["queued", "delivering", "running"],
        "running" => &["queued", "delivering", "running"],
        "completed" | "failed" | "timeout" => &["queued", "delivering", "running"],
        _ => &[],
    }
}

/// One transition and what it records beside the status.
#[derive(Debug, Clone, Default)]
pub struct Change<'a> {
    pub run_id: &'a str,
    pub to: &'a str,
    pub at: i64,
    pub detail: Option<&'a str>,
    /// Set once (the first delivery's deadline stays).
    pub deadline_at: Option<i64>,
    /// Counts a delivery attempt.
    pub attempt: bool,
    pub delivered_to: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub result_text: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// A [`Change`] that owns its text, to be handed to a writer task.
#[derive(Debug, Clone, Default)]
pub struct OwnedChange {
    pub run_id: String,
    pub to: &'static str,
    pub at: i64,
    pub detail: Option<String>,
    pub deadline_at: Option<i64>,
    pub attempt: bool,
    pub delivered_to: Option<String>,
    pub protocol: Option<String>,
    pub result_text: Option<String>,
    pub error: Option<String>,
}

impl OwnedChange {
    pub fn as_change(&self) -> Change<'_> {
        Change {
            run_id: &self.run_id,
            to: self.to,
            at: self.at,
            detail: self.detail.as_deref(),
            deadline_at: self.deadline_at,
            attempt: self.attempt,
            delivered_to: self.delivered_to.as_deref(),
            protocol: self.protocol.as_deref(),
            result_text: self.result_text.as_deref(),
            error: self.error.as_deref(),
        }
    }
}

/// Every status a transition may leave: the same for every target (see [`predecessors`]).
const MOVABLE: &str = "'queued', 'delivering', 'running'";

/// The guarded `UPDATE` of a transition, with placeholders `marks` (15 of them).
fn update_text(m: &[String]) -> String {
    format!(
        "UPDATE runs SET status = {}, updated_at = {}, \
         delivering_at = CASE WHEN delivering_at IS NULL AND {} THEN {} ELSE delivering_at END, \
         running_at = CASE WHEN running_at IS NULL AND {} THEN {} ELSE running_at END, \
         finished_at = CASE WHEN {} THEN {} ELSE finished_at END, \
         deadline_at = COALESCE(deadline_at, {}), \
         attempts = attempts + {}, \
         delivered_to = COALESCE({}, delivered_to), \
         protocol = COALESCE({}, protocol), \
         result_text = COALESCE({}, result_text), \
         error = COALESCE({}, error) \
         WHERE run_id = {} AND status IN ({MOVABLE})",
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        m[6],
        m[7],
        m[8],
        m[9],
        m[10],
        m[11],
        m[12],
        m[13],
        m[14]
    )
}

/// The 15 values of [`update_text`], in order.
fn bind_update<'q>(q: AnyQuery<'q>, c: &Change<'_>) -> AnyQuery<'q> {
    q.bind(c.to.to_owned())
        .bind(c.at)
        .bind(c.to == "delivering")
        .bind(c.at)
        .bind(c.to == "running")
        .bind(c.at)
        .bind(is_final(c.to))
        .bind(c.at)
        .bind(c.deadline_at)
        .bind(i64::from(c.attempt))
        .bind(c.delivered_to.map(str::to_owned))
        .bind(c.protocol.map(str::to_owned))
        .bind(c.result_text.map(str::to_owned))
        .bind(c.error.map(str::to_owned))
        .bind(c.run_id.to_owned())
}

/// Applies `c` when the run's status allows it; `false` when it does not (or no such run).
pub async fn transition(conn: &mut Conn, c: &Change<'_>) -> Result<bool, StoreError> {
    if predecessors(c.to).is_empty() {
        return Err(StoreError::Corrupt(format!("unknown run status {}", c.to)));
    }
    let sql = super::cached_sql("run_lifecycle.update", 1, || {
        update_text(&super::marks(conn, 1, 15))
    });
    let updated = bind_update(sqlx::query(sqlx::AssertSqlSafe(sql)), c)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO run_transitions (run_id, status, at, detail) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (run_id, status) DO NOTHING",
    )
    .bind(c.run_id)
    .bind(c.to)
    .bind(c.at)
    .bind(c.detail)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// A run as the API and the bridge read it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct RunRecord {
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
    pub matched: String,
    pub created_at: i64,
    pub dispatched_at: Option<i64>,
    pub delivering_at: Option<i64>,
    pub running_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub attempts: i64,
    pub delivered_to: Option<String>,
    pub protocol: Option<String>,
    pub result_text: Option<String>,
    pub error: Option<String>,
    /// The AGENT_RUNS sequence of the message the record was made from (see migration 0008).
    #[serde(skip)]
    pub agent_runs_seq: Option<i64>,
}

pub const COLUMNS: &str = "run_id, event_id, org_id, team_id, source, event_type, deployment_mode, subject, \
    config_version, status, replay_of, matched, created_at, dispatched_at, delivering_at, running_at, \
    finished_at, deadline_at, attempts, delivered_to, protocol, result_text, error, agent_runs_seq";

pub async fn get(conn: &mut Conn, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM runs WHERE run_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(run_id)
        .fetch_optional(conn)
        .await?)
}

/// The runs of an org's event (a forced replay makes more than one).
pub async fn by_event(
    conn: &mut Conn,
    org: &str,
    event_id: &str,
) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM runs WHERE org_id = $1 AND event_id = $2 ORDER BY created_at, run_id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(org)
        .bind(event_id)
        .fetch_all(conn)
        .await?)
}

/// A transition as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TransitionRow {
    pub status: String,
    pub at: i64,
    pub detail: Option<String>,
}

pub async fn transitions(conn: &mut Conn, run_id: &str) -> Result<Vec<TransitionRow>, StoreError> {
    let mut rows: Vec<TransitionRow> =
        sqlx::query_as("SELECT status, at, detail FROM run_transitions WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(conn)
            .await?;
    // By time, then in lifecycle order: two transitions within one millisecond keep their order.
    let rank = |s: &str| {
        STATUSES
            .iter()
            .position(|x| *x == s)
            .unwrap_or(STATUSES.len())
    };
    rows.sort_by_key(|t| (t.at, rank(&t.status)));
    Ok(rows)
}

/// What a listing selects; `before` is the cursor (the `(created_at, run_id)` of the last row of
/// the previous page; rows come newest first).
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub org: &'a str,
    pub team: Option<&'a str>,
    pub status: Option<&'a str>,
    pub source: Option<&'a str>,
    pub since: Option<i64>,
    pub before: Option<(i64, &'a str)>,
    pub limit: i64,
}

pub async fn list(conn: &mut Conn, f: &Filter<'_>) -> Result<Vec<RunRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM runs WHERE org_id = $1");
    let mut n = 1;
    let mut next = |clause: &str, sql: &mut String| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    if f.team.is_some() {
        next(" AND team_id = ?", &mut sql);
    }
    if f.status.is_some() {
        next(" AND status = ?", &mut sql);
    }
    if f.source.is_some() {
        next(" AND source = ?", &mut sql);
    }
    if f.since.is_some() {
        next(" AND created_at >= ?", &mut sql);
    }
    if f.before.is_some() {
        next(" AND (created_at < ?", &mut sql);
        next(" OR (created_at = ?", &mut sql);
        next(" AND run_id < ?))", &mut sql);
    }
    next(" ORDER BY created_at DESC, run_id DESC LIMIT ?", &mut sql);
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(f.org);
    for v in [f.team, f.status, f.source].into_iter().flatten() {
        q = q.bind(v);
    }
    if let Some(since) = f.since {
        q = q.bind(since);
    }
    if let Some((at, id)) = f.before {
        q = q.bind(at).bind(at).bind(id);
    }
    Ok(q.bind(f.limit).fetch_all(conn).await?)
}

/// Runs not finished whose deadline passed (the sweeper's work), oldest deadline first.
pub async fn overdue(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM runs WHERE status IN ('delivering', 'running') \
         AND deadline_at IS NOT NULL AND deadline_at < $1 ORDER BY deadline_at LIMIT $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Deletes every run of an org with its transitions (the org is being deleted).
pub async fn delete_org(conn: &mut Conn, org: &OrgId) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM run_transitions WHERE run_id IN (SELECT run_id FROM runs WHERE org_id = $1)",
    )
    .bind(org.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM runs WHERE org_id = $1")
        .bind(org.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
