//! What the ingest refuses, with which status and reason, and that none of it is ever stored.

use crate::ingest_fixtures::{Stack, Webhook, now};
use reqwest::StatusCode;

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
            Webhook::slack_event_signed("Ev2", "C1", crate::ingest_fixtures::SLACK, now() - 400),
            "stale_timestamp",
        ),
        (
            "future",
            Webhook::slack_event_signed("Ev3", "C1", crate::ingest_fixtures::SLACK, now() + 400),
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
