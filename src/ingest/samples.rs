//! Signed sample webhooks, one per provider, exactly as the provider would send them: what
//! `ifox dev send <provider>` posts to a local stack (and what a newcomer can copy). Pure: the
//! caller gives the secret, a unique id and the time.
//!
//! Every sample names the identifiers the dev team claims ([`DEV_CLAIMS`]), so it routes.

use super::verify;
use serde_json::{Value, json};

/// The org and team `ifox dev send` sets up.
pub const DEV_ORG: &str = "dev";
pub const DEV_TEAM: &str = "dev-team";

/// The routing claims of the dev team: one identifier per provider's sample.
pub fn dev_claims() -> Value {
    json!({
        "github_repos": ["dev/checkout"],
        "slack_channel_ids": ["C0DEV0001"],
        "pagerduty_service_ids": ["PDEV001"],
        "incidentio_alert_source_ids": ["01DEVALERTSRC"],
    })
}

/// Providers with a sample.
pub const PROVIDERS: [&str; 4] = ["github", "slack", "pagerduty", "incidentio"];

/// A webhook request: path, headers and body, and the event id ifox will store it under.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub event_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SampleError {
    #[error("no sample for provider {0:?}; providers: github, slack, pagerduty, incidentio")]
    Unknown(String),
    #[error("the incident.io secret must be a `whsec_` base64 key: {0}")]
    Secret(String),
}

/// The signed sample of `provider`, with delivery id `id` at Unix time `now`.
pub fn sample(provider: &str, secret: &str, id: &str, now: i64) -> Result<Sample, SampleError> {
    let json_body = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    match provider {
        "github" => {
            let body = json_body(json!({
                "action": "opened",
                "repository": {"full_name": "dev/checkout", "owner": {"login": "dev"}},
                "issue": {"number": 1, "title": "checkout latency is up 10x since the last deploy", "user": {"login": "newcomer"}},
                "sender": {"login": "newcomer"},
            }));
            Ok(Sample {
                path: "/webhooks/github",
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("x-github-event", "issues".into()),
                    ("x-github-delivery", id.into()),
                    ("x-hub-signature-256", verify::sign_github(secret, &body)),
                ],
                body,
                event_id: id.to_owned(),
            })
        }
        "slack" => {
            let body = json_body(json!({
                "type": "event_callback",
                "team_id": "T0DEV0001",
                "event_id": id,
                "event": {"type": "app_mention", "channel": "C0DEV0001", "user": "U0DEV0001",
                    "text": "<@U0BOT> why is checkout slow?", "ts": format!("{now}.000100")},
            }));
            Ok(Sample {
                path: "/webhooks/slack/events",
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("x-slack-request-timestamp", now.to_string()),
                    ("x-slack-signature", verify::sign_slack(secret, now, &body)),
                ],
                body,
                event_id: id.to_owned(),
            })
        }
        "pagerduty" => {
            let body = json_body(json!({"event": {
                "id": id, "event_type": "incident.triggered", "resource_type": "incident",
                "occurred_at": "2026-12-01T10:00:00Z",
                "data": {"id": "QDEV1", "type": "incident", "title": "Checkout error rate above 5%",
                    "urgency": "high", "service": {"id": "PDEV001"}},
            }}));
            Ok(Sample {
                path: "/webhooks/pagerduty",
                headers: vec![
                    ("content-type", "application/json".into()),
                    (
                        "x-pagerduty-signature",
                        verify::sign_pagerduty(secret, &body),
                    ),
                ],
                body,
                event_id: id.to_owned(),
            })
        }
        "incidentio" => {
            let body = json_body(json!({
                "event_type": "public_alert.alert_created_v1",
                "public_alert.alert_created_v1": {"id": "01DEVALERT", "alert_source_id": "01DEVALERTSRC",
                    "title": "Checkout p99 latency", "status": "firing"},
            }));
            let signature = verify::sign_standard(secret, id, now, &body)
                .map_err(|e| SampleError::Secret(e.to_string()))?;
            Ok(Sample {
                path: "/webhooks/incidentio",
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("webhook-id", id.into()),
                    ("webhook-timestamp", now.to_string()),
                    ("webhook-signature", signature),
                ],
                body,
                event_id: id.to_owned(),
            })
        }
        other => Err(SampleError::Unknown(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identifiers::from_payload;

    #[test]
    fn every_sample_names_an_identifier_the_dev_team_claims() {
        let secrets = [
            ("github", "dev-github-secret"),
            ("slack", "dev-slack-secret"),
            ("pagerduty", "dev-pagerduty-secret"),
            ("incidentio", "whsec_ZGV2LWluY2lkZW50aW8tc2VjcmV0"),
        ];
        let claims = dev_claims();
        for (provider, secret) in secrets {
            let s = sample(provider, secret, "id-1", 1_764_000_000).unwrap();
            let ids = from_payload(provider, &s.body);
            assert!(
                ids.iter().any(|i| claims[i.kind.key()]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|c| c == i.value.as_str()))),
                "{provider}: {ids:?}"
            );
            assert_eq!(s.event_id, "id-1");
        }
        assert!(matches!(
            sample("jira", "s", "i", 0),
            Err(SampleError::Unknown(_))
        ));
    }
}
