//! Routing identifiers read from a provider payload, for events that arrive without
//! `ifox-route-*` headers (published directly with the provider's body). The ingest writes those
//! headers for webhooks; this is the same reading, so both paths route alike.

use super::verdict::Event;
use crate::domain::routing::{Identifier, IdentifierKind};
use serde_json::Value;

/// Identifiers of a known source's payload (empty when the source or the payload says nothing).
pub fn identifiers(source: &str, ev: &Event<'_>) -> Vec<Identifier> {
    let Ok(body) = serde_json::from_slice::<Value>(ev.payload) else {
        return Vec::new();
    };
    let at = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let mut out = Vec::new();
    let mut push = |kind: IdentifierKind, value: Option<&str>| {
        if let Some(v) = value {
            out.push(Identifier::new(kind, v));
        }
    };
    match source {
        "slack" => {
            push(
                IdentifierKind::SlackChannelIds,
                at("/event/channel").or(at("/channel/id")),
            );
            push(
                IdentifierKind::SlackWorkspaceIds,
                at("/team_id").or(at("/team/id")),
            );
        }
        "github" => push(IdentifierKind::GithubRepos, at("/repository/full_name")),
        "pagerduty" => push(
            IdentifierKind::PagerdutyServiceIds,
            at("/event/data/service/id"),
        ),
        "incidentio" => {
            let kind = at("/event_type").unwrap_or_default();
            let inner = body.get(kind).unwrap_or(&Value::Null);
            let source_id = inner.pointer("/alert_source_id").and_then(Value::as_str);
            push(IdentifierKind::IncidentioAlertSourceIds, source_id);
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: &str, body: &str) -> Vec<Identifier> {
        identifiers(
            source,
            &Event {
                subject: "ifox.events.x.y",
                headers: None,
                payload: body.as_bytes(),
            },
        )
    }

    #[test]
    fn each_provider_payload_names_its_identifiers() {
        assert_eq!(
            ids("github", r#"{"repository":{"full_name":"Acme/API"}}"#),
            vec![Identifier::new(IdentifierKind::GithubRepos, "acme/api")]
        );
        assert_eq!(
            ids(
                "pagerduty",
                r#"{"event":{"data":{"service":{"id":"PSVC1"}}}}"#
            ),
            vec![Identifier::new(
                IdentifierKind::PagerdutyServiceIds,
                "PSVC1"
            )]
        );
        assert_eq!(
            ids("slack", r#"{"team_id":"T1","event":{"channel":"C1"}}"#),
            vec![
                Identifier::new(IdentifierKind::SlackChannelIds, "C1"),
                Identifier::new(IdentifierKind::SlackWorkspaceIds, "T1")
            ]
        );
        assert_eq!(
            ids(
                "incidentio",
                r#"{"event_type":"public_alert.alert_created_v1","public_alert.alert_created_v1":{"alert_source_id":"AS1"}}"#
            ),
            vec![Identifier::new(
                IdentifierKind::IncidentioAlertSourceIds,
                "AS1"
            )]
        );
        assert!(ids("github", "not json").is_empty());
    }
}
