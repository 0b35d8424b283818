//! Issue 13, finding 2, played as the attacker: a team token (every dedicated pod holds one) sets,
//! changes or removes keys the platform owns — its own `agent_service_url` (a cloud metadata address),
//! `routing`, deployment keys. Each answers 403 `platform_owned_key` naming the key and stores nothing;
//! the org admin still writes them. Real HTTP, both databases.

use crate::support::DbKind;
use crate::support::app::{ADMIN_TOKEN, TestApp};
use serde_json::{Value, json};

async fn team_with_platform_config(kind: DbKind) -> (TestApp, String, String) {
    let app = TestApp::spawn(kind).await;
    app.org("acme").await;
    app.node("acme", "web", None, "team").await;
    let a = app
        .put(
            "/api/v1/admin/orgs/acme/nodes/web/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": "http://agent-dedicated-acme-web.incidentfox.svc.cluster.local:8080",
                   "routing": {"slack_channel_ids": ["C1"]}, "max_concurrent_agents": 2, "llm": {"model": "m"}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (team, _) = app.team_token("acme", "web").await;
    let (org_admin, _) = app.org_token("acme").await;
    (app, team, org_admin)
}

async fn raw(app: &TestApp) -> Value {
    app.get("/api/v1/admin/orgs/acme/nodes/web/config", ADMIN_TOKEN)
        .await
        .body["config"]
        .clone()
}

async fn a_team_token_cannot_set_change_or_remove_a_platform_owned_key(kind: DbKind) {
    let (app, team, _) = team_with_platform_config(kind).await;
    let before = raw(&app).await;
    let attacks = [
        (
            json!({"agent_service_url": "http://169.254.169.254/latest/meta-data/"}),
            "agent_service_url",
        ),
        (json!({"agent_service_url": null}), "agent_service_url"),
        (
            json!({"routing": {"github_repos": ["other/repo"]}}),
            "routing",
        ),
        (json!({"routing": null}), "routing"),
        (
            json!({"max_concurrent_agents": 500}),
            "max_concurrent_agents",
        ),
        (
            json!({"agent_timeout_seconds": 86400}),
            "agent_timeout_seconds",
        ),
        (json!({"agent_protocol": "ifox"}), "agent_protocol"),
        (json!({"deployment": {"replicas": 50}}), "deployment"),
        (
            json!({"llm": {"model": "n"}, "agent_service_url": "http://evil.example/"}),
            "agent_service_url",
        ),
    ];
    for (patch, key) in attacks {
        let a = app.patch("/api/v1/config/me", &team, patch.clone()).await;
        assert_eq!(a.status, 403, "{patch}: {}", a.body);
        assert_eq!(a.reason(), "platform_owned_key", "{patch}: {}", a.body);
        assert_eq!(a.body["key"], key, "{patch}: {}", a.body);
    }
    assert_eq!(raw(&app).await, before, "no attack stored anything");
    // The team's own settings stay writable.
    let a = app
        .patch("/api/v1/config/me", &team, json!({"llm": {"model": "n"}}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

async fn the_org_admin_still_writes_platform_owned_keys(kind: DbKind) {
    let (app, _, org_admin) = team_with_platform_config(kind).await;
    let a = app
        .patch(
            "/api/v1/admin/orgs/acme/nodes/web/config",
            &org_admin,
            json!({"agent_service_url": null, "routing": {"slack_channel_ids": ["C2"]}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let after = raw(&app).await;
    assert!(after.get("agent_service_url").is_none(), "{after}");
    assert_eq!(after["routing"], json!({"slack_channel_ids": ["C2"]}));
}

crate::both_databases!(
    a_team_token_cannot_set_change_or_remove_a_platform_owned_key,
    the_org_admin_still_writes_platform_owned_keys,
);
