//! Target `explain`: route explain requests (`POST /api/v1/admin/route/explain` and `ifox route
//! explain --header name:value`): the body's shape, the header checks, and the explanation itself
//! over the fixture's catalog.

use crate::common::{bytes, catalog, identifier_kind, identifier_value, json_value, text};
use ifox::admin::ExplainRequest;
use ifox::domain::headers::{CE_ID, ORG, route_header};
use ifox::domain::subject::event_subject;
use ifox::router::explain::{MAX_HEADER_BYTES, MAX_HEADERS, check_request, explain, parse_headers};
use proptest::prelude::*;
use serde_json::{Value, json};

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => identifier_kind().prop_map(route_header),
        1 => prop::sample::select(vec![ORG, CE_ID, "ce-time", "Ifox-Replay-Of"]).prop_map(str::to_owned),
        1 => text(),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => identifier_value(),
        1 => prop::sample::select(vec!["acme", "globex", "a\r\nb", "x\ny", "\u{0}", "\u{85}"]).prop_map(str::to_owned),
        1 => text(),
        1 => "[a-z]{4000,4100}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop_oneof![
        8 => prop::collection::vec((header_name(), header_value()), 0..8),
        1 => prop::collection::vec((header_name(), header_value()), 60..70),
    ]
}

fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["github", "slack", "pagerduty", "incidentio", "datadog"]).prop_map(str::to_owned),
        1 => text(),
    ]
}

proptest! {
    /// Any explain request gets a 400 message or an explanation, never a panic: the check refuses
    /// what a NATS header or subject cannot hold (control characters such as CR/LF, names that are
    /// not HTTP tokens, more than the allowed headers or bytes), and whatever it lets through is
    /// explained on the event's own subject with one of the router's actions.
    #[test]
    fn any_explain_request_is_refused_or_explained(
        source in source(),
        event_type in prop_oneof![Just("explain".to_owned()), text()],
        headers in headers(),
        payload in prop_oneof![bytes(256), json_value().prop_map(|v| v.to_string().into_bytes())],
    ) {
        match check_request(&source, &event_type, &headers) {
            Ok(()) => {
                prop_assert!(headers.len() <= MAX_HEADERS);
                for (k, v) in &headers {
                    prop_assert!(!k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':'));
                    prop_assert!(!v.contains(['\r', '\n']) && k.len() + v.len() <= MAX_HEADER_BYTES);
                }
                let out = explain(catalog(), &source, &event_type, &headers, &payload);
                prop_assert_eq!(out.subject, event_subject(&source, &event_type));
                let action = out.outcome.get("action").and_then(Value::as_str);
                prop_assert!(matches!(action, Some("dispatch" | "dead_letter" | "retry")), "{}", out.outcome);
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    /// Any `--header` arguments of `ifox route explain` parse to trimmed `name:value` pairs that pass
    /// the request check, or give a message; never a panic.
    #[test]
    fn any_cli_headers_parse_to_checked_pairs_or_a_message(raw in prop::collection::vec(
        prop_oneof![
            3 => (header_name(), header_value()).prop_map(|(k, v)| format!("{k}:{v}")),
            1 => text(),
        ],
        0..6,
    )) {
        match parse_headers(&raw) {
            Ok(pairs) => {
                prop_assert_eq!(pairs.len(), raw.len());
                for ((k, v), line) in pairs.iter().zip(&raw) {
                    let (rk, rv) = line.split_once(':').expect("a pair has a colon");
                    prop_assert_eq!((k.as_str(), v.as_str()), (rk.trim(), rv.trim()));
                }
                prop_assert!(check_request("explain", "explain", &pairs).is_ok());
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    /// Any JSON body is read as an explain request or refused (400), never a panic; a body of the
    /// documented shape (`source`, optional `event_type`, string `headers`, any `payload`) is
    /// always read.
    #[test]
    fn explain_bodies_of_the_documented_shape_are_read(
        source in text(),
        event_type in prop::option::of(text()),
        headers in prop::collection::btree_map(text(), text(), 0..4),
        payload in json_value(),
        junk in bytes(64),
    ) {
        let mut body = json!({"source": source, "headers": headers, "payload": payload});
        if let Some(t) = event_type {
            body["event_type"] = Value::String(t);
        }
        prop_assert!(serde_json::from_value::<ExplainRequest>(body).is_ok());
        let _ = serde_json::from_slice::<ExplainRequest>(&junk);
    }
}
