//! Played as a hostile team: it alternates two large configs forever. The config history keeps only
//! the newest `limits.config_history` versions (older ones cannot be rolled back to, and say why),
//! and an audit entry stays small however large the diff (the full diff is in the history).

use crate::support::app::ADMIN_TOKEN;
use crate::support::{DbKind, TestApp};
use serde_json::json;

#[tokio::test]
async fn config_history_is_pruned_to_its_limit_and_audit_entries_stay_small() {
    let app = TestApp::spawn_with(DbKind::Sqlite, &[("IFOX__LIMITS__CONFIG_HISTORY", "3")]).await;
    app.org("acme").await;
    app.node("acme", "ops", None, "team").await;
    let (team, _) = app.team_token("acme", "ops").await;
    let big = |c: char| c.to_string().repeat(100 * 1024);
    for i in 0..6 {
        let a = app
            .patch(
                "/api/v1/config/me",
                &team,
                json!({"notes": big(if i % 2 == 0 { 'a' } else { 'b' })}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let path = "/api/v1/admin/orgs/acme/nodes/ops/config";
    let h = app.get(&format!("{path}/history"), ADMIN_TOKEN).await;
    assert_eq!(h.status, 200, "{}", h.body);
    let versions: Vec<i64> = h.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [5, 6, 7], "the newest three of seven");
    let a = app
        .post(
            &format!("{path}/rollback"),
            ADMIN_TOKEN,
            json!({"version": 2}),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("limits.config_history"),
        "{}",
        a.body
    );
    let a = app
        .post(
            &format!("{path}/rollback"),
            ADMIN_TOKEN,
            json!({"version": 5}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let audit = app
        .get("/api/v1/admin/orgs/acme/audit?limit=10", ADMIN_TOKEN)
        .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let entries = audit.body["entries"].as_array().unwrap();
    let writes: Vec<_> = entries
        .iter()
        .filter(|e| e["detail"].get("omitted_bytes").is_some())
        .collect();
    assert!(writes.len() >= 6, "{}", audit.body);
    for e in &writes {
        assert!(e["detail"]["version"].is_i64(), "{e}");
        assert!(e["detail"].to_string().len() < 1024, "{e}");
    }
    assert!(
        audit.body.to_string().len() < 64 * 1024,
        "ten entries of 100 KiB diffs fit in a few KiB"
    );
}
