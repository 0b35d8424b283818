//! Target `event_headers`: the CloudEvents headers of direct publishes to `ifox.events.>`, as the
//! router reads them (`router::inputs`) and decides on them (`router::verdict`, over the fixture's
//! catalog).

use crate::common::{bytes, catalog, header_value_bytes, identifier_kind, identifier_value, text};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use ifox::domain::OrgId;
use ifox::domain::headers::{
    CE_ID, CE_SOURCE, CE_TIME, CE_TYPE, ORG, REPLAY_FORCE, REPLAY_OF, REPLAY_SIG, route_header,
};
use ifox::router::inputs::{InputError, inputs};
use ifox::router::verdict::{Event, Verdict, verdict};
use proptest::prelude::*;
use std::str::FromStr;

/// A header name a publisher may set: the contract's, route headers of every kind (any case), or
/// anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, ORG, REPLAY_OF, REPLAY_FORCE, REPLAY_SIG, "Ifox-Org", "content-type"])
            .prop_map(str::to_owned),
        3 => (identifier_kind(), any::<bool>()).prop_map(|(k, upper)| {
            let n = route_header(k);
            if upper { n.to_ascii_uppercase() } else { n }
        }),
        1 => "ifox-route-[a-z_]{0,12}",
        1 => text(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => identifier_value(),
        1 => prop::collection::vec(identifier_value(), 1..4).prop_map(|v| v.join(",")),
        1 => prop::sample::select(vec!["acme", "globex", "Acme Corp", "true", "2026-12-01T10:00:00Z", "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00Z"])
            .prop_map(str::to_owned),
        1 => header_value_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => text(),
    ]
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((name(), value()), 0..10)
}

/// The headers a NATS message can carry (what the server hands the router): pairs whose name or
/// value NATS could not carry are dropped, as a publisher could not have sent them.
fn nats_headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::from_str(n), HeaderValue::from_str(v)) {
            h.append(n, v);
        }
    }
    h
}

fn subject() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ("(github|slack|pagerduty|incidentio|datadog)", "[a-z_.]{0,12}").prop_map(|(s, t)| format!("ifox.events.{s}.{t}")),
        1 => text(),
    ]
}

proptest! {
    /// Any header pairs give routing inputs or a typed error, never a panic; every identifier read
    /// is trimmed and not blank and holds no comma (values are comma-separated lists), and every org
    /// hint is a valid org id named by an `ifox-org` header.
    #[test]
    fn any_headers_give_clean_inputs_or_a_typed_error(pairs in pairs()) {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        match inputs(borrowed) {
            Ok(found) => {
                for id in &found.identifiers {
                    prop_assert!(!id.value.is_empty() && id.value.trim() == id.value && !id.value.contains(','), "{:?}", id);
                }
                for org in &found.org_hints {
                    prop_assert!(OrgId::parse(org.as_str()).is_ok());
                    prop_assert!(pairs.iter().any(|(n, v)| n.eq_ignore_ascii_case(ORG) && v.trim() == org.as_str()));
                }
            }
            Err(InputError::UnknownKind(n)) => prop_assert!(n.to_ascii_lowercase().starts_with("ifox-route-")),
            Err(InputError::BadOrg(v)) => prop_assert!(OrgId::parse(v.trim()).is_err()),
        }
    }

    /// Reading is independent of the order headers arrive in (a NATS header map has none to rely on).
    #[test]
    fn the_order_of_headers_does_not_change_what_is_read(pairs in pairs(), seed in any::<u64>()) {
        let mut shuffled = pairs.clone();
        let n = shuffled.len();
        if n > 1 {
            shuffled.swap((seed % n as u64) as usize, ((seed >> 32) % n as u64) as usize);
        }
        let read = |p: &[(String, String)]| {
            inputs(p.iter().map(|(n, v)| (n.as_str(), v.as_str()))).map(|mut f| {
                f.identifiers.sort();
                f.org_hints.sort();
                f
            })
        };
        // An error names the first bad header, which may be another one after the swap.
        match (read(&pairs), read(&shuffled)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert_eq!(a.is_err(), b.is_err()),
        }
    }

    /// Any event a publisher can put on NATS (any subject, headers, payload) gets a verdict, never a
    /// panic: a dispatch names a run of a team of the fixture on that team's subject, with the event's
    /// id, a source and the event's type (`ce-type`, else the subject's fourth token), and the same event always names the same run (redeliveries collapse).
    #[test]
    fn any_direct_publish_gets_a_verdict_and_the_same_one_twice(
        subject in subject(),
        pairs in pairs(),
        payload in bytes(128),
    ) {
        let headers = nats_headers(&pairs);
        let ev = Event { subject: &subject, headers: Some(&headers), payload: &payload };
        let first = verdict(catalog(), &ev);
        prop_assert_eq!(&first, &verdict(catalog(), &ev));
        match first {
            Verdict::Dispatch { run, subject: target } => {
                prop_assert_eq!(target, format!("ifox.agent.{}.{}.{}", run.deployment.mode(), run.org_id, run.team_id));
                prop_assert!(["payments", "search", "ops"].contains(&run.team_id.as_str()));
                prop_assert!(!run.source.is_empty());
                prop_assert_eq!(Some(run.source.as_str()), ev.source());
                // The source is the subject's (what NATS permissions grant), whatever the headers say.
                prop_assert_eq!(Some(run.source.as_str()), subject.split('.').nth(2));
                prop_assert_eq!(Some(run.event_type.as_str()), ev.event_type());
                prop_assert_eq!(Some(run.event_id.as_str()), ev.header(CE_ID));
            }
            Verdict::Permanent { reason, .. } => prop_assert!(
                ["invalid_event", "no_route", "ambiguous_route", "invalid_config"].contains(&reason)
            ),
            Verdict::Transient { .. } => {}
        }
    }
}
