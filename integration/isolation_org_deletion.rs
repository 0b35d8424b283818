//! Issue 13, finding 7, played as the attacker: an org is deleted and someone creates an org with the
//! same id. Nothing of the first org may carry over: webhook secrets, runs, provisioning runs and
//! rows, tokens.

use crate::both_databases;
use crate::ingest_fixtures::{GITHUB, Stack, Webhook};
use crate::router_fixtures::{github_event, run_count};
use crate::support::app::ADMIN_TOKEN;
use crate::support::{DbKind, eventually};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

both_databases!(a_recreated_org_inherits_nothing_of_the_deleted_one);

/// Rows left in `table` (a literal of this file).
async fn rows(stack: &Stack, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(stack.app.state.tenancy.store().pool())
        .await
        .unwrap();
    n
}

async fn a_recreated_org_inherits_nothing_of_the_deleted_one(db: DbKind) {
    let stack = Stack::start_on(db, &[]).await;
    let app = &stack.app;
    stack.org_with_secrets("acme", "github", &[GITHUB]).await;
    app.node("acme", "ops", None, "team").await;
    let a = app
        .put(
            "/api/v1/admin/orgs/acme/nodes/ops/config",
            ADMIN_TOKEN,
            json!({"routing": {"github_repos": ["acme/api"]}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (team_token, _) = app.team_token("acme", "ops").await;
    github_event(&stack.js, "d-1", "acme/api", &[]).await;
    eventually("the run of acme/ops", WAIT, || async {
        (run_count(app).await == 1).then_some(())
    })
    .await;
    let provision = app
        .post(
            "/api/v1/admin/provision/team",
            ADMIN_TOKEN,
            json!({"org_id": "acme", "team_node_id": "enterprise", "deployment_mode": "dedicated",
                   "dedicated_config": {"replicas": 1}}),
        )
        .await;
    assert!(provision.status.is_success(), "{}", provision.body);
    let provision_run = provision.body["run_id"].as_str().unwrap().to_owned();
    assert!(rows(&stack, "provision_deployments").await >= 1);
    // The provisioner has worked on it (its steps are stored) before the org goes.
    let path = format!("/api/v1/admin/provision/runs/{provision_run}");
    eventually("the provisioning run to finish", WAIT, || async {
        let run = app.get(&path, ADMIN_TOKEN).await;
        matches!(run.body["status"].as_str(), Some("succeeded" | "failed")).then_some(())
    })
    .await;

    // The org's provider has used its org-scoped URL: its secrets are in the ingest's cache.
    let a = stack
        .send(&Webhook::github("issues", "d-0").for_org("acme"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let gone = app
        .delete("/api/v1/admin/orgs/acme?cascade=true", ADMIN_TOKEN)
        .await;
    assert!(gone.status.is_success(), "{}", gone.body);
    app.org("acme").await;

    // Webhook secrets: the org-scoped URL has none again — not even the cached ones of the deleted
    // org, which would let its provider sign events into the new one.
    let a = stack
        .send(&Webhook::github("issues", "d-2").for_org("acme"))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::UNAUTHORIZED, "no_secret"),
        "{}",
        a.body
    );
    // Runs.
    let runs = app.get("/api/v1/admin/orgs/acme/runs", ADMIN_TOKEN).await;
    assert_eq!(runs.status, 200, "{}", runs.body);
    assert_eq!(runs.body["runs"], json!([]), "{}", runs.body);
    assert_eq!(rows(&stack, "runs").await, 0);
    assert_eq!(rows(&stack, "run_transitions").await, 0);
    // Provisioning runs and rows.
    let p = app.get(&path, ADMIN_TOKEN).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.body);
    for table in [
        "provision_deployments",
        "provision_runs",
        "provision_steps",
        "provision_idempotency",
        "webhook_secrets",
    ] {
        assert_eq!(rows(&stack, table).await, 0, "{table}");
    }
    // Tokens: the old team token and the runtime token do not authenticate.
    let me = app.get("/api/v1/config/me", &team_token).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    // Re-provisioning the same team issues a new runtime token, not the deleted org's.
    app.node("acme", "ops", None, "team").await;
    let me = app.get("/api/v1/config/me", &team_token).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
}

/// The deleted org's dedicated runtime (Deployment, Secret with its token, Service) goes after the
/// grace: the resync finds objects no team wants any more and schedules them; a recreated org with
/// the same id does not keep them alive.
#[tokio::test]
async fn the_deleted_orgs_kubernetes_objects_are_deleted_after_the_grace() {
    use crate::provision_fixtures::{NAME, converged};
    let (rig, _) = converged(Duration::from_millis(1500)).await;
    assert!(rig.fake.get("secrets", NAME).is_some());
    let gone = rig
        .app
        .delete("/api/v1/admin/orgs/acme?cascade=true", ADMIN_TOKEN)
        .await;
    assert!(gone.status.is_success(), "{}", gone.body);
    rig.app.org("acme").await;
    let deleted_at = std::time::Instant::now();
    let report = rig.worker.resync().await.unwrap();
    assert_eq!(report.orphans, 3, "{report:?}");
    rig.worker.tick_once().await.unwrap();
    assert!(
        rig.fake.get("deployments", NAME).is_some(),
        "deleted before the grace"
    );
    eventually("the objects deleted", WAIT, || async {
        rig.worker.tick_once().await.unwrap();
        ["secrets", "deployments", "services"]
            .iter()
            .all(|plural| rig.fake.get(plural, NAME).is_none())
            .then_some(())
    })
    .await;
    assert!(deleted_at.elapsed() >= Duration::from_millis(1400));
}
