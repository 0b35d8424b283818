//! Kubernetes names of a team's objects and of its own namespace: unique per `(org, team)` across
//! every tenant, valid DNS labels within their length limit, matching the bridge's default
//! `agent-dedicated-*.<namespace>` and `agent-dedicated-*.<namespace>-*` patterns. Pure; the
//! provisioner names objects with them (`provision::build` re-exports them) and the bridge checks
//! that a dedicated URL is the team's own service ([`own_service`]).

use crate::domain::{NodeId, OrgId};
use sha2::{Digest, Sha256};

/// `name` as is when it fits `max`, else its first characters and a 10-hex-digit SHA-256 of the whole
/// name (distinct long names keep distinct results).
pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let keep = max.saturating_sub(11);
    // Names are built from DNS-label ids (ASCII), so any byte index is a character boundary; `get`
    // keeps a future non-ASCII name from panicking all the same.
    let head = name.get(..keep).unwrap_or(name).trim_end_matches('-');
    format!("{head}-{}", &digest[..10])
}

/// The prefix of every team object's name; the bridge's default allowed URL pattern is
/// `http://agent-dedicated-*…`.
pub const NAME_PREFIX: &str = "agent-dedicated";

/// A name for one tenant's `(org, team)` under `prefix`, at most `max` characters, that no other
/// `(org, team)` produces.
///
/// The design's `{prefix}-{org}-{team}` is kept when it is unambiguous: an org id without '-' ends
/// at the first '-' after the prefix, so the string splits back into exactly one `(org, team)` (org
/// `acme` team `x-y`). An org id with '-' could be split another way (org `acme-x` team `y` spells
/// the same string), so such a tenant, like any name past `max`, gets `{prefix}--{org}-{team}`, cut
/// to fit, then '-' and 10 hex digits of the SHA-256 of `{org}/{team}`. The double '-' keeps the two
/// families apart (a plain name has an org character right after the prefix), and the hash names
/// the pair ('/' is in no id). A deliberate 40-bit hash collision is still refused when applying:
/// the provisioner never touches an object labelled for another tenant.
pub fn tenant_name(prefix: &str, org: &OrgId, team: &NodeId, max: usize) -> String {
    let plain = format!("{prefix}-{org}-{team}");
    if !org.as_str().contains('-') && plain.len() <= max {
        return plain;
    }
    let digest = hex::encode(Sha256::digest(format!("{org}/{team}").as_bytes()));
    let full = format!("{prefix}--{org}-{team}");
    let head = full
        .get(..full.len().min(max.saturating_sub(11)))
        .unwrap_or(&full);
    format!("{}-{}", head.trim_end_matches('-'), &digest[..10])
}

/// The name of the team's Deployment, Service, Secret and optional objects.
pub fn object_name(org: &OrgId, team: &NodeId) -> String {
    tenant_name(NAME_PREFIX, org, team, 63)
}

/// The team's own namespace under `provision.namespace_per_team`: `{platform}-{org}-{team}` (the
/// platform namespace `kube.namespace` as prefix), by the same collision-free rule as
/// [`object_name`], so no two teams ever share one and it is a valid namespace name (a DNS label
/// of at most 63 characters).
pub fn team_namespace(platform: &str, org: &OrgId, team: &NodeId) -> String {
    tenant_name(platform, org, team, 63)
}

/// The port of every agent container and Service.
pub const AGENT_PORT: i32 = 8080;

/// Whether `host` may be the dedicated service of `org`/`team`: a host named like a dedicated agent
/// Service (`agent-dedicated-….svc.cluster.local`) must be that team's own, whatever namespace; any
/// other host is not a provisioned service and is left to the allow-list.
pub fn own_service(host: &str, org: &OrgId, team: &NodeId) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Some(first) = host.split('.').next() else {
        return true;
    };
    if !(first.starts_with(NAME_PREFIX) && host.ends_with(".svc.cluster.local")) {
        return true;
    }
    first == object_name(org, team)
}

/// `http://<name>.<namespace>.svc.cluster.local:8080`.
pub fn service_url(org: &OrgId, team: &NodeId, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}.svc.cluster.local:{AGENT_PORT}",
        object_name(org, team)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(org: &str, team: &str) -> (OrgId, NodeId) {
        (OrgId::parse(org).unwrap(), NodeId::parse(team).unwrap())
    }

    /// An org admin points its team at another tenant's dedicated Service: refused, in any
    /// namespace and however the host is spelled; its own Service and hosts that are not
    /// provisioned Services pass (the allow-list decides about those).
    #[test]
    fn a_dedicated_service_host_must_be_the_teams_own() {
        let (evil, t) = ids("evil", "t");
        let (victim, payments) = ids("victim", "payments");
        let theirs = format!(
            "{}.incidentfox.svc.cluster.local",
            object_name(&victim, &payments)
        );
        assert!(!own_service(&theirs, &evil, &t));
        assert!(!own_service(&theirs.to_uppercase(), &evil, &t));
        assert!(!own_service(&format!("{theirs}."), &evil, &t));
        let in_team_ns = format!(
            "{}.incidentfox-victim-payments.svc.cluster.local",
            object_name(&victim, &payments)
        );
        assert!(!own_service(&in_team_ns, &evil, &t));
        assert!(own_service(&theirs, &victim, &payments));
        let url = service_url(&evil, &t, "incidentfox");
        let host = url.trim_start_matches("http://").split(':').next().unwrap();
        assert!(own_service(host, &evil, &t));
        assert!(own_service("agents.example.com", &evil, &t));
        assert!(own_service("127.0.0.1", &evil, &t));
    }
}
