//! Routing claims and the route lookup, pure.
//!
//! A team claims identifiers in its own raw config under `routing` (lists per kind). Claims are unique
//! per org (the database enforces it); the same identifier may be claimed in several orgs, and then
//! only an org hint can decide — otherwise the answer is "ambiguous", never a guess.
//!
//! Tenant-level kinds (a Slack workspace, a GitHub owner) name the identity a provider signs, so they
//! decide the org before any team-level identifier (a channel, a repo) is tried: such a claim is unique
//! across all orgs, and a team-level identifier of that provider then matches only claims of the org that
//! owns the event's tenant — or, when no org owns it, only orgs without tenant-level claims of that
//! provider. Without this, any org could claim another tenant's channel and receive its events.

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
    GithubOwners,
    VercelProjectIds,
    CoralogixTeamNames,
    IncidentioAlertSourceIds,
    ServiceNames,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 12] = [
        Self::IncidentioTeamIds,
        Self::PagerdutyServiceIds,
        Self::SlackChannelIds,
        Self::SlackWorkspaceIds,
        Self::TeamsChannelIds,
        Self::GoogleChatSpaceIds,
        Self::GithubRepos,
        Self::GithubOwners,
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
            Self::GithubOwners => "github_owners",
            Self::VercelProjectIds => "vercel_project_ids",
            Self::CoralogixTeamNames => "coralogix_team_names",
            Self::IncidentioAlertSourceIds => "incidentio_alert_source_ids",
            Self::ServiceNames => "service_names",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Trimmed; GitHub repos (`owner/name`) and owners compare case-insensitively, so they are
    /// lowercased.
    pub fn normalise(self, value: &str) -> String {
        let trimmed = value.trim();
        match self {
            Self::GithubRepos | Self::GithubOwners => trimmed.to_ascii_lowercase(),
            _ => trimmed.to_owned(),
        }
    }

    /// A tenant-level kind: the provider-signed tenant identity, claimable by one org only.
    pub fn is_tenant_level(self) -> bool {
        matches!(self, Self::SlackWorkspaceIds | Self::GithubOwners)
    }

    /// The tenant-level kind whose owner decides the org for identifiers of this (team-level) kind.
    pub fn tenant_kind(self) -> Option<IdentifierKind> {
        match self {
            Self::SlackChannelIds => Some(Self::SlackWorkspaceIds),
            Self::GithubRepos => Some(Self::GithubOwners),
            _ => None,
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

    /// The tenant namespace the value itself names (the owner of a GitHub repo `owner/name`). A Slack
    /// channel id names no workspace, so its tenant comes from the event instead.
    pub fn namespace(&self) -> Option<Identifier> {
        match self.kind {
            IdentifierKind::GithubRepos => {
                let (owner, _) = self.value.split_once('/')?;
                Some(Identifier::new(IdentifierKind::GithubOwners, owner))
            }
            _ => None,
        }
    }

    /// For a tenant-level identifier whose namespace holds team-level ones (a GitHub owner): their
    /// kind and the prefix of their values (`owner/`). The inverse of [`Identifier::namespace`].
    pub fn inner_prefix(&self) -> Option<(IdentifierKind, String)> {
        match self.kind {
            IdentifierKind::GithubOwners => {
                Some((IdentifierKind::GithubRepos, format!("{}/", self.value)))
            }
            _ => None,
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
    /// How many tenant-level claims of each tenant kind an org holds (the orgs that live in their
    /// own namespace of that provider).
    tenant_orgs: HashMap<IdentifierKind, HashMap<OrgId, usize>>,
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
        let kind = c.kind;
        let owners = self
            .by_identifier
            .entry(Identifier {
                kind,
                value: c.value,
            })
            .or_default();
        let replaced = owners.iter().any(|(org, _)| *org == c.org_id);
        owners.retain(|(org, _)| *org != c.org_id);
        if kind.is_tenant_level() && !replaced {
            *self
                .tenant_orgs
                .entry(kind)
                .or_default()
                .entry(c.org_id.clone())
                .or_default() += 1;
        }
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
        let tenant_orgs = &mut self.tenant_orgs;
        self.by_identifier.retain(|id, owners| {
            let before = owners.len();
            owners.retain(|(o, t)| !(o == org && t == team));
            if id.kind.is_tenant_level()
                && owners.len() < before
                && let Some(orgs) = tenant_orgs.get_mut(&id.kind)
                && let Some(n) = orgs.get_mut(org)
            {
                *n -= 1;
                if *n == 0 {
                    orgs.remove(org);
                }
            }
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
    /// not empty, restricts the candidates to those orgs (an org-scoped URL decides the org); otherwise
    /// the event's tenant does (see the module header). Several orgs left → ambiguous.
    pub fn lookup(&self, identifiers: &[Identifier], org_hints: &[OrgId]) -> RouteOutcome {
        // By kind; an event naming one identifier (the usual case) needs no sorted copy.
        let (single, sorted): ([&Identifier; 1], Vec<&Identifier>);
        let ordered: &[&Identifier] = match identifiers {
            [] => return RouteOutcome::NotFound,
            [one] => {
                single = [one];
                &single
            }
            many => {
                let mut v: Vec<&Identifier> = many.iter().collect();
                v.sort_by_key(|id| id.kind);
                sorted = v;
                &sorted
            }
        };
        for &id in ordered {
            let Some(owners) = self.by_identifier.get(id) else {
                continue;
            };
            let allowed = self.allowed_orgs(id, identifiers, org_hints);
            let admits = |org: &OrgId| allowed.as_ref().is_none_or(|a| a.admits(org));
            let mut candidates = owners.iter().filter(|(org, _)| admits(org));
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
                        .filter(|(org, _)| admits(org))
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

    /// Which orgs may own `id` for this event; `None` when any may (no hint, and no tenant identity of
    /// the identifier's provider in the event).
    fn allowed_orgs<'a>(
        &'a self,
        id: &Identifier,
        event: &[Identifier],
        org_hints: &'a [OrgId],
    ) -> Option<Allowed<'a>> {
        if !org_hints.is_empty() {
            return Some(Allowed::Only(org_hints.iter().collect()));
        }
        let tenant_kind = id.kind.tenant_kind()?;
        let namespace = id.namespace();
        let tenants: Vec<&Identifier> = match &namespace {
            Some(ns) => vec![ns],
            None => event.iter().filter(|t| t.kind == tenant_kind).collect(),
        };
        if tenants.is_empty() {
            return None;
        }
        let owners: Vec<&'a OrgId> = tenants
            .iter()
            .filter_map(|t| self.by_identifier.get(*t))
            .flatten()
            .map(|(org, _)| org)
            .collect();
        Some(if owners.is_empty() {
            Allowed::WithoutTenantClaims(self, tenant_kind)
        } else {
            Allowed::Owners(owners)
        })
    }
}

/// The orgs a team-level identifier may resolve in.
enum Allowed<'a> {
    /// The orgs an org-scoped URL named.
    Only(Vec<&'a OrgId>),
    /// The orgs owning the event's tenant.
    Owners(Vec<&'a OrgId>),
    /// The event's tenant is unclaimed: orgs living in a namespace of their own of this provider are
    /// out (their claims cannot reach into someone else's workspace).
    WithoutTenantClaims(&'a RouteIndex, IdentifierKind),
}

impl Allowed<'_> {
    fn admits(&self, org: &OrgId) -> bool {
        match self {
            Allowed::Only(orgs) => orgs.contains(&org),
            Allowed::Owners(orgs) => orgs.contains(&org),
            Allowed::WithoutTenantClaims(index, kind) => !index
                .tenant_orgs
                .get(kind)
                .is_some_and(|orgs| orgs.contains_key(org)),
        }
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
