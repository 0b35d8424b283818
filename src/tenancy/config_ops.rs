//! Config writes and reads: merge patch, full replace, rollback, locks, history, effective config.
//!
//! One write = one transaction: read the node, check `If-Match`, compute the new raw config (pure),
//! check ancestors' locks (pure), replace the team's claims (the database's uniqueness decides
//! concurrent writers), compare-and-set the config, append history, audit. Any refusal rolls it all back.

use super::{Effective, OrgScope, Tenancy, TenancyError, node_target};
use crate::domain::config::{self, LockViolation};
use crate::domain::routing::claims_of;
use crate::domain::{NodeId, NodeType, now_ms};
use crate::store::{StoreError, audit, claims, history, nodes};
use serde_json::{Value, json};
use std::collections::BTreeMap;
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

    /// Applies a write. `if_match` (a version) makes it conditional: a stale one answers 412.
    /// A write that changes nothing stores nothing and keeps the version.
    pub async fn write_config(
        &self,
        scope: &OrgScope,
        node: &NodeId,
        write: ConfigWrite,
        if_match: Option<i64>,
    ) -> Result<(Value, i64), TenancyError> {
        let org = scope.org();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let chain = nodes::chain(&mut tx, org, node).await?;
        let Some(current) = chain.last() else {
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
        let next = match &write {
            ConfigWrite::Patch(patch) => config::patched(&current.config, patch)?,
            ConfigWrite::Replace(body) => config::replaced(body)?,
            ConfigWrite::Rollback(version) => history::get(&mut tx, org, node, *version)
                .await?
                .ok_or_else(|| {
                    TenancyError::not_found(format!("version {version} of node {node}"))
                })?,
        };
        if next == current.config {
            return Ok((next, current.version));
        }
        let locks: Vec<(NodeId, Vec<String>)> = chain[..chain.len() - 1]
            .iter()
            .filter(|n| !n.locked_paths.is_empty())
            .map(|n| (n.node_id.clone(), n.locked_paths.clone()))
            .collect();
        config::check_locks(&locks, &current.config, &next).map_err(
            |LockViolation { path, locked_by }| TenancyError::Locked { path, locked_by },
        )?;
        if current.node_type == NodeType::Team {
            let wanted = claims_of(&next)?;
            if wanted != claims_of(&current.config).unwrap_or_default() {
                if let Some((identifier, team)) =
                    claims::first_conflict(&mut tx, org, node, &wanted).await?
                {
                    return Err(TenancyError::ClaimConflict { identifier, team });
                }
                if let Err(e) = claims::replace_team(&mut tx, org, node, &wanted).await {
                    return Err(self.claim_race(e, scope, node, &wanted, tx).await);
                }
            }
        }
        if !nodes::set_config(&mut tx, org, node, &next, current.version, now).await? {
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
        history::insert(&mut tx, org, node, &entry).await?;
        let detail = json!({"version": version, "diff": diff});
        audit::record(
            &mut tx,
            Some(org),
            scope.actor(),
            write.action(),
            &node_target(org, node),
            &detail,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.changed(org, Some(node)).await?;
        Ok((next, version))
    }

    /// A unique violation while inserting claims: someone claimed one of them after our check. Roll back
    /// and name the winner.
    async fn claim_race(
        &self,
        e: StoreError,
        scope: &OrgScope,
        node: &NodeId,
        wanted: &std::collections::BTreeSet<crate::domain::routing::Identifier>,
        tx: crate::store::Tx,
    ) -> TenancyError {
        if !e.is_unique_violation() {
            return e.into();
        }
        drop(tx);
        let found = async {
            let mut conn = self.conn().await?;
            Ok::<_, TenancyError>(
                claims::first_conflict(&mut conn, scope.org(), node, wanted).await?,
            )
        };
        match found.await {
            Ok(Some((identifier, team))) => TenancyError::ClaimConflict { identifier, team },
            Ok(None) | Err(_) => e.into(),
        }
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
