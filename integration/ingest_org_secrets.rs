//! Org-scoped webhook URLs and the write-only admin endpoints for an org's webhook secrets.

use crate::ingest_fixtures::{GITHUB, Stack, Webhook, header, stored};
use crate::support::DbKind;
use crate::support::app::ADMIN_TOKEN;
use reqwest::StatusCode;

#[tokio::test]
async fn org_scoped_urls_verify_only_with_the_orgs_own_secrets_and_tag_the_event_with_the_org() {
    org_scoped_urls_use_org_secrets(DbKind::Sqlite).await;
}

#[tokio::test]
async fn org_scoped_urls_verify_only_with_the_orgs_own_secrets_on_postgres() {
    org_scoped_urls_use_org_secrets(DbKind::Postgres).await;
}

async fn org_scoped_urls_use_org_secrets(db: DbKind) {
    let stack = Stack::start_on(db, &[]).await;
    stack.app.org("bare").await;
    let a = stack
        .send(&Webhook::github("issues", "o0").for_org("bare"))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::UNAUTHORIZED, "no_secret"),
        "no fallback to the global secret"
    );
    stack.org_with_secrets("acme", "github", &[GITHUB]).await;
    let msg = stored(&stack, &Webhook::github("issues", "o1").for_org("acme")).await;
    assert_eq!(header(&msg, "ifox-org").as_deref(), Some("acme"));
    assert_eq!(msg.subject.as_str(), "ifox.events.github.issues");
    // Rotate: the org's new secret replaces the list; the old one stops working.
    let path = "/api/v1/admin/orgs/acme/webhook-secrets/github";
    let a = stack
        .app
        .put(
            path,
            ADMIN_TOKEN,
            serde_json::json!({"secrets": ["acme-only-secret"]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = stack
        .send(&Webhook::github("issues", "o2").for_org("acme"))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::UNAUTHORIZED, "bad_signature")
    );
    // Write-only: nothing that can be read shows a secret.
    for read in [
        "/api/v1/admin/orgs/acme/audit",
        "/api/v1/admin/orgs/acme",
        path,
    ] {
        let a = stack.app.get(read, ADMIN_TOKEN).await;
        assert!(
            !a.body.to_string().contains("acme-only-secret")
                && !a.body.to_string().contains(GITHUB),
            "{read}"
        );
    }
}

#[tokio::test]
async fn an_org_admin_sets_its_own_orgs_webhook_secrets_and_a_team_token_cannot() {
    let stack = Stack::start().await;
    stack.app.org("acme").await;
    stack.app.org("other").await;
    stack.app.node("acme", "sre", None, "team").await;
    let (org_token, _) = stack.app.org_token("acme").await;
    let (team_token, _) = stack.app.team_token("acme", "sre").await;
    let body = serde_json::json!({"secrets": ["s1", "s2"]});
    let put = |path: &'static str, token: String| {
        let body = body.clone();
        let app = &stack.app;
        async move { app.put(path, &token, body).await.status }
    };
    let generic = "/api/v1/admin/orgs/acme/webhook-secrets/generic/acme_tool";
    assert_eq!(
        put(generic, org_token.clone()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put(
            "/api/v1/admin/orgs/other/webhook-secrets/slack",
            org_token.clone()
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put("/api/v1/admin/orgs/acme/webhook-secrets/slack", team_token).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(
            "/api/v1/admin/orgs/acme/webhook-secrets/fax",
            org_token.clone()
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let a = stack.app.delete(generic, &org_token).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

/// Played as a hostile org admin: a loop of new generic sources, each with a huge secret, then one
/// request to each org-scoped URL. The org's sources are bounded (422 naming the limit; replacing one
/// is free), a secret's size too (413), and an org's own sources never become metric labels.
#[tokio::test]
async fn an_orgs_webhook_sources_and_secrets_are_bounded_and_stay_out_of_metric_labels() {
    use serde_json::json;
    let stack = Stack::start_with(&[("IFOX__LIMITS__WEBHOOK_SOURCES_PER_ORG", "2")]).await;
    stack.app.org("evil").await;
    let (admin, _) = stack.app.org_token("evil").await;
    let put = |key: &str, secret: String| {
        let path = format!("/api/v1/admin/orgs/evil/webhook-secrets/{key}");
        let app = &stack.app;
        let admin = admin.clone();
        async move { app.put(&path, &admin, json!({"secrets": [secret]})).await }
    };
    assert_eq!(put("github", "s1".repeat(8)).await.status, 204);
    assert_eq!(put("generic/src-a", "s2".repeat(8)).await.status, 204);
    let a = put("generic/src-b", "s3".repeat(8)).await;
    assert_eq!(
        (a.status.as_u16(), a.reason()),
        (422, "too_many_webhook_sources"),
        "{}",
        a.body
    );
    assert_eq!(
        a.body["limit"], "limits.webhook_sources_per_org",
        "{}",
        a.body
    );
    // Rotating a key the org already has is not a new source.
    assert_eq!(put("generic/src-a", "s4".repeat(8)).await.status, 204);
    let a = put("github", "x".repeat(1025)).await;
    assert_eq!(
        (a.status.as_u16(), a.reason()),
        (413, "secret_too_large"),
        "{}",
        a.body
    );
    assert_eq!(a.body["limit"], "limits.webhook_secret_bytes", "{}", a.body);
    // An org's own generic source is counted under `generic`, never under its name.
    let hook = Webhook::standard(
        "/webhooks/orgs/evil/generic/src-a",
        crate::ingest_fixtures::GENERIC,
        "m-1",
        b"{}".to_vec(),
    );
    let a = stack.send(&hook).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let metrics = stack.metrics().await;
    assert!(!metrics.contains("src-a"), "an org's source became a label");
    assert!(metrics.contains("source=\"generic\""), "counted as generic");
}
