//! The bridge's batched lifecycle writes on SQLite: many guarded transitions in one call to
//! SQLite's thread, as set operations over a staged batch, or as statement pairs for the smallest
//! batches. Both apply exactly what [`super::transition`] applies one by one (tested in
//! `integration/store_run_batches.rs`).

use super::{Change, MOVABLE, bind_update, predecessors, update_text};
use crate::store::{Conn, StoreError, cached_sql, fetch_all_or_rollback};
use sqlx::Row;

/// The temporary table a SQLite batch of transitions is staged in (per connection, emptied by the
/// batch that fills it, so it only ever holds one batch).
const BATCH_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS ifox_transition_batch (\
    i INTEGER NOT NULL, round INTEGER NOT NULL, run_id TEXT NOT NULL, status TEXT NOT NULL, \
    at INTEGER NOT NULL, detail TEXT, deadline_at INTEGER, attempt INTEGER NOT NULL, \
    delivered_to TEXT, protocol TEXT, result_text TEXT, error TEXT)";

/// The staged transitions of round `r` whose run's status allows them (one run appears at most
/// once per round).
fn batch_movable(r: usize) -> String {
    format!(
        "FROM temp.ifox_transition_batch b WHERE b.round = {r} AND EXISTS \
         (SELECT 1 FROM runs WHERE runs.run_id = b.run_id AND runs.status IN ({MOVABLE}))"
    )
}

/// One round of a SQLite batch: which staged transitions apply (one row: `r`, their indexes), their
/// history rows, then the guarded `UPDATE … FROM` of the same set (the guard is the same as
/// [`update_text`]'s, evaluated in the same transaction).
fn batch_round(r: usize) -> String {
    let movable = batch_movable(r);
    format!(
        "SELECT {r}, group_concat(b.i) {movable}; \
         INSERT INTO run_transitions (run_id, status, at, detail) \
         SELECT b.run_id, b.status, b.at, b.detail {movable} ON CONFLICT (run_id, status) DO NOTHING; \
         UPDATE runs SET status = b.status, updated_at = b.at, \
         delivering_at = CASE WHEN runs.delivering_at IS NULL AND b.status = 'delivering' THEN b.at ELSE runs.delivering_at END, \
         running_at = CASE WHEN runs.running_at IS NULL AND b.status = 'running' THEN b.at ELSE runs.running_at END, \
         finished_at = CASE WHEN b.status IN ('completed', 'failed', 'timeout') THEN b.at ELSE runs.finished_at END, \
         deadline_at = COALESCE(runs.deadline_at, b.deadline_at), \
         attempts = runs.attempts + b.attempt, \
         delivered_to = COALESCE(b.delivered_to, runs.delivered_to), \
         protocol = COALESCE(b.protocol, runs.protocol), \
         result_text = COALESCE(b.result_text, runs.result_text), \
         error = COALESCE(b.error, runs.error) \
         FROM temp.ifox_transition_batch b \
         WHERE b.round = {r} AND runs.run_id = b.run_id AND runs.status IN ({MOVABLE}); "
    )
}

/// Many transitions on SQLite in one call, as set operations: the batch is staged in a temporary
/// table (one multi-row `INSERT`), then per round (a run's first transition of the batch in round
/// 0, its second in round 1, …, so a run's transitions keep their order) one `SELECT` of those that
/// apply, one `INSERT … SELECT` of their history rows and one guarded `UPDATE … FROM`; all in one
/// `BEGIN IMMEDIATE … COMMIT`. A handful of statements per batch whatever its size, instead of two
/// per transition: each statement's result crosses from SQLite's thread to the caller on its own
/// (a wake-up each), which cost more than the SQL. The list is padded to a power of two with no-op
/// rows (run id `""`), so a batch has one of a few shapes and stays prepared. Whether each
/// applied, in order. At most 64 transitions a call.
///
/// Up to [`EACH_UP_TO`] transitions (a quiet bridge's usual batch: one delivery's step) are
/// written one statement pair each instead ([`transition_pairs_sqlite`]): five results for one
/// transition against the set form's nine. The two forms leave the same records (tested).
pub async fn transition_batch_sqlite(
    conn: &mut Conn,
    changes: &[Change<'_>],
) -> Result<Vec<bool>, StoreError> {
    if let Some(c) = changes.iter().find(|c| predecessors(c.to).is_empty()) {
        return Err(StoreError::Corrupt(format!("unknown run status {}", c.to)));
    }
    if changes.len() <= EACH_UP_TO {
        return transition_pairs_sqlite(conn, changes).await;
    }
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    let rounds: Vec<usize> = changes
        .iter()
        .map(|c| {
            let n = seen.entry(c.run_id).or_default();
            *n += 1;
            *n - 1
        })
        .collect();
    let n_rounds = rounds.iter().max().map_or(1, |r| r + 1);
    let k = changes.len().max(1).next_power_of_two();
    let sql = cached_sql("run_lifecycle.batch.sqlite", (n_rounds << 16) | k, || {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let rows = vec![row; k].join(", ");
        let body: String = (0..n_rounds).map(batch_round).collect();
        format!(
            "{BATCH_TABLE}; BEGIN IMMEDIATE; INSERT INTO temp.ifox_transition_batch VALUES {rows}; \
             {body}DELETE FROM temp.ifox_transition_batch; COMMIT"
        )
    });
    let filler = filler();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let padded = changes
        .iter()
        .zip(rounds.iter().copied())
        .chain(std::iter::repeat_n((&filler, 0), k - changes.len()));
    for (i, (c, round)) in padded.enumerate() {
        q = q
            .bind(i as i64)
            .bind(round as i64)
            .bind(c.run_id.to_owned())
            .bind(c.to.to_owned())
            .bind(c.at)
            .bind(c.detail.map(str::to_owned))
            .bind(c.deadline_at)
            .bind(i64::from(c.attempt))
            .bind(c.delivered_to.map(str::to_owned))
            .bind(c.protocol.map(str::to_owned))
            .bind(c.result_text.map(str::to_owned))
            .bind(c.error.map(str::to_owned));
    }
    let mut applied = vec![false; changes.len()];
    for row in fetch_all_or_rollback(conn, q).await? {
        let Some(list) = row.try_get::<Option<String>, _>(1)? else {
            continue;
        };
        for i in list
            .split(',')
            .filter_map(|i| i.trim().parse::<usize>().ok())
        {
            if let Some(a) = applied.get_mut(i) {
                *a = true;
            }
        }
    }
    Ok(applied)
}

/// Batches up to this size are written as statement pairs, larger ones as set operations.
pub const EACH_UP_TO: usize = 2;

/// Transitions on SQLite in one call, per transition the guarded `UPDATE … RETURNING run_id` and
/// the history row inserted only when it changed a row (`changes()`), in one `BEGIN IMMEDIATE …
/// COMMIT`; padded to a power of two with no-op transitions. For [`EACH_UP_TO`] transitions at
/// most (their statuses checked by the caller).
async fn transition_pairs_sqlite(
    conn: &mut Conn,
    changes: &[Change<'_>],
) -> Result<Vec<bool>, StoreError> {
    let k = changes.len().max(1).next_power_of_two();
    let sql = cached_sql("run_lifecycle.pairs.sqlite", k, || {
        let marks = vec!["?".to_owned(); 15];
        let one = format!(
            "{} RETURNING run_id; INSERT INTO run_transitions (run_id, status, at, detail) \
             SELECT ?, ?, ?, ? WHERE changes() > 0 ON CONFLICT (run_id, status) DO NOTHING; ",
            update_text(&marks)
        );
        format!("BEGIN IMMEDIATE; {}COMMIT", one.repeat(k))
    });
    let filler = filler();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for c in changes
        .iter()
        .chain(std::iter::repeat_n(&filler, k - changes.len()))
    {
        q = bind_update(q, c)
            .bind(c.run_id.to_owned())
            .bind(c.to.to_owned())
            .bind(c.at)
            .bind(c.detail.map(str::to_owned));
    }
    let mut applied = std::collections::HashMap::<String, usize>::new();
    for row in fetch_all_or_rollback(conn, q).await? {
        *applied.entry(row.try_get::<String, _>(0)?).or_default() += 1;
    }
    // A run named twice applies at most as often as the UPDATE returned it; the earlier
    // transitions come first.
    Ok(changes
        .iter()
        .map(|c| match applied.get_mut(c.run_id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .collect())
}

/// The no-op transition a batch is padded with (no run has the id `""`).
fn filler() -> Change<'static> {
    Change {
        to: "failed",
        ..Change::default()
    }
}
