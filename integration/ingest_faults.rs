//! NATS outages: webhooks answer 503 with Retry-After while NATS is away, and the same process
//! stores them again once it is back.

use crate::ingest_fixtures::{Stack, Webhook};
use crate::support::eventually;
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn with_nats_stopped_a_webhook_gets_503_and_once_nats_is_back_the_providers_retry_is_stored_without_restarting_ifox()
 {
    let mut stack = Stack::start().await;
    let before = stack
        .send(&Webhook::github("issues", "before-outage"))
        .await;
    assert_eq!(before.status, StatusCode::OK);

    stack.nats.stop();
    let hook = Webhook::github("issues", "during-outage");
    let a = stack.send(&hook).await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::SERVICE_UNAVAILABLE, "nats_unavailable"),
        "{}",
        a.body
    );
    assert!(
        a.headers.contains_key("retry-after"),
        "the provider is told to retry"
    );

    stack.nats.resume().await;
    // The provider retries the same delivery until it gets a 2xx; ifox reconnects by itself.
    let accepted = eventually(
        "a retry to be accepted after NATS is back",
        Duration::from_secs(20),
        || {
            let (stack, hook) = (&stack, &hook);
            async move {
                let a = stack.send(hook).await;
                (a.status == StatusCode::OK).then_some(a)
            }
        },
    )
    .await;
    assert!(accepted.body["status"] == "accepted" || accepted.body["status"] == "duplicate");
    let next = stack.send(&Webhook::github("issues", "after-outage")).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    // The outage's delivery is stored once, however many attempts it took.
    assert_eq!(stack.stored().await, 3);
    let metrics = stack.metrics().await;
    assert!(
        metrics
            .contains(r#"ifox_ingest_rejected_total{source="github",reason="nats_unavailable"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_nats_server_that_returns_with_an_empty_store_gets_its_streams_back() {
    let mut stack = Stack::start().await;
    stack
        .js
        .delete_stream("EVENTS")
        .await
        .expect("delete EVENTS");
    // A reconnect re-applies the stream files.
    stack.nats.stop();
    stack.nats.resume().await;
    let a = eventually(
        "EVENTS to be recreated and a webhook stored",
        Duration::from_secs(20),
        || {
            let stack = &stack;
            async move {
                let a = stack.send(&Webhook::github("issues", "after-wipe")).await;
                (a.status == StatusCode::OK).then_some(a)
            }
        },
    )
    .await;
    assert_eq!(a.body["stream"], "EVENTS");
}
