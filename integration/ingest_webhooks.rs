//! Webhooks against a real nats-server: what lands in EVENTS, byte for byte; duplicates; handshakes.

use crate::ingest_fixtures::{SOURCE, Stack, Webhook, header, now, stored};
use async_nats::jetstream::message::StreamMessage;
use reqwest::StatusCode;

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
        "global/slack:Ev01",
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
        Some(format!("global/github:{delivery}"))
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
        Some("global/incidentio:msg_2b7Y9kQ")
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
