//! OTLP export end to end: a collector on loopback (OTLP/HTTP, the protobuf decoded with the OTLP
//! message types) receives the spans of one event — webhook, routed event, delivery — in one
//! trace, parented stage by stage, and the agent is called inside that trace.

use crate::bridge_fixtures::{Agent, finished, issue, stack, team};
use crate::support::{DbKind, eventually};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use ifox::bridge::echo::EchoOptions;
use ifox::settings::{LogFormat, LogSettings, TelemetrySettings};
use ifox::telemetry::otlp;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// One received span, as far as the test needs it.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    event_id: Option<String>,
    service: Option<String>,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<usize>>,
}

impl Collector {
    /// Serves `POST /v1/traces` on 127.0.0.1:0; returns the endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let me = self.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move { me.receive(&headers, &body) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn receive(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        *self.requests.lock().unwrap() += 1;
        if headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            != Some("application/x-protobuf")
        {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE;
        }
        let Ok(req) = ExportTraceServiceRequest::decode(body) else {
            return StatusCode::BAD_REQUEST;
        };
        let mut spans = self.spans.lock().unwrap();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| string_attr(&r.attributes, "service.name"));
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Span {
                        name: s.name.clone(),
                        trace_id: hex::encode(&s.trace_id),
                        span_id: hex::encode(&s.span_id),
                        parent_span_id: hex::encode(&s.parent_span_id),
                        event_id: string_attr(&s.attributes, "event_id"),
                        service: service.clone(),
                    });
                }
            }
        }
        StatusCode::OK
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn string_attr(
    attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// The webhook, event and delivery spans of event `event_id`, once all three arrived.
async fn spans_of(collector: &Collector, event_id: &str) -> (Span, Span, Span) {
    eventually(
        &format!("the spans of {event_id} at the collector"),
        WAIT,
        || async {
            let spans = collector.spans();
            let find = |name: &str| {
                spans
                    .iter()
                    .find(|s| s.name == name && s.event_id.as_deref() == Some(event_id))
                    .cloned()
            };
            Some((find("webhook")?, find("event")?, find("delivery")?))
        },
    )
    .await
}

#[tokio::test]
async fn one_trace_follows_an_event_from_webhook_through_router_and_bridge_to_the_agent() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let settings = TelemetrySettings {
        otlp_endpoint: endpoint,
        service_name: "ifox-test".into(),
        ..TelemetrySettings::default()
    };
    let provider = otlp::provider(&settings)
        .unwrap()
        .expect("an endpoint enables export");
    let log = LogSettings {
        format: LogFormat::Text,
        level: "info".into(),
    };
    // This test's thread only (a current-thread runtime: every task of the stack runs here).
    let _subscriber = tracing::dispatcher::set_default(&otlp::subscriber(&log, Some(&provider)));

    let shared = Agent::start(EchoOptions::default()).await;
    let stack = stack(DbKind::Sqlite, &shared, &[]).await;
    team(&stack, "traced", json!({})).await;
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let hook = issue("traced", "d-traced").header(
        "traceparent",
        &format!("00-{caller_trace}-{caller_span}-01"),
    );
    assert_eq!(stack.send(&hook).await.status, StatusCode::OK);
    assert_eq!(
        stack.send(&issue("traced", "d-untraced")).await.status,
        StatusCode::OK
    );
    for id in ["d-traced", "d-untraced"] {
        let run = finished(&stack, id, WAIT).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    // Export what is queued now rather than after the batch delay (off this thread: the export
    // is answered by the collector, which runs on it).
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .unwrap();

    // The caller's trace: webhook under the caller's span, router and bridge spans under the
    // webhook's, all with the caller's trace id.
    let (webhook, event, delivery) = spans_of(&collector, "d-traced").await;
    for s in [&webhook, &event, &delivery] {
        assert_eq!(s.trace_id, caller_trace, "{s:?}");
        assert_eq!(s.service.as_deref(), Some("ifox-test"));
    }
    assert_eq!(webhook.parent_span_id, caller_span);
    assert_eq!(
        event.parent_span_id, webhook.span_id,
        "the router's span is the webhook's child"
    );
    assert_eq!(
        delivery.parent_span_id, webhook.span_id,
        "the bridge's span is the webhook's child"
    );
    // The agent was called inside the delivery span.
    let seen = shared.requests();
    let traced = seen
        .iter()
        .find(|r| {
            r.traceparent
                .as_deref()
                .is_some_and(|t| t.contains(caller_trace))
        })
        .expect("the agent received the caller's trace");
    assert_eq!(
        traced.traceparent.as_deref(),
        Some(format!("00-{caller_trace}-{}-01", delivery.span_id).as_str())
    );

    // No caller trace: the webhook span starts one, and the later stages join it.
    let (webhook, event, delivery) = spans_of(&collector, "d-untraced").await;
    assert!(
        webhook.parent_span_id.is_empty(),
        "a root span: {webhook:?}"
    );
    assert_ne!(webhook.trace_id, caller_trace);
    assert_eq!(event.trace_id, webhook.trace_id);
    assert_eq!(delivery.trace_id, webhook.trace_id);
    assert_eq!(event.parent_span_id, webhook.span_id);
    assert_eq!(delivery.parent_span_id, webhook.span_id);
    assert!(*collector.requests.lock().unwrap() >= 1);
    // Shut the export down off this thread too (it may still send to the collector).
    drop(_subscriber);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .ok();
}
