//! Target `webhook_payload`: signed bodies of any shape through each provider's `accept` (GitHub,
//! Slack events and interactions, PagerDuty, incident.io, generic), the CloudEvent the ingest builds
//! from what it accepts, and the routing identifiers read from payloads (`domain::identifiers`).

mod bodies;

use crate::common::{json_object, text, with_paths};
use bodies::{
    body, extra_headers, github_body, header_map, incidentio_body, pagerduty_body, slack_form,
    slack_value, type_leaf,
};
use http::{HeaderMap, HeaderValue};
use ifox::domain::OrgId;
use ifox::domain::headers::header_safe;
use ifox::domain::identifiers;
use ifox::domain::routing::Identifier;
use ifox::ingest::error::IngestError;
use ifox::ingest::event::{Signal, envelope};
use ifox::ingest::payload::{Incoming, Outcome};
use ifox::ingest::{generic, github, incidentio, pagerduty, slack, verify};
use ifox::router::inputs::inputs;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::SystemTime;

const SECRET: &str = "props-signing-secret";
const WHSEC: &str = "whsec_cHJvcHMtc3RhbmRhcmQtd2ViaG9va3Mta2V5";
const NOW: i64 = 1_750_000_000;

/// The routing identifiers of the event the router will read, from its headers.
fn routed(
    source: &str,
    org: Option<&OrgId>,
    signal: &Signal,
    trace: (&str, &str),
) -> Result<BTreeSet<Identifier>, TestCaseError> {
    let e = envelope(
        source,
        org,
        signal,
        (Some(trace.0), Some(trace.1)),
        SystemTime::now(),
    );
    let tokens: Vec<&str> = e.subject.split('.').collect();
    prop_assert_eq!(tokens.len(), 4, "subject {}", e.subject);
    let nats_tokens = tokens.iter().all(|t| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
    });
    prop_assert!(nats_tokens, "subject {}", e.subject);
    prop_assert_eq!(tokens[2], source);
    let pairs: Vec<(&str, &str)> = e
        .headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values.iter().map(move |v| (name, v.as_str()))
        })
        .collect();
    let read = inputs(pairs).map_err(|e| {
        TestCaseError::fail(format!("the router refuses the ingest's headers: {e}"))
    })?;
    Ok(read.identifiers.into_iter().collect())
}

/// What must hold of a webhook of a built-in provider: it is accepted or refused with a typed
/// error; an accepted one has an id and a type that can travel as NATS headers, and the router reads
/// the same identifiers from the event's headers as the ingest found, which are the ones it reads from
/// the payload when there are no headers (both paths route alike).
fn check_builtin(
    source: &str,
    answer: Result<Outcome, IngestError>,
    body: &[u8],
    trace: (&str, &str),
) -> Result<(), TestCaseError> {
    let signal = match answer {
        Ok(Outcome::Publish(signal)) => signal,
        Ok(Outcome::Reply(_)) => return Ok(()),
        Err(e) => {
            prop_assert!(!e.reason().is_empty());
            return Ok(());
        }
    };
    prop_assert!(header_safe(&signal.id), "ce-id {:?}", signal.id);
    prop_assert!(!signal.event_type.is_empty() && !signal.event_type.contains(['\r', '\n']));
    let found: BTreeSet<Identifier> = signal.routes.iter().cloned().collect();
    let from_payload: BTreeSet<Identifier> = identifiers::from_payload(source, body)
        .into_iter()
        .collect();
    prop_assert_eq!(
        &found,
        &from_payload,
        "ingest and router payload reading differ"
    );
    let org = OrgId::parse("acme").ok();
    prop_assert_eq!(
        &routed(source, org.as_ref(), &signal, trace)?,
        &found,
        "headers lose or add identifiers"
    );
    Ok(())
}

type Accept = fn(&[&str], &Incoming<'_>) -> Result<Outcome, IngestError>;

/// `body` delivered to `accept` with `extra` headers and the signature headers of `source` (the
/// Standard Webhooks ones with message id `id`).
fn delivered(
    accept: Accept,
    source: &str,
    id: &str,
    body: &[u8],
    extra: Vec<(String, Vec<u8>)>,
) -> Result<Outcome, IngestError> {
    let signature = match source {
        "github" => vec![(verify::GITHUB_SIGNATURE, verify::sign_github(SECRET, body))],
        "pagerduty" => vec![(
            verify::PAGERDUTY_SIGNATURE,
            verify::sign_pagerduty(SECRET, body),
        )],
        "slack" => vec![
            (verify::SLACK_TIMESTAMP, NOW.to_string()),
            (
                verify::SLACK_SIGNATURE,
                verify::sign_slack(SECRET, NOW, body),
            ),
        ],
        _ => vec![
            (verify::STANDARD_ID, id.to_owned()),
            (verify::STANDARD_TIMESTAMP, NOW.to_string()),
            (
                verify::STANDARD_SIGNATURE,
                verify::sign_standard(WHSEC, id, NOW, body).expect("a valid secret"),
            ),
        ],
    };
    let mut h = header_map(extra);
    for (name, value) in signature {
        h.insert(
            name,
            HeaderValue::from_str(&value).expect("signature headers are ASCII"),
        );
    }
    accept(&[SECRET, WHSEC], &incoming(&h, body))
}

fn incoming<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Incoming<'a> {
    Incoming {
        headers,
        body,
        now_unix: NOW,
    }
}

fn trace() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            text()
        ],
        text(),
    )
}

/// A signed delivery to one of the built-in providers: its source, its `accept`, the body, the
/// Standard Webhooks message id, and the other headers.
type Delivery = (
    &'static str,
    Accept,
    Vec<u8>,
    String,
    Vec<(String, Vec<u8>)>,
);

fn builtin_delivery() -> impl Strategy<Value = Delivery> {
    // Boxed: the five unboxed shapes nest deep enough to overflow a test thread's 2 MiB stack in
    // an unoptimised build while proptest builds a case.
    let json = "application/json";
    prop_oneof![
        (
            github_body(),
            extra_headers(
                json,
                &["x-github-event", "x-github-delivery", "x-github-hook-id"]
            )
        )
            .prop_map(|(b, e)| ("github", github::accept as Accept, b, String::new(), e))
            .boxed(),
        (
            body(slack_value()),
            extra_headers(json, &["x-slack-retry-num", "x-slack-retry-reason"])
        )
            .prop_map(|(b, e)| ("slack", slack::events as Accept, b, String::new(), e))
            .boxed(),
        (
            slack_form(),
            extra_headers("application/x-www-form-urlencoded", &["x-slack-retry-num"])
        )
            .prop_map(|(b, e)| (
                "slack",
                slack::interactions as Accept,
                b,
                String::new(),
                e
            )),
        (
            pagerduty_body(),
            extra_headers(json, &["x-webhook-id", "x-webhook-subscription"])
        )
            .prop_map(|(b, e)| (
                "pagerduty",
                pagerduty::accept as Accept,
                b,
                String::new(),
                e
            )),
        (
            incidentio_body(),
            "[!-~]{1,40}",
            extra_headers(json, &["x-other"])
        )
            .prop_map(|(b, id, e)| ("incidentio", incidentio::accept as Accept, b, id, e))
            .boxed(),
    ]
}

proptest! {
    /// Any signed delivery to a built-in provider (GitHub; Slack events and interactions; PagerDuty;
    /// incident.io), of any shape, is accepted or refused with a typed error, never a panic; what is
    /// published routes alike from the event's headers and from the payload (see `check_builtin`).
    #[test]
    fn builtin_deliveries_give_a_typed_answer_and_route_alike(
        (source, accept, body, id, extra) in builtin_delivery(),
        (tp, ts) in trace(),
    ) {
        let answer = delivered(accept, source, &id, &body, extra);
        check_builtin(source, answer, &body, (&tp, &ts))?;
    }

    /// Any signed generic webhook is accepted or refused with a typed error; the router reads from the
    /// event only identifiers the sender named in its `ifox-route-*` headers (split, trimmed), and
    /// `ifox-org` is never taken from the request.
    #[test]
    fn generic_webhooks_give_a_typed_answer_and_route_only_what_the_sender_named(
        body in body((json_object(), type_leaf(&["deploy.failed"])).prop_map(|(b, t)| with_paths(b, vec![("/type", t)]))),
        id in "[!-~]{1,40}",
        extra in extra_headers("application/json", &["ifox-org", "x-other"]),
        (tp, ts) in trace(),
    ) {
        let Ok(Outcome::Publish(signal)) = delivered(generic::accept, "datadog", &id, &body, extra) else {
            return Ok(());
        };
        prop_assert!(header_safe(&signal.id));
        let read = routed("datadog", None, &signal, (&tp, &ts))?;
        for got in &read {
            prop_assert!(
                signal.routes.iter().any(|r| r.kind == got.kind && r.value.to_ascii_lowercase().contains(&got.value.to_ascii_lowercase())),
                "{:?} was not sent", got
            );
        }
        let e = envelope("datadog", None, &signal, (None, None), SystemTime::now());
        prop_assert!(e.headers.get("ifox-org").is_none(), "ifox-org taken from the request");
    }

    /// Any stored bytes of any source give identifiers that can travel in a header (printable, not
    /// blank, trimmed), never a panic.
    #[test]
    fn identifiers_of_any_stored_payload_are_header_safe(
        source in prop::sample::select(vec!["slack", "github", "pagerduty", "incidentio", "datadog"]),
        body in prop_oneof![github_body(), body(slack_value()), slack_form(), pagerduty_body(), incidentio_body()],
    ) {
        for id in identifiers::from_payload(source, &body) {
            prop_assert!(header_safe(&id.value) && id.value.trim() == id.value, "{:?}", id);
        }
    }
}

/// Regression: a payload identifier holding a comma (`"channel": "C1,PSVC1"`) was published as the
/// header `ifox-route-slack_channel_ids: C1,PSVC1`, which the router reads as two channels, while the
/// payload fallback read one: the two paths routed differently. Such a value is left out by both.
#[test]
fn a_payload_value_with_a_comma_is_left_out_by_both_paths() {
    let body = br#"{"type":"event_callback","event_id":"Ev1","team_id":"T1","event":{"type":"app_mention","channel":"C1,PSVC1"}}"#;
    let extra = vec![("content-type".to_owned(), b"application/json".to_vec())];
    let Ok(Outcome::Publish(signal)) = delivered(slack::events, "slack", "", body, extra) else {
        panic!("a valid event is published");
    };
    let only_workspace = vec![Identifier::new(
        ifox::domain::routing::IdentifierKind::SlackWorkspaceIds,
        "T1",
    )];
    assert_eq!(signal.routes, only_workspace);
    assert_eq!(identifiers::from_payload("slack", body), only_workspace);
}
