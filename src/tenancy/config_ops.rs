//! Config writes and reads: merge patch, full replace, rollback, locks, history, effective config.
//!
//! One write path, [`write_config_in`], inside a caller's transaction (the API's own, or the
//! provisioner's admission): read the node, check `If-Match`, compute the new raw config (pure),
//! check ancestors' locks (pure), replace the team's claims (the database's uniqueness decides
//! concurrent writers), compare-and-set the config, append history, audit. Any refusal rolls it all
//! back.

use super::scope::Role;
use super::{Effective, OrgScope, Tenancy, TenancyError, node_target};
use crate::domain::config::{self, LockViolation};
use crate::domain::limits::{Limit, Limits};
use crate::domain::platform_keys;
use crate::domain::routing::{Identifier, claims_of};
use crate::domain::{NodeId, NodeType, now_ms};
use crate::store::{Conn, StoreError, audit, claims, history, nodes};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// For each effective leaf (a JSON Pointer), the node that set it.
pub type Sources = BTreeMap<String, NodeId>;

/// How a write changes the raw config.
#[derive(Debug, Clone)]
pub enum ConfigWrite {
    /// RFC 7386 merge patch (`PUT` and `PATCH`).
    Patch(Value),
    /// The body becomes the config.
    Replace(Value),
    /// Back to the config of an earlier version (as a new version).
    Rollback(i64),
}

impl ConfigWrite {
    fn action(&self) -> &'static str {
        match self {
            ConfigWrite::Patch(_) => "config.patch",
            ConfigWrite::Replace(_) => "config.replace",
            ConfigWrite::Rollback(_) => "config.rollback",
        }
    }
}

/// Parses an `If-Match` value: `"3"`, `3`, `W/"3"` or `*`.
pub fn parse_if_match(value: &str) -> Option<i64> {
    let v = value.trim();
    if v == "*" {
        return None;
    }
    v.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
        .or(Some(-1))
}

impl Tenancy {
    /// The raw config and its version.
    pub async fn get_config(
        &self,
        scope: &OrgScope,
        node: &NodeId,
    ) -> Result<(Value, i64), TenancyError> {
        let row = self.get_node(scope, node).await?;
        Ok((row.config, row.version))
    }

    /// Applies a write in its own transaction (see [`write_config_in`]), then refreshes the catalog.
    pub async fn write_config(
        &self,
        scope: &OrgScope,
        node: &NodeId,
        write: ConfigWrite,
        if_match: Option<i64>,
    ) -> Result<(Value, i64), TenancyError> {
        let mut tx = self.store.begin().await?;
        let written = write_config_in(
            &mut tx,
            scope,
            &self.limits,
            node,
            &write,
            if_match,
            now_ms(),
        )
        .await?;
        if written.changed {
            tx.commit().await.map_err(StoreError::from)?;
            self.changed(scope.org(), Some(node)).await?;
        }
        Ok((written.config, written.version))
    }

    /// Sets the paths an org or unit locks for every node below it.
    pub async fn set_locks(
        &self,
        scope: &OrgScope,
        node: &NodeId,
        paths: Vec<String>,
    ) -> Result<Vec<String>, TenancyError> {
        let org = scope.org();
        for p in &paths {
            config::check_pointer(p)?;
        }
        let mut paths = paths;
        paths.sort();
        paths.dedup();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let Some(row) = nodes::get(&mut tx, org, node).await? else {
            return Err(TenancyError::not_found(format!("node {node}")));
        };
        if row.node_type == NodeType::Team {
            return Err(TenancyError::invalid(
                "team_cannot_lock",
                "only an org or a unit can lock paths",
            ));
        }
        nodes::set_locks(&mut tx, org, node, &paths, now).await?;
        audit::record(
            &mut tx,
            Some(org),
            scope.actor(),
            "locks.set",
            &node_target(org, node),
            &json!({"paths": paths}),
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.changed(org, Some(node)).await?;
        Ok(paths)
    }

    pub async fn config_history(
        &self,
        scope: &OrgScope,
        node: &NodeId,
    ) -> Result<Vec<history::HistoryRow>, TenancyError> {
        let mut conn = self.conn().await?;
        if nodes::get(&mut conn, scope.org(), node).await?.is_none() {
            return Err(TenancyError::not_found(format!("node {node}")));
        }
        Ok(history::list(&mut conn, scope.org(), node).await?)
    }

    /// The effective config from the catalog, with sources when `explain`.
    pub fn effective(
        &self,
        scope: &OrgScope,
        node: &NodeId,
        explain: bool,
    ) -> Result<(Arc<Effective>, Option<Sources>), TenancyError> {
        let not_found = || TenancyError::not_found(format!("node {node}"));
        let eff = self
            .catalog
            .effective(scope.org(), node)
            .ok_or_else(not_found)?;
        let sources = if explain {
            let chain = self
                .catalog
                .raw_chain(scope.org(), node)
                .ok_or_else(not_found)?;
            let raws: Vec<_> = chain.into_iter().map(|(n, _, raw, _)| (n, raw)).collect();
            Some(eff.explain(&raws))
        } else {
            None
        };
        Ok((eff, sources))
    }

    /// The effective config computed from the database (no cache): one recursive query and a merge.
    pub async fn effective_from_db(
        &self,
        scope: &OrgScope,
        node: &NodeId,
    ) -> Result<Effective, TenancyError> {
        let mut conn = self.conn().await?;
        let chain = nodes::chain(&mut conn, scope.org(), node).await?;
        let links: Vec<_> = chain
            .iter()
            .map(|n| (n.node_id.clone(), n.node_type, &n.config, n.version))
            .collect();
        Effective::from_chain(scope.org(), &links)
            .ok_or_else(|| TenancyError::not_found(format!("node {node}")))
    }

    pub async fn list_claims(
        &self,
        scope: &OrgScope,
    ) -> Result<Vec<crate::domain::routing::Claim>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(claims::list_org(&mut conn, scope.org()).await?)
    }
}

/// What [`write_config_in`] left: the raw config and its version, and whether anything was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub config: Value,
    pub version: i64,
    pub changed: bool,
}

/// The one config write, inside the caller's transaction: `if_match` (a version) makes it
/// conditional (a stale one answers 412); the new raw config is computed (pure), ancestors' locks
/// checked (pure), a team's claims replaced (409 `claim_conflict` naming the owner, also when a
/// concurrent writer won the race), the config compare-and-set, history appended, audited. A write
/// that changes nothing stores nothing and keeps the version.
///
/// `limits` bound the document: its nesting is checked before anything recursive (the merge, the
/// diff, the lock check) runs over it, then the stored config's nesting and size, and a team's
/// claims.
///
/// The caller commits, then calls `Tenancy::changed` so the catalog sees the write.
pub async fn write_config_in(
    conn: &mut Conn,
    scope: &OrgScope,
    limits: &Limits,
    node: &NodeId,
    write: &ConfigWrite,
    if_match: Option<i64>,
    now: i64,
) -> Result<Written, TenancyError> {
    let org = scope.org();
    if let ConfigWrite::Patch(body) | ConfigWrite::Replace(body) = write {
        limits.check_config(body)?;
    }
    let chain = nodes::chain(conn, org, node).await?;
    let Some((current, ancestors)) = chain.split_last() else {
        return Err(TenancyError::not_found(format!("node {node}")));
    };
    if let Some(expected) = if_match
        && expected != current.version
    {
        return Err(TenancyError::VersionMismatch {
            current: current.version,
            expected: expected.to_string(),
        });
    }
    let next = match write {
        ConfigWrite::Patch(patch) => config::patched(&current.config, patch)?,
        ConfigWrite::Replace(body) => config::replaced(body)?,
        ConfigWrite::Rollback(version) => history::get(conn, org, node, *version)
            .await?
            .ok_or_else(|| {
                TenancyError::not_found(format!(
                    "version {version} of node {node} (only the newest limits.config_history versions are kept)"
                ))
            })?,
    };
    // Decided before the "nothing changed" shortcut: a team naming a platform key is refused even
    // with its current value, so the answer never tells it whether it guessed that value.
    if scope.role() == Role::Team {
        let written = match write {
            ConfigWrite::Patch(body) | ConfigWrite::Replace(body) => body,
            ConfigWrite::Rollback(_) => &Value::Null,
        };
        if let Some(key) = platform_keys::first_touched(&current.config, &next, written) {
            return Err(TenancyError::PlatformOwnedKey { key });
        }
    }
    if next == current.config {
        return Ok(Written {
            config: next,
            version: current.version,
            changed: false,
        });
    }
    // A rollback brings back a document stored under the limits of its day; it must fit today's.
    limits.check_config(&next)?;
    let locks: Vec<(NodeId, Vec<String>)> = ancestors
        .iter()
        .filter(|n| !n.locked_paths.is_empty())
        .map(|n| (n.node_id.clone(), n.locked_paths.clone()))
        .collect();
    config::check_locks(&locks, &current.config, &next)
        .map_err(|LockViolation { path, locked_by }| TenancyError::Locked { path, locked_by })?;
    if current.node_type == NodeType::Team {
        let wanted = claims_of(&next)?;
        if wanted != claims_of(&current.config).unwrap_or_default() {
            // Only a change of the claims is bounded: a team over a since-lowered limit can still
            // write its other keys.
            limits.check(Limit::ClaimsPerTeam, wanted.len() as u64)?;
            replace_claims(conn, scope, node, &wanted).await?;
        }
    }
    if !nodes::set_config(conn, org, node, &next, current.version, now).await? {
        return Err(TenancyError::VersionMismatch {
            current: current.version + 1,
            expected: current.version.to_string(),
        });
    }
    let version = current.version + 1;
    let diff = config::diff(&current.config, &next);
    let entry = history::HistoryRow {
        version,
        config: next.clone(),
        diff: diff.clone(),
        actor: scope.actor().to_owned(),
        at: now,
    };
    history::insert(conn, org, node, &entry).await?;
    history::prune(conn, org, node, version, limits.config_history).await?;
    let detail = json!({"version": version, "diff": diff});
    let target = node_target(org, node);
    audit::record(
        conn,
        Some(org),
        scope.actor(),
        write.action(),
        &target,
        &detail,
        now,
    )
    .await?;
    Ok(Written {
        config: next,
        version,
        changed: true,
    })
}

/// Replaces a team's claims, or names the owner of one of them: another team of the org, or another
/// org owning the identifier's tenant (a workspace or GitHub owner is one org's; a repo of an owner
/// another org claims is that org's namespace). A concurrent writer can claim one between the check
/// and the insert; the database's uniqueness decides, and the insert runs in a savepoint so that the
/// transaction stays usable to name the winner (on PostgreSQL a failed statement aborts the whole
/// transaction), whoever's transaction it is.
async fn replace_claims(
    conn: &mut Conn,
    scope: &OrgScope,
    node: &NodeId,
    wanted: &BTreeSet<Identifier>,
) -> Result<(), TenancyError> {
    let org = scope.org();
    if let Some(found) = first_owner(conn, scope, node, wanted).await? {
        return Err(found);
    }
    let mut savepoint = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    match claims::replace_team(&mut savepoint, org, node, wanted).await {
        Ok(()) => Ok(savepoint.commit().await.map_err(StoreError::from)?),
        Err(e) if e.is_unique_violation() => {
            savepoint.rollback().await.map_err(StoreError::from)?;
            match first_owner(conn, scope, node, wanted).await? {
                Some(found) => Err(found),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The refusal for the first wanted identifier someone else owns, if any. Another org is named only to
/// a caller who sees every org; an org admin or a team learns "another tenant".
async fn first_owner(
    conn: &mut Conn,
    scope: &OrgScope,
    node: &NodeId,
    wanted: &BTreeSet<Identifier>,
) -> Result<Option<TenancyError>, TenancyError> {
    if let Some((identifier, team)) =
        claims::first_conflict(conn, scope.org(), node, wanted).await?
    {
        return Ok(Some(TenancyError::ClaimConflict { identifier, team }));
    }
    let foreign = claims::first_foreign(conn, scope.org(), wanted).await?;
    if let Some((identifier, org)) = foreign {
        return Ok(Some(TenancyError::ForeignClaim {
            identifier,
            org: (scope.role() == Role::Global).then_some(org),
        }));
    }
    // A new tenant-level claim (a GitHub owner) over identifiers another org already routes (its
    // repos) would take that org's events: nothing proves who owns the owner, so only the global
    // admin may decide it (e.g. for the owner's rightful org against a squatter of its repos). Claims
    // the team already holds are left alone, so such a team can still rewrite its config.
    if scope.role() != Role::Global {
        let held = claims::list_team(conn, scope.org(), node).await?;
        for id in wanted.iter().filter(|id| id.kind.is_tenant_level()) {
            let already = held
                .iter()
                .any(|c| c.kind == id.kind && c.value == id.value);
            if !already
                && claims::foreign_inside(conn, scope.org(), id)
                    .await?
                    .is_some()
            {
                return Ok(Some(TenancyError::ForeignClaim {
                    identifier: id.clone(),
                    org: None,
                }));
            }
        }
    }
    Ok(None)
}
