//! Routing identifiers read from a built-in provider's payload: the one reading that both the ingest
//! (which writes them as `ifox-route-*` headers) and the router (which falls back to the payload for
//! events published without those headers) use, so both paths route alike. Pure.
//!
//! - Slack: `event.channel` or `channel.id` (channel), `team_id` or `team.id` (workspace); Events API
//!   bodies use the first spelling, interaction payloads the second.
//! - GitHub: `repository.full_name` (lowercased: GitHub names are case-insensitive) and the owner,
//!   `repository.owner.login` (else the `owner/` part of the full name): the tenant the router
//!   decides the org from.
//! - PagerDuty (webhooks V3): `event.data.service.id`.
//! - incident.io: for alert events the payload sits under the key named by `event_type`, and its
//!   `alert_source_id` is the identifier.
//!
//! A value is taken only when it can travel in a header ([`header_safe`]) as one item of the
//! header's comma-separated list (no `,`: the router would split it, so the payload and the header
//! would name different identifiers) and is not blank. GitHub
//! and PagerDuty are read into small typed structs, so the ingest deserialises only these fields.

use super::headers::header_safe;
use super::routing::{Identifier, IdentifierKind};
use serde::Deserialize;
use serde_json::Value;

/// The identifiers of a stored payload of `source` (empty for another source or an unreadable
/// payload). Slack interactions are stored as the form they arrived in; their `payload` field is read.
pub fn from_payload(source: &str, body: &[u8]) -> Vec<Identifier> {
    match source {
        "slack" => slack_stored(body).map(|v| slack(&v)).unwrap_or_default(),
        "github" => serde_json::from_slice::<Github>(body)
            .map(|b| b.identifiers())
            .unwrap_or_default(),
        "pagerduty" => serde_json::from_slice::<PagerdutyBody>(body)
            .ok()
            .and_then(|b| b.event.data)
            .map(|d| d.identifiers())
            .unwrap_or_default(),
        "incidentio" => serde_json::from_slice::<Value>(body)
            .map(|v| incidentio(&v))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A Slack body: an Events API callback or an interaction payload.
pub fn slack(body: &Value) -> Vec<Identifier> {
    let at = |a: &str, b: &str| str_at(body, a).or_else(|| str_at(body, b));
    [
        found(
            IdentifierKind::SlackChannelIds,
            at("/event/channel", "/channel/id"),
        ),
        found(
            IdentifierKind::SlackWorkspaceIds,
            at("/team_id", "/team/id"),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// An incident.io body.
pub fn incidentio(body: &Value) -> Vec<Identifier> {
    let inner = body
        .get("event_type")
        .and_then(Value::as_str)
        .and_then(|kind| body.get(kind));
    let source = inner.and_then(|p| str_at(p, "/alert_source_id"));
    found(IdentifierKind::IncidentioAlertSourceIds, source)
        .into_iter()
        .collect()
}

/// The part of a GitHub webhook body that names the route; the rest is skipped, not built.
#[derive(Debug, Deserialize)]
pub struct Github {
    repository: Option<GithubRepository>,
}

#[derive(Debug, Deserialize)]
struct GithubRepository {
    full_name: Option<String>,
    owner: Option<GithubOwner>,
}

#[derive(Debug, Deserialize)]
struct GithubOwner {
    login: Option<String>,
}

impl Github {
    pub fn identifiers(&self) -> Vec<Identifier> {
        let repo = self.repository.as_ref();
        let name = repo.and_then(|r| r.full_name.as_deref());
        let owner = repo
            .and_then(|r| r.owner.as_ref())
            .and_then(|o| o.login.as_deref())
            .or_else(|| name.and_then(|n| n.split_once('/')).map(|(o, _)| o));
        [
            found(IdentifierKind::GithubRepos, name),
            found(IdentifierKind::GithubOwners, owner),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// `event.data` of a PagerDuty V3 webhook, as far as routing reads it.
#[derive(Debug, Deserialize)]
pub struct PagerdutyData {
    service: Option<PagerdutyService>,
}

#[derive(Debug, Deserialize)]
struct PagerdutyService {
    id: Option<String>,
}

impl PagerdutyData {
    pub fn identifiers(&self) -> Vec<Identifier> {
        let id = self.service.as_ref().and_then(|s| s.id.as_deref());
        found(IdentifierKind::PagerdutyServiceIds, id)
            .into_iter()
            .collect()
    }
}

#[derive(Deserialize)]
struct PagerdutyBody {
    event: PagerdutyEvent,
}

#[derive(Deserialize)]
struct PagerdutyEvent {
    data: Option<PagerdutyData>,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A JSON body, else the JSON in the `payload` field of a form (Slack interactions).
fn slack_stored(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok().or_else(|| {
        let (_, field) = form_urlencoded::parse(body).find(|(k, _)| k == "payload")?;
        serde_json::from_str(&field).ok()
    })
}

fn found(kind: IdentifierKind, value: Option<&str>) -> Option<Identifier> {
    let id = Identifier::new(kind, value.filter(|v| header_safe(v) && !v.contains(','))?);
    (!id.value.is_empty()).then_some(id)
}

#[cfg(test)]
#[path = "identifiers_tests.rs"]
mod tests;
