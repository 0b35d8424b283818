//! From an accepted webhook to a CloudEvent in NATS binary mode: the subject and the headers. Pure.
//!
//! The contract (also in docs/ingest.md, for people who publish directly):
//! - subject `ifox.events.<source>.<type>`: `<type>` is `ce-type` lowercased with every character
//!   outside `[a-z0-9_-]` (dots included) turned into `_`, so the subject always has exactly four
//!   tokens (`ifox.events.pagerduty.*` matches every PagerDuty event) and `ce-type` keeps the
//!   provider's own spelling (`incident.triggered`);
//! - `ce-specversion: 1.0`, `ce-id` (the provider's delivery id), `ce-source` (the source name),
//!   `ce-type`, `ce-time` (RFC 3339, when ifox accepted it), `content-type`;
//! - `Nats-Msg-Id: <source>:<ce-id>`, so a provider's retry within the duplicate window is stored once;
//! - `traceparent` (W3C; the caller's when valid, else a new one) and `tracestate` when given;
//! - `ifox-org` when the org-scoped URL was used;
//! - `ifox-route-<kind>` per routing identifier found (kinds are the keys teams claim under
//!   `routing`, e.g. `ifox-route-slack_channel_ids`), comma-separated when several;
//! - the provider's own headers later stages need (e.g. `x-github-event`).

use crate::domain::OrgId;
use crate::domain::routing::IdentifierKind;
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
    pub routes: Vec<(IdentifierKind, String)>,
}

/// Where and how to publish.
#[derive(Debug)]
pub struct Envelope {
    pub subject: String,
    pub headers: async_nats::HeaderMap,
}

/// The longest `ce-id` or header value copied from a payload.
pub const MAX_VALUE_LEN: usize = 256;

// The header names ifox writes, built once: no parsing and no allocation per event.
const SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
const CE_ID: HeaderName = HeaderName::from_static("ce-id");
const CE_SOURCE: HeaderName = HeaderName::from_static("ce-source");
const CE_TYPE: HeaderName = HeaderName::from_static("ce-type");
const CE_TIME: HeaderName = HeaderName::from_static("ce-time");
const CONTENT_TYPE: HeaderName = HeaderName::from_static("content-type");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const ORG: HeaderName = HeaderName::from_static("ifox-org");

/// Builds the subject and headers. `traceparent`/`tracestate` are the incoming HTTP headers, if any.
pub fn envelope(
    source: &str,
    org: Option<&OrgId>,
    signal: &Signal,
    trace: (Option<&str>, Option<&str>),
    now: SystemTime,
) -> Envelope {
    let mut h = async_nats::HeaderMap::new();
    h.insert(SPECVERSION, "1.0");
    h.insert(CE_ID, signal.id.as_str());
    h.insert(CE_SOURCE, source);
    h.insert(CE_TYPE, signal.event_type.as_str());
    h.insert(CE_TIME, humantime::format_rfc3339_millis(now).to_string());
    h.insert(CONTENT_TYPE, signal.content_type);
    h.insert(NATS_MESSAGE_ID, format!("{source}:{}", signal.id));
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
    for (i, (kind, _)) in signal.routes.iter().enumerate() {
        if signal.routes[..i].iter().any(|(k, _)| k == kind) {
            continue;
        }
        let mut values = String::new();
        for (_, value) in signal.routes[i..].iter().filter(|(k, _)| k == kind) {
            if header_safe(value) {
                if !values.is_empty() {
                    values.push(',');
                }
                values.push_str(value);
            }
        }
        if !values.is_empty() {
            h.insert(format!("ifox-route-{}", kind.key()), values);
        }
    }
    for (name, value) in &signal.forward {
        if header_safe(value) {
            h.insert(HeaderName::from_static(name), value.as_str());
        }
    }
    Envelope {
        subject: format!("ifox.events.{source}.{}", subject_token(&signal.event_type)),
        headers: h,
    }
}

/// A subject token from a provider's event type: lowercase `[a-z0-9_-]`, anything else `_`, at most
/// 64 characters; empty becomes `unknown`.
pub fn subject_token(raw: &str) -> String {
    let token: String = raw
        .chars()
        .take(64)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "unknown".to_owned()
    } else {
        token
    }
}

/// Safe as a NATS header value and short: visible ASCII and spaces only.
pub fn header_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
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

    fn signal() -> Signal {
        Signal {
            event_type: "incident.triggered".into(),
            id: "01DEF".into(),
            content_type: "application/json",
            forward: vec![("x-webhook-id", "wh-1".into()), ("x-bad", "a\nb".into())],
            routes: vec![(IdentifierKind::PagerdutyServiceIds, "PSVC1".into())],
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
        assert_eq!(get("Nats-Msg-Id").as_deref(), Some("pagerduty:01DEF"));
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
    }

    #[test]
    fn routes_of_one_kind_share_a_header_and_unsafe_values_are_left_out() {
        let mut s = signal();
        s.routes = vec![
            (IdentifierKind::SlackChannelIds, "C1".into()),
            (IdentifierKind::SlackWorkspaceIds, "T1".into()),
            (IdentifierKind::SlackChannelIds, "bad\nvalue".into()),
            (IdentifierKind::SlackChannelIds, "C2".into()),
            (IdentifierKind::ServiceNames, "bad\nonly".into()),
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

    #[test]
    fn subject_tokens_are_lowercase_and_nats_safe() {
        assert_eq!(
            subject_token("public_alert.alert_created_v1"),
            "public_alert_alert_created_v1"
        );
        assert_eq!(subject_token("Pull Request>*"), "pull_request__");
        assert_eq!(subject_token(""), "unknown");
        assert_eq!(subject_token(&"x".repeat(100)).len(), 64);
    }
}
