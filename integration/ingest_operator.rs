//! The operator's side of the contract, played with a third-party client (Python `nats-py`): an event
//! published straight to NATS with CloudEvents headers lands in EVENTS like a webhook, and reads back.

use crate::ingest_fixtures::{Stack, Webhook, header};
use serde_json::Value;

/// Publishes one CloudEvent with a JetStream PubAck, then reads it back from EVENTS by sequence,
/// printing `{"ack": {...}, "read": {"subject", "headers", "data"}}`.
const OPERATOR: &str = r#"
import asyncio, json, sys
import nats

async def main(url):
    nc = await nats.connect(url)
    js = nc.jetstream()
    body = b'{"service":"checkout","status":"deploy failed"}'
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "deploy-4711",
        "ce-source": "deploybot",
        "ce-type": "deploy.failed",
        "ce-time": "2026-11-28T12:00:00Z",
        "content-type": "application/json",
        "Nats-Msg-Id": "org/acme/deploybot:deploy-4711",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ifox-org": "acme",
        "ifox-route-service_names": "checkout",
    }
    ack = await js.publish("ifox.events.deploybot.deploy_failed", body, headers=headers)
    again = await js.publish("ifox.events.deploybot.deploy_failed", body, headers=headers)
    msg = await js.get_msg("EVENTS", ack.seq)
    print(json.dumps({
        "ack": {"stream": ack.stream, "seq": ack.seq, "again_duplicate": bool(again.duplicate)},
        "read": {"subject": msg.subject, "headers": msg.headers, "data": msg.data.decode()},
    }))
    await nc.close()

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test]
async fn an_operator_publishes_a_cloudevent_with_nats_py_and_reads_it_back_from_events() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("operator.py");
    std::fs::write(&script, OPERATOR).expect("write script");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(stack.nats.url())
        .output()
        .await
        .expect("run python3 (needs `pip install nats-py`)");
    assert!(
        out.status.success(),
        "operator script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("script output is JSON");

    assert_eq!(seen["ack"]["stream"], "EVENTS");
    assert_eq!(
        seen["ack"]["again_duplicate"], true,
        "Nats-Msg-Id dedups direct publishes too"
    );
    assert_eq!(
        seen["read"]["subject"],
        "ifox.events.deploybot.deploy_failed"
    );
    assert_eq!(
        seen["read"]["data"],
        r#"{"service":"checkout","status":"deploy failed"}"#
    );
    assert_eq!(seen["read"]["headers"]["ce-id"], "deploy-4711");
    assert_eq!(
        seen["read"]["headers"]["ifox-route-service_names"],
        "checkout"
    );

    // Downstream sees the same shape as a webhook: every header a webhook event carries is there.
    let hook = stack.send(&Webhook::generic("msg_shape")).await;
    let webhook_msg = stack.event(hook.body["seq"].as_u64().expect("seq")).await;
    let direct = stack.event(seen["ack"]["seq"].as_u64().expect("seq")).await;
    for name in [
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "content-type",
        "Nats-Msg-Id",
        "traceparent",
    ] {
        assert!(
            header(&webhook_msg, name).is_some(),
            "webhook event lacks {name}"
        );
        assert!(header(&direct, name).is_some(), "direct event lacks {name}");
    }
    assert_eq!(header(&direct, "ifox-org").as_deref(), Some("acme"));
}
