//! Authorised scopes. A scope can only be made here, from a [`Principal`], and every tenancy operation
//! takes one: the org (and team) an operation touches come from the scope, never from raw input.
//!
//! Visibility rule: what a principal cannot see answers 404, exactly as if it did not exist; what it
//! can see but may not change answers 403.

use super::TenancyError;
use crate::domain::token::Principal;
use crate::domain::{NodeId, OrgId};

/// Who acts through a scope: decides what a write may touch and which other orgs an answer may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The global admin, the CLI, the provisioner: every org is visible.
    Global,
    /// An org's admin: its own org only.
    OrgAdmin,
    /// A team token writing its own node: no platform-owned keys.
    Team,
}

/// Administration of one org (global admin or that org's admin), or a team's own node through
/// [`TeamScope::as_org_scope`] (then with [`Role::Team`]).
#[derive(Debug, Clone)]
pub struct OrgScope {
    org: OrgId,
    actor: String,
    role: Role,
}

impl OrgScope {
    pub fn org(&self) -> &OrgId {
        &self.org
    }
    pub fn actor(&self) -> &str {
        &self.actor
    }
    pub fn role(&self) -> Role {
        self.role
    }
}

/// One team's own config (a team token).
#[derive(Debug, Clone)]
pub struct TeamScope {
    org: OrgId,
    team: NodeId,
    actor: String,
}

impl TeamScope {
    pub fn org(&self) -> &OrgId {
        &self.org
    }
    pub fn team(&self) -> &NodeId {
        &self.team
    }
    pub fn actor(&self) -> &str {
        &self.actor
    }
    /// The org scope of this team's own node, with [`Role::Team`] (so the shared write path refuses
    /// platform-owned keys).
    pub(crate) fn as_org_scope(&self) -> OrgScope {
        OrgScope {
            org: self.org.clone(),
            actor: self.actor.clone(),
            role: Role::Team,
        }
    }
}

pub(crate) fn org_scope(
    principal: &Principal,
    org: &OrgId,
    exists: bool,
) -> Result<OrgScope, TenancyError> {
    if !principal.sees_org(org) || !exists {
        return Err(TenancyError::not_found(format!("org {org}")));
    }
    if !principal.administers(org) {
        return Err(TenancyError::Forbidden(
            "a team token can only use /api/v1/config/me",
        ));
    }
    let role = match principal {
        Principal::GlobalAdmin => Role::Global,
        _ => Role::OrgAdmin,
    };
    Ok(OrgScope {
        org: org.clone(),
        actor: principal.actor(),
        role,
    })
}

/// For admin routes naming a node: a team token sees only its own team node (403 there), every
/// other node of any org is invisible to it (404).
pub fn node_visibility(
    principal: &Principal,
    org: &OrgId,
    node: &NodeId,
) -> Result<(), TenancyError> {
    match principal {
        Principal::Team {
            org: own_org, team, ..
        } if own_org == org && team == node => Err(TenancyError::Forbidden(
            "a team token can only use /api/v1/config/me",
        )),
        Principal::Team { .. } => Err(TenancyError::not_found(format!("node {node}"))),
        _ => Ok(()),
    }
}

/// The team scope of a team token; other principals have no "me".
pub fn team_scope(principal: &Principal) -> Result<TeamScope, TenancyError> {
    match principal {
        Principal::Team {
            org,
            team,
            token_id,
        } => Ok(TeamScope {
            org: org.clone(),
            team: team.clone(),
            actor: token_id.clone(),
        }),
        _ => Err(TenancyError::Forbidden(
            "/api/v1/config/me needs a team token",
        )),
    }
}

/// The CLI acts as global admin with a recognisable actor.
pub fn cli_scope(org: &OrgId) -> OrgScope {
    OrgScope {
        org: org.clone(),
        actor: "cli".to_owned(),
        role: Role::Global,
    }
}

/// The provisioner acts as global admin of the org it reconciles, under its own actor name.
pub fn provisioner_scope(org: &OrgId) -> OrgScope {
    OrgScope {
        org: org.clone(),
        actor: "provisioner".to_owned(),
        role: Role::Global,
    }
}
