//! Org-scoped webhook URLs cannot be used to drive database load: a flood of unsigned, wrongly
//! signed, made-up-source and unknown-org requests costs one read of `webhook_secrets` per known org,
//! counted by `ifox_webhook_secret_lookups_total{result="db_read"}`; a secret written through the
//! admin API applies to the very next webhook.

use crate::ingest_fixtures::{GITHUB, Stack, Webhook};
use crate::support::app::ADMIN_TOKEN;
use ifox::ingest::verify;
use reqwest::StatusCode;

/// The value of `ifox_webhook_secret_lookups_total{result="<result>"}` (0 while absent).
fn lookups(metrics: &str, result: &str) -> u64 {
    let name = format!(r#"ifox_webhook_secret_lookups_total{{result="{result}"}} "#);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A GitHub delivery to `org`'s URL signed with `secret`.
fn signed(org: &str, delivery: &str, secret: &str) -> Webhook {
    let hook = Webhook::github("issues", delivery).for_org(org);
    let sig = verify::sign_github(secret, &hook.body);
    hook.header("x-hub-signature-256", &sig)
}

/// Sends every hook, 32 at a time, and returns how many got each status.
async fn flood(stack: &Stack, hooks: Vec<(Webhook, StatusCode, &'static str)>) {
    for batch in hooks.chunks(32) {
        let answers = futures::future::join_all(batch.iter().map(|(h, _, _)| stack.send(h))).await;
        for ((hook, status, reason), a) in batch.iter().zip(answers) {
            assert_eq!((a.status, a.reason()), (*status, *reason), "{}", hook.path);
        }
    }
}

#[tokio::test]
async fn a_flood_of_unauthenticated_org_webhooks_costs_one_secret_read_per_known_org() {
    // A TTL far longer than the test, so that every read it sees is one the flood caused.
    let stack = Stack::start_with(&[("IFOX__INGEST__ORG_SECRETS_TTL", "1h")]).await;
    stack.org_with_secrets("acme", "github", &[GITHUB]).await;
    stack.app.org("bare").await;
    let before = stack.metrics().await;

    let mut hooks = Vec::new();
    for i in 0..100 {
        let wrong = signed("acme", &format!("w{i}"), "not-the-secret");
        hooks.push((wrong, StatusCode::UNAUTHORIZED, "bad_signature"));
        let unsigned = Webhook::github("issues", &format!("u{i}"))
            .for_org("acme")
            .without("x-hub-signature-256");
        hooks.push((unsigned, StatusCode::UNAUTHORIZED, "missing_header"));
        let no_secret = Webhook::github("issues", &format!("b{i}")).for_org("bare");
        hooks.push((no_secret, StatusCode::UNAUTHORIZED, "no_secret"));
        let mut made_up = Webhook::generic(&format!("g{i}")).for_org("acme");
        made_up.path = format!("/webhooks/orgs/acme/generic/made_up_{i}");
        hooks.push((made_up, StatusCode::NOT_FOUND, "unknown_source"));
        let stranger = Webhook::github("issues", &format!("x{i}")).for_org(&format!("nobody-{i}"));
        hooks.push((stranger, StatusCode::NOT_FOUND, "unknown_org"));
    }
    flood(&stack, hooks).await;
    assert_eq!(stack.stored().await, 0, "nothing rejected is stored");

    let after = stack.metrics().await;
    let delta = |result| lookups(&after, result) - lookups(&before, result);
    assert_eq!(
        delta("db_read"),
        2,
        "one read for acme, one for bare:\n{after}"
    );
    assert_eq!(delta("cache_hit"), 400 - 2, "{after}");
    assert_eq!(delta("unknown_org"), 100, "{after}");
    assert_eq!(delta("db_error"), 0, "{after}");

    // A rotation through the admin API applies to the next webhook, at the cost of one read.
    let a = stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/webhook-secrets/github",
            ADMIN_TOKEN,
            serde_json::json!({"secrets": ["acme-rotated"]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let old = stack.send(&signed("acme", "r1", GITHUB)).await;
    assert_eq!(
        (old.status, old.reason()),
        (StatusCode::UNAUTHORIZED, "bad_signature")
    );
    let new = stack.send(&signed("acme", "r2", "acme-rotated")).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);
    let rotated = stack.metrics().await;
    assert_eq!(
        lookups(&rotated, "db_read") - lookups(&after, "db_read"),
        1,
        "{rotated}"
    );
    assert_eq!(stack.stored().await, 1);
}
