//! The bridge's batched lifecycle writes on SQLite (`run_lifecycle::transition_batch_sqlite`, set
//! operations over a staged batch) against the one-by-one guarded transition
//! (`run_lifecycle::transition`, the API's and PostgreSQL's path): the same transitions, in the same
//! order, leave the same records, the same history and the same "applied" answers — a run named
//! twice in a batch, a finished run, an unknown run and padding included — in both of the batch's
//! forms (set operations over a staged batch; statement pairs for batches of two at most).

use crate::support::{DbKind, TestDb};
use ifox::store::run_lifecycle::{self, Change, RunRecord, TransitionRow};
use ifox::store::{Store, runs};

async fn store() -> (Store, TestDb) {
    let db = TestDb::new(DbKind::Sqlite).await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

fn row(run: &str) -> runs::RunRow {
    runs::RunRow {
        run_id: run.to_owned(),
        event_id: format!("github:{run}"),
        org_id: "acme".into(),
        team_id: "payments".into(),
        source: "github".into(),
        event_type: "issues".into(),
        deployment_mode: "shared".into(),
        subject: "ifox.agent.shared.acme.payments".into(),
        config_version: "v1".into(),
        status: "queued".into(),
        replay_of: None,
        matched: "github_repos=acme/payments".into(),
        dispatched_at: Some(1_000),
        created_at: 1_000,
        agent_runs_seq: Some(1),
    }
}

/// Transition `to` of `run_id` at `at`, nothing else recorded beside it.
fn step(run_id: &'static str, to: &'static str, at: i64) -> Change<'static> {
    Change {
        run_id,
        to,
        at,
        ..Change::default()
    }
}

/// Runs a … e recorded; e already finished (`failed`) before the batch.
const RUNS: [&str; 5] = ["run-a", "run-b", "run-c", "run-d", "run-e"];

fn changes() -> Vec<Change<'static>> {
    let at = |ms: i64| 2_000 + ms;
    vec![
        // a: delivering, running, completed in one batch (three rounds), in order.
        Change {
            deadline_at: Some(60_000),
            attempt: true,
            delivered_to: Some("http://agent:8080"),
            protocol: Some("investigate"),
            ..step("run-a", "delivering", at(1))
        },
        Change {
            detail: Some("routed to shared; delivered to dedicated"),
            deadline_at: Some(70_000),
            attempt: true,
            ..step("run-b", "delivering", at(2))
        },
        step("run-a", "running", at(3)),
        Change {
            result_text: Some("root cause: a bad deploy"),
            ..step("run-a", "completed", at(4))
        },
        // b: a second delivering (a retry) counts a second attempt, keeps the first deadline.
        Change {
            deadline_at: Some(99_000),
            attempt: true,
            ..step("run-b", "delivering", at(5))
        },
        // c: timed out; the later `completed` does not apply.
        Change {
            detail: Some("swept"),
            ..step("run-c", "timeout", at(6))
        },
        Change {
            result_text: Some("too late"),
            ..step("run-c", "completed", at(7))
        },
        // e was failed before the batch: nothing applies; unknown runs apply nothing either.
        step("run-e", "completed", at(8)),
        Change {
            attempt: true,
            ..step("run-zzz", "delivering", at(9))
        },
        Change {
            error: Some("agent refused"),
            detail: Some("agent_refused"),
            ..step("run-d", "failed", at(10))
        },
    ]
}

async fn prepared() -> (Store, TestDb) {
    let (store, db) = store().await;
    let mut conn = store.pool().acquire().await.unwrap();
    let rows: Vec<_> = RUNS.iter().map(|r| row(r)).collect();
    runs::record_batch_sqlite(&mut conn, &rows).await.unwrap();
    let failed = step("run-e", "failed", 1_500);
    assert!(run_lifecycle::transition(&mut conn, &failed).await.unwrap());
    drop(conn);
    (store, db)
}

async fn state(store: &Store) -> Vec<(RunRecord, Vec<TransitionRow>)> {
    let mut conn = store.pool().acquire().await.unwrap();
    let mut out = Vec::new();
    for r in RUNS {
        let record = run_lifecycle::get(&mut conn, r).await.unwrap().unwrap();
        out.push((
            record,
            run_lifecycle::transitions(&mut conn, r).await.unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn a_batch_of_transitions_leaves_what_the_same_transitions_one_by_one_leave() {
    let (batched, _a) = prepared().await;
    let (single, _b) = prepared().await;
    let (pairs, _c) = prepared().await;
    let changes = changes();
    assert!(changes.len() > run_lifecycle::EACH_UP_TO);

    let mut conn = batched.pool().acquire().await.unwrap();
    let applied_batched = run_lifecycle::transition_batch_sqlite(&mut conn, &changes)
        .await
        .unwrap();
    drop(conn);
    let mut applied_single = Vec::new();
    let mut conn = single.pool().acquire().await.unwrap();
    for c in &changes {
        applied_single.push(run_lifecycle::transition(&mut conn, c).await.unwrap());
    }
    drop(conn);
    // Batches of two: the small-batch form (statement pairs), a run twice in one of them.
    let mut applied_pairs = Vec::new();
    let mut conn = pairs.pool().acquire().await.unwrap();
    for chunk in changes.chunks(run_lifecycle::EACH_UP_TO) {
        let applied = run_lifecycle::transition_batch_sqlite(&mut conn, chunk)
            .await
            .unwrap();
        applied_pairs.extend(applied);
    }
    drop(conn);

    assert_eq!(
        applied_batched,
        vec![
            true, true, true, true, true, true, false, false, false, true
        ]
    );
    assert_eq!(applied_batched, applied_single);
    assert_eq!(applied_pairs, applied_single);
    let (after_batch, after_single) = (state(&batched).await, state(&single).await);
    assert_eq!(after_batch, after_single);
    assert_eq!(state(&pairs).await, after_single);

    let a = &after_batch[0].0;
    assert_eq!(
        (
            a.status.as_str(),
            a.delivering_at,
            a.running_at,
            a.finished_at
        ),
        ("completed", Some(2_001), Some(2_003), Some(2_004))
    );
    assert_eq!(a.result_text.as_deref(), Some("root cause: a bad deploy"));
    assert_eq!(
        (a.attempts, a.deadline_at, a.protocol.as_deref()),
        (1, Some(60_000), Some("investigate"))
    );
    let history: Vec<&str> = after_batch[0].1.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(history, ["delivering", "running", "completed"]);
    let b = &after_batch[1].0;
    assert_eq!((b.attempts, b.deadline_at), (2, Some(70_000)));
    let c = &after_batch[2].0;
    assert_eq!(
        (c.status.as_str(), c.result_text.as_deref()),
        ("timeout", None)
    );
    assert_eq!(after_batch[4].0.status, "failed");
}

#[tokio::test]
async fn batches_of_several_padded_shapes_apply_each_transition_once() {
    let (store, _db) = store().await;
    let mut conn = store.pool().acquire().await.unwrap();
    let ids: Vec<String> = (0..64).map(|i| format!("run-{i:02}")).collect();
    let rows: Vec<_> = ids.iter().map(|r| row(r)).collect();
    runs::record_batch_sqlite(&mut conn, &rows).await.unwrap();
    let mut next = 0;
    // Batches of 2, 4, 7, 11 and 45 transitions (padded to 2, 4, 8, 16 and 64), each with one run twice.
    for size in [1usize, 3, 6, 10, 44] {
        let mut batch: Vec<Change> = ids[next..next + size]
            .iter()
            .map(|r| Change {
                run_id: r,
                to: "delivering",
                at: 5_000,
                attempt: true,
                ..Change::default()
            })
            .collect();
        batch.push(Change {
            run_id: &ids[next],
            to: "completed",
            at: 5_001,
            ..Change::default()
        });
        let applied = run_lifecycle::transition_batch_sqlite(&mut conn, &batch)
            .await
            .unwrap();
        assert_eq!(applied, vec![true; size + 1], "batch of {}", size + 1);
        next += size;
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_transitions")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(count, 64 + 5);
    let attempts: i64 = sqlx::query_scalar("SELECT SUM(attempts) FROM runs")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(attempts, 64);
}
