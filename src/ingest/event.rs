//! From an accepted webhook to a CloudEvent in NATS binary mode: the subject and the headers. Pure.
//!
//! The contract is documented once, with the header names, in [`crate::domain::headers`] (also in
//! docs/ingest.md, for people who publish directly); the subject in [`crate::domain::subject`]. The
//! ingest adds the provider's own headers later stages need (e.g. `x-github-event`).

use crate::domain::OrgId;
use crate::domain::headers::{self as names, event_msg_id, header_safe, route_header};
use crate::domain::routing::Identifier;
use crate::domain::subject::event_subject;
use async_nats::HeaderName;
use async_nats::header::NATS_MESSAGE_ID;
use std::time::SystemTime;

/// What a provider module made of a verified webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// `ce-type`, the provider's spelling.
    pub event_type: String,
    /// `ce-id`: the provider's delivery id (stable across the provider's retries).
    pub id: String,
    pub content_type: &'static str,
    /// Provider headers to carry along (lowercase names).
    pub forward: Vec<(&'static str, String)>,
    /// Routing identifiers found in the payload.
    pub routes: Vec<Identifier>,
}

/// Where and how to publish.
#[derive(Debug)]
pub struct Envelope {
    pub subject: String,
    pub headers: async_nats::HeaderMap,
}

// The header names ifox writes, built once: no parsing and no allocation per event.
const SPECVERSION: HeaderName = HeaderName::from_static(names::CE_SPECVERSION);
const CE_ID: HeaderName = HeaderName::from_static(names::CE_ID);
const CE_SOURCE: HeaderName = HeaderName::from_static(names::CE_SOURCE);
const CE_TYPE: HeaderName = HeaderName::from_static(names::CE_TYPE);
const CE_TIME: HeaderName = HeaderName::from_static(names::CE_TIME);
const CONTENT_TYPE: HeaderName = HeaderName::from_static(names::CONTENT_TYPE);
const TRACEPARENT: HeaderName = HeaderName::from_static(names::TRACEPARENT);
const TRACESTATE: HeaderName = HeaderName::from_static(names::TRACESTATE);
const ORG: HeaderName = HeaderName::from_static(names::ORG);

/// Builds the subject and headers. `traceparent`/`tracestate` are the incoming HTTP headers, if any.
pub fn envelope(
    source: &str,
    org: Option<&OrgId>,
    signal: &Signal,
    trace: (Option<&str>, Option<&str>),
    now: SystemTime,
) -> Envelope {
    let mut h = async_nats::HeaderMap::new();
    h.insert(SPECVERSION, names::SPECVERSION);
    h.insert(CE_ID, signal.id.as_str());
    h.insert(CE_SOURCE, source);
    h.insert(CE_TYPE, signal.event_type.as_str());
    h.insert(CE_TIME, humantime::format_rfc3339_millis(now).to_string());
    h.insert(CONTENT_TYPE, signal.content_type);
    // The tenant scope is part of the key: two orgs' senders both numbering `msg-1` are two events.
    h.insert(
        NATS_MESSAGE_ID,
        event_msg_id(org.map(OrgId::as_str), source, &signal.id),
    );
    match trace.0.filter(|t| valid_traceparent(t)) {
        Some(parent) => {
            h.insert(TRACEPARENT, parent);
            if let Some(state) = trace.1.filter(|s| header_safe(s)) {
                h.insert(TRACESTATE, state);
            }
        }
        None => h.insert(TRACEPARENT, new_traceparent()),
    }
    if let Some(org) = org {
        h.insert(ORG, org.as_str());
    }
    // One header per kind (at its first occurrence), its safe values comma-separated.
    for (i, Identifier { kind, .. }) in signal.routes.iter().enumerate() {
        if signal.routes[..i].iter().any(|r| r.kind == *kind) {
            continue;
        }
        let mut values = String::new();
        for Identifier { value, .. } in signal.routes[i..].iter().filter(|r| r.kind == *kind) {
            if header_safe(value) {
                if !values.is_empty() {
                    values.push(',');
                }
                values.push_str(value);
            }
        }
        if !values.is_empty() {
            h.insert(route_header(*kind), values);
        }
    }
    for (name, value) in &signal.forward {
        if header_safe(value) {
            h.insert(HeaderName::from_static(name), value.as_str());
        }
    }
    Envelope {
        subject: event_subject(source, &signal.event_type),
        headers: h,
    }
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, ids not all zero (W3C Trace Context).
pub fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, span, flags]
        if *version == "00" && hex(trace, 32) && nonzero(trace) && hex(span, 16) && nonzero(span) && hex(flags, 2))
}

/// A fresh sampled trace context.
pub fn new_traceparent() -> String {
    let trace: u128 = rand::random::<u128>().max(1);
    let span: u64 = rand::random::<u64>().max(1);
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    out.push_str(&hex::encode(trace.to_be_bytes()));
    out.push('-');
    out.push_str(&hex::encode(span.to_be_bytes()));
    out.push_str("-01");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::IdentifierKind;

    fn id(kind: IdentifierKind, value: &str) -> Identifier {
        Identifier::new(kind, value)
    }

    fn signal() -> Signal {
        Signal {
            event_type: "incident.triggered".into(),
            id: "01DEF".into(),
            content_type: "application/json",
            forward: vec![("x-webhook-id", "wh-1".into()), ("x-bad", "a\nb".into())],
            routes: vec![id(IdentifierKind::PagerdutyServiceIds, "PSVC1")],
        }
    }

    #[test]
    fn a_dotted_provider_type_becomes_one_subject_token_and_stays_verbatim_in_ce_type() {
        let org = OrgId::parse("acme").unwrap();
        let e = envelope(
            "pagerduty",
            Some(&org),
            &signal(),
            (None, None),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(e.subject, "ifox.events.pagerduty.incident_triggered");
        let get = |n: &str| e.headers.get(n).map(|v| v.as_str().to_owned());
        assert_eq!(get("ce-type").as_deref(), Some("incident.triggered"));
        assert_eq!(get("ce-id").as_deref(), Some("01DEF"));
        assert_eq!(get("ce-source").as_deref(), Some("pagerduty"));
        assert_eq!(get("ce-specversion").as_deref(), Some("1.0"));
        assert_eq!(get("ce-time").as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            get("Nats-Msg-Id").as_deref(),
            Some("org/acme/pagerduty:01DEF")
        );
        assert_eq!(get("ifox-org").as_deref(), Some("acme"));
        assert_eq!(
            get("ifox-route-pagerduty_service_ids").as_deref(),
            Some("PSVC1")
        );
        assert_eq!(get("x-webhook-id").as_deref(), Some("wh-1"));
        assert_eq!(
            get("x-bad"),
            None,
            "a value with a line break is never copied"
        );
        assert!(valid_traceparent(&get("traceparent").unwrap()));
    }

    #[test]
    fn a_valid_incoming_traceparent_is_kept_and_an_invalid_one_replaced() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let e = envelope(
            "github",
            None,
            &signal(),
            (Some(parent), Some("k=v")),
            SystemTime::now(),
        );
        assert_eq!(e.headers.get("traceparent").unwrap().as_str(), parent);
        assert_eq!(e.headers.get("tracestate").unwrap().as_str(), "k=v");
        let zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let e = envelope(
            "github",
            None,
            &signal(),
            (Some(zero), Some("k=v")),
            SystemTime::now(),
        );
        assert_ne!(e.headers.get("traceparent").unwrap().as_str(), zero);
        assert!(e.headers.get("tracestate").is_none());
        assert!(e.headers.get("ifox-org").is_none());
        assert_eq!(
            e.headers.get("Nats-Msg-Id").unwrap().as_str(),
            "global/github:01DEF"
        );
    }

    #[test]
    fn routes_of_one_kind_share_a_header_and_unsafe_values_are_left_out() {
        let mut s = signal();
        s.routes = vec![
            id(IdentifierKind::SlackChannelIds, "C1"),
            id(IdentifierKind::SlackWorkspaceIds, "T1"),
            id(IdentifierKind::SlackChannelIds, "bad\nvalue"),
            id(IdentifierKind::SlackChannelIds, "C2"),
            id(IdentifierKind::ServiceNames, "bad\nonly"),
        ];
        let e = envelope("slack", None, &s, (None, None), SystemTime::now());
        let get = |n: &str| e.headers.get(n).map(|v| v.as_str().to_owned());
        assert_eq!(
            get("ifox-route-slack_channel_ids").as_deref(),
            Some("C1,C2")
        );
        assert_eq!(get("ifox-route-slack_workspace_ids").as_deref(), Some("T1"));
        assert_eq!(get("ifox-route-service_names"), None);
        let routes = e
            .headers
            .iter()
            .filter(|(name, _)| AsRef::<str>::as_ref(name).starts_with("ifox-route-"))
            .count();
        assert_eq!(routes, 2, "one header per kind that has a safe value");
    }
}
