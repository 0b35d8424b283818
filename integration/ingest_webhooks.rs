//! Webhooks against a real nats-server: what lands in EVENTS, byte for byte, and what never does.

use crate::ingest_fixtures::{GITHUB, SOURCE, Stack, Webhook, header, now};
use crate::support::DbKind;
use crate::support::app::ADMIN_TOKEN;
use async_nats::jetstream::message::StreamMessage;
use ifox::ingest::event::valid_traceparent;
use reqwest::StatusCode;

/// Sends `hook`, expects 200 "accepted", and returns the stored message.
async fn stored(stack: &Stack, hook: &Webhook) -> StreamMessage {
    let a = stack.send(hook).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["status"], "accepted", "{}", a.body);
    assert_eq!(a.body["stream"], "EVENTS");
    let msg = stack.event(a.body["seq"].as_u64().expect("seq")).await;
    assert_eq!(
        msg.payload.as_ref(),
        hook.body.as_slice(),
        "the body is stored byte for byte"
    );
    assert_eq!(header(&msg, "ce-specversion").as_deref(), Some("1.0"));
    assert!(header(&msg, "ce-time").is_some_and(|t| t.ends_with('Z')));
    assert!(header(&msg, "traceparent").is_some_and(|t| valid_traceparent(&t)));
    msg
}

fn ce(msg: &StreamMessage) -> (String, String, String, String, String) {
    let h = |n: &str| header(msg, n).unwrap_or_default();
    (
        msg.subject.to_string(),
        h("ce-source"),
        h("ce-type"),
        h("ce-id"),
        h("Nats-Msg-Id"),
    )
}

#[tokio::test]
async fn a_signed_slack_event_lands_in_events_with_its_channel_and_workspace() {
    let stack = Stack::start().await;
    let msg = stored(&stack, &Webhook::slack_event("Ev01", "C0CHAN")).await;
    let want = (
        "ifox.events.slack.app_mention",
        "slack",
        "app_mention",
        "Ev01",
        "slack:Ev01",
    );
    let got = ce(&msg);
    assert_eq!(
        (
            got.0.as_str(),
            got.1.as_str(),
            got.2.as_str(),
            got.3.as_str(),
            got.4.as_str()
        ),
        want
    );
    assert_eq!(
        header(&msg, "ifox-route-slack_channel_ids").as_deref(),
        Some("C0CHAN")
    );
    assert_eq!(
        header(&msg, "ifox-route-slack_workspace_ids").as_deref(),
        Some("T0TEAM")
    );
    assert_eq!(
        header(&msg, "content-type").as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn a_signed_slack_interaction_lands_in_events_as_its_raw_form() {
    let stack = Stack::start().await;
    let msg = stored(&stack, &Webhook::slack_interaction("trig.123")).await;
    assert_eq!(
        msg.subject.as_str(),
        "ifox.events.slack.interaction_block_actions"
    );
    assert_eq!(
        header(&msg, "ce-type").as_deref(),
        Some("interaction.block_actions")
    );
    assert_eq!(header(&msg, "ce-id").as_deref(), Some("trig.123"));
    assert_eq!(
        header(&msg, "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        header(&msg, "ifox-route-slack_channel_ids").as_deref(),
        Some("C0CHAN")
    );
}

#[tokio::test]
async fn a_signed_github_delivery_lands_in_events_with_its_event_header_and_lowercased_repo() {
    let stack = Stack::start().await;
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let msg = stored(&stack, &Webhook::github("issues", delivery)).await;
    assert_eq!(msg.subject.as_str(), "ifox.events.github.issues");
    assert_eq!(header(&msg, "ce-id").as_deref(), Some(delivery));
    assert_eq!(
        header(&msg, "Nats-Msg-Id"),
        Some(format!("github:{delivery}"))
    );
    assert_eq!(header(&msg, "x-github-event").as_deref(), Some("issues"));
    assert_eq!(header(&msg, "x-github-delivery").as_deref(), Some(delivery));
    assert_eq!(
        header(&msg, "ifox-route-github_repos").as_deref(),
        Some("acme/checkout")
    );
    assert!(
        header(&msg, "x-hub-signature-256").is_none(),
        "signatures are not carried along"
    );
}

#[tokio::test]
async fn a_pagerduty_v3_event_signed_during_a_rotation_lands_in_events_with_its_service() {
    let stack = Stack::start().await;
    let msg = stored(&stack, &Webhook::pagerduty("01PDEVENT")).await;
    assert_eq!(
        msg.subject.as_str(),
        "ifox.events.pagerduty.incident_triggered"
    );
    assert_eq!(
        header(&msg, "ce-type").as_deref(),
        Some("incident.triggered")
    );
    assert_eq!(header(&msg, "ce-id").as_deref(), Some("01PDEVENT"));
    assert_eq!(
        header(&msg, "ifox-route-pagerduty_service_ids").as_deref(),
        Some("PSVC001")
    );
    assert_eq!(header(&msg, "x-webhook-id").as_deref(), Some("wh-sub-1"));
}

#[tokio::test]
async fn an_incident_io_alert_lands_in_events_with_its_alert_source() {
    let stack = Stack::start().await;
    let msg = stored(&stack, &Webhook::incidentio("msg_2b7Y9kQ")).await;
    assert_eq!(
        msg.subject.as_str(),
        "ifox.events.incidentio.public_alert_alert_created_v1"
    );
    assert_eq!(
        header(&msg, "ce-type").as_deref(),
        Some("public_alert.alert_created_v1")
    );
    assert_eq!(
        header(&msg, "Nats-Msg-Id").as_deref(),
        Some("incidentio:msg_2b7Y9kQ")
    );
    assert_eq!(
        header(&msg, "ifox-route-incidentio_alert_source_ids").as_deref(),
        Some("01ALERTSRC")
    );
    assert!(header(&msg, "webhook-timestamp").is_some());
}

#[tokio::test]
async fn a_generic_standard_webhook_lands_in_events_under_its_source_with_the_senders_routes() {
    let stack = Stack::start().await;
    let msg = stored(&stack, &Webhook::generic("msg_gen_1")).await;
    assert_eq!(
        msg.subject.to_string(),
        format!("ifox.events.{SOURCE}.deploy_failed")
    );
    assert_eq!(header(&msg, "ce-source").as_deref(), Some(SOURCE));
    assert_eq!(
        header(&msg, "ifox-route-service_names").as_deref(),
        Some("checkout")
    );
    assert!(header(&msg, "ifox-org").is_none());
}

#[tokio::test]
async fn the_same_delivery_twice_is_stored_once_and_answered_200_both_times() {
    let stack = Stack::start().await;
    let hook = Webhook::github("push", "dup-delivery-1");
    let first = stack.send(&hook).await;
    let retry = stack.send(&hook).await;
    assert_eq!(
        (first.status, retry.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(
        (first.body["status"].as_str(), retry.body["status"].as_str()),
        (Some("accepted"), Some("duplicate"))
    );
    assert_eq!(first.body["seq"], retry.body["seq"]);
    // A Slack retry re-signs with a new timestamp but keeps the event_id.
    let slack = stack.send(&Webhook::slack_event("EvDup", "C1")).await;
    let slack_retry = stack
        .send(&Webhook::slack_event("EvDup", "C1").header("x-slack-retry-num", "1"))
        .await;
    assert_eq!(
        (slack.status, slack_retry.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(slack_retry.body["status"], "duplicate");
    assert_eq!(stack.stored().await, 2);
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("ifox_ingest_duplicate_total{source=\"github\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slack_url_verification_is_answered_with_its_challenge_and_not_stored() {
    let stack = Stack::start().await;
    let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = now();
    let sig = ifox::ingest::verify::sign_slack(crate::ingest_fixtures::SLACK, ts, body);
    let hook = Webhook {
        path: "/webhooks/slack/events".into(),
        headers: vec![],
        body: body.to_vec(),
    }
    .header("content-type", "application/json")
    .header("x-slack-request-timestamp", &ts.to_string())
    .header("x-slack-signature", &sig);
    let a = stack.send(&hook).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let unsigned = stack
        .send(&hook.clone().header("x-slack-signature", "v0=00"))
        .await;
    assert_eq!(
        unsigned.status,
        StatusCode::UNAUTHORIZED,
        "the challenge is only echoed to Slack"
    );
    assert_eq!(stack.stored().await, 0);
}

#[tokio::test]
async fn a_github_ping_is_answered_200_and_not_stored() {
    let stack = Stack::start().await;
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#.to_vec();
    let a = stack
        .send(&Webhook::github_body("ping", "ping-1", body))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(stack.stored().await, 0);
}

#[tokio::test]
async fn bad_stale_or_missing_signatures_are_refused_with_401_and_a_reason_and_never_stored() {
    let stack = Stack::start().await;
    let cases = [
        (
            "wrong secret",
            Webhook::slack_event_signed("Ev1", "C1", "not-the-secret", now()),
            "bad_signature",
        ),
        (
            "stale",
            Webhook::slack_event_signed("Ev2", "C1", crate::ingest_fixtures::SLACK, now() - 301),
            "stale_timestamp",
        ),
        (
            "future",
            Webhook::slack_event_signed("Ev3", "C1", crate::ingest_fixtures::SLACK, now() + 301),
            "stale_timestamp",
        ),
        (
            "no signature",
            Webhook::github("issues", "d1").without("x-hub-signature-256"),
            "missing_header",
        ),
        (
            "not sha256=",
            Webhook::github("issues", "d2").header("x-hub-signature-256", "sha1=abc"),
            "malformed_header",
        ),
        (
            "tampered",
            {
                let mut h = Webhook::pagerduty("P1");
                h.body[10] ^= 1;
                h
            },
            "bad_signature",
        ),
    ];
    for (what, hook, reason) in cases {
        let a = stack.send(&hook).await;
        assert_eq!(
            (a.status, a.reason()),
            (StatusCode::UNAUTHORIZED, reason),
            "{what}: {}",
            a.body
        );
    }
    assert_eq!(stack.stored().await, 0);
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains(r#"ifox_ingest_rejected_total{source="slack",reason="stale_timestamp"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_wrong_content_type_or_an_unparsable_body_is_a_400() {
    let stack = Stack::start().await;
    let form =
        Webhook::github("issues", "d3").header("content-type", "application/x-www-form-urlencoded");
    let a = stack.send(&form).await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "unsupported_media_type")
    );
    let a = stack
        .send(&Webhook::github_body("issues", "d4", b"{not json".to_vec()))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "malformed_body")
    );
    let a = stack
        .send(&Webhook::github("issues", "d5").without("x-github-delivery"))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "missing_header")
    );
    assert_eq!(stack.stored().await, 0);
}

#[tokio::test]
async fn a_body_above_the_limit_is_a_413_and_never_stored() {
    let stack = Stack::start_with(&[("IFOX__INGEST__BODY_LIMIT", "4096")]).await;
    let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(5000)).into_bytes();
    let a = stack
        .send(&Webhook::github_body("issues", "big-1", body))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(stack.stored().await, 0);
}

#[tokio::test]
async fn an_unknown_generic_source_or_org_is_a_404() {
    let stack = Stack::start().await;
    let mut hook = Webhook::generic("msg_x");
    hook.path = "/webhooks/generic/nobody".into();
    let a = stack.send(&hook).await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::NOT_FOUND, "unknown_source")
    );
    let a = stack
        .send(&Webhook::github("issues", "d6").for_org("no-such-org"))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::NOT_FOUND, "unknown_org")
    );
    let a = stack
        .send(&Webhook::github("issues", "d7").for_org("Not_An_Id"))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::NOT_FOUND, "unknown_org")
    );
    assert_eq!(stack.stored().await, 0);
}

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
