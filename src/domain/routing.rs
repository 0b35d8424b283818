//! Routing claims and the route lookup, pure.
//!
//! A team claims identifiers in its own raw config under `routing` (lists per kind). Claims are unique
//! per org (the database enforces it); the same identifier may be claimed in several orgs, and then
//! only an org hint can decide — otherwise the answer is "ambiguous", never a guess.

use super::ids::{NodeId, OrgId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Identifier kinds, in lookup priority order (the original's order; first match wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    IncidentioTeamIds,
    PagerdutyServiceIds,
    SlackChannelIds,
    SlackWorkspaceIds,
    TeamsChannelIds,
    GoogleChatSpaceIds,
    GithubRepos,
    VercelProjectIds,
    CoralogixTeamNames,
    IncidentioAlertSourceIds,
    ServiceNames,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 11] = [
        Self::IncidentioTeamIds,
        Self::PagerdutyServiceIds,
        Self::SlackChannelIds,
        Self::SlackWorkspaceIds,
        Self::TeamsChannelIds,
        Self::GoogleChatSpaceIds,
        Self::GithubRepos,
        Self::VercelProjectIds,
        Self::CoralogixTeamNames,
        Self::IncidentioAlertSourceIds,
        Self::ServiceNames,
    ];

    /// The key under `routing` in a team's config.
    pub fn key(self) -> &'static str {
        match self {
            Self::IncidentioTeamIds => "incidentio_team_ids",
            Self::PagerdutyServiceIds => "pagerduty_service_ids",
            Self::SlackChannelIds => "slack_channel_ids",
            Self::SlackWorkspaceIds => "slack_workspace_ids",
            Self::TeamsChannelIds => "teams_channel_ids",
            Self::GoogleChatSpaceIds => "google_chat_space_ids",
            Self::GithubRepos => "github_repos",
            Self::VercelProjectIds => "vercel_project_ids",
            Self::CoralogixTeamNames => "coralogix_team_names",
            Self::IncidentioAlertSourceIds => "incidentio_alert_source_ids",
            Self::ServiceNames => "service_names",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Trimmed; GitHub repos (`owner/name`) compare case-insensitively, so they are lowercased.
    pub fn normalise(self, value: &str) -> String {
        let trimmed = value.trim();
        match self {
            Self::GithubRepos => trimmed.to_ascii_lowercase(),
            _ => trimmed.to_owned(),
        }
    }
}

/// One identifier found in an event or claimed by a team.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: IdentifierKind, value: &str) -> Self {
        Self {
            kind,
            value: kind.normalise(value),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("`routing` must be an object of identifier lists")]
    NotAnObject,
    #[error("`routing.{0}` is not an identifier kind; known kinds: {known}", known = known_kinds())]
    UnknownKind(String),
    #[error("`routing.{0}` must be a list of strings")]
    NotAList(String),
    #[error("`routing.{0}` holds an empty identifier")]
    EmptyValue(String),
}

fn known_kinds() -> String {
    IdentifierKind::ALL.map(IdentifierKind::key).join(", ")
}

/// The claims a raw team config makes (normalised, without duplicates, in a stable order).
pub fn claims_of(raw: &Value) -> Result<BTreeSet<Identifier>, ClaimError> {
    let mut out = BTreeSet::new();
    let Some(routing) = raw.get("routing") else {
        return Ok(out);
    };
    let routing = routing.as_object().ok_or(ClaimError::NotAnObject)?;
    for (key, list) in routing {
        let kind =
            IdentifierKind::from_key(key).ok_or_else(|| ClaimError::UnknownKind(key.clone()))?;
        let list = list
            .as_array()
            .ok_or_else(|| ClaimError::NotAList(key.clone()))?;
        for item in list {
            let value = item
                .as_str()
                .ok_or_else(|| ClaimError::NotAList(key.clone()))?;
            let id = Identifier::new(kind, value);
            if id.value.is_empty() {
                return Err(ClaimError::EmptyValue(key.clone()));
            }
            out.insert(id);
        }
    }
    Ok(out)
}

/// A claim: an identifier owned by a team of an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub org_id: OrgId,
    pub team_id: NodeId,
    pub kind: IdentifierKind,
    pub value: String,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RouteOutcome {
    Found {
        org_id: OrgId,
        team_id: NodeId,
        matched: Identifier,
    },
    NotFound,
    Ambiguous {
        matched: Identifier,
        org_ids: Vec<OrgId>,
    },
}

/// Every claim, indexed by identifier. Built from the database, replaced or patched on change.
#[derive(Debug, Default, Clone)]
pub struct RouteIndex {
    by_identifier: HashMap<Identifier, Vec<(OrgId, NodeId)>>,
}

impl RouteIndex {
    pub fn from_claims(claims: impl IntoIterator<Item = Claim>) -> Self {
        let mut index = Self::default();
        for c in claims {
            index.insert(c);
        }
        index
    }

    pub fn insert(&mut self, c: Claim) {
        let owners = self
            .by_identifier
            .entry(Identifier {
                kind: c.kind,
                value: c.value,
            })
            .or_default();
        owners.retain(|(org, _)| *org != c.org_id);
        owners.push((c.org_id, c.team_id));
        owners.sort();
    }

    /// Replaces every claim of one team (after a config write).
    pub fn set_team_claims(&mut self, org: &OrgId, team: &NodeId, claims: &BTreeSet<Identifier>) {
        self.remove_team(org, team);
        for id in claims {
            self.insert(Claim {
                org_id: org.clone(),
                team_id: team.clone(),
                kind: id.kind,
                value: id.value.clone(),
            });
        }
    }

    pub fn remove_team(&mut self, org: &OrgId, team: &NodeId) {
        self.by_identifier.retain(|_, owners| {
            owners.retain(|(o, t)| !(o == org && t == team));
            !owners.is_empty()
        });
    }

    pub fn len(&self) -> usize {
        self.by_identifier.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_identifier.is_empty()
    }

    /// Tries the identifiers in kind priority order; the first that matches decides. `org_hints`, when
    /// not empty, restricts the candidates to those orgs; several orgs left → ambiguous.
    pub fn lookup(&self, identifiers: &[Identifier], org_hints: &[OrgId]) -> RouteOutcome {
        let mut ordered: Vec<&Identifier> = identifiers.iter().collect();
        ordered.sort_by_key(|id| id.kind);
        for id in ordered {
            let Some(owners) = self.by_identifier.get(id) else {
                continue;
            };
            let mut candidates = owners
                .iter()
                .filter(|(org, _)| org_hints.is_empty() || org_hints.contains(org));
            match (candidates.next(), candidates.next()) {
                (None, _) => continue,
                (Some((org, team)), None) => {
                    return RouteOutcome::Found {
                        org_id: org.clone(),
                        team_id: team.clone(),
                        matched: id.clone(),
                    };
                }
                (Some(_), Some(_)) => {
                    let org_ids = owners
                        .iter()
                        .filter(|(org, _)| org_hints.is_empty() || org_hints.contains(org))
                        .map(|(org, _)| org.clone())
                        .collect();
                    return RouteOutcome::Ambiguous {
                        matched: id.clone(),
                        org_ids,
                    };
                }
            }
        }
        RouteOutcome::NotFound
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
