//! Keeping the catalog in step with the database: full and per-org reloads, per-node refreshes.
//! Two reads of one org may race (a writer's own refresh and another replica's change notice); a
//! read applied while another was under way makes that one read again, so the later read wins.

use super::{CatNode, Catalog, Inner, Memo, TenancyError, cat_node};
use crate::domain::routing::{Identifier, RouteIndex};
use crate::domain::{NodeId, OrgId};
use crate::store::{Store, claims, nodes};
use std::collections::HashMap;
use std::sync::PoisonError;

/// Where a read of one org started ([`Inner::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    generation: u64,
    applied: u64,
}

/// How often a reload reads again because another read of its org was applied meanwhile; the last
/// read is applied whatever happened (every write refreshes after its own commit, so a loser of
/// that many races is followed by a newer read anyway).
const REREADS: usize = 8;

impl Inner {
    /// `generation` is only compared for the whole catalog ([`Catalog::reload_all`]).
    pub(super) fn mark(&self, org: Option<&OrgId>) -> Mark {
        Mark {
            generation: if org.is_none() { self.generation } else { 0 },
            applied: org.map_or(0, |o| self.applied.get(o).copied().unwrap_or(0)),
        }
    }

    fn applying(&mut self, org: &OrgId) {
        *self.applied.entry(org.clone()).or_default() += 1;
        self.generation += 1;
    }
}

impl Catalog {
    /// Replaces everything with what the database holds now.
    pub async fn reload_all(&self, store: &Store) -> Result<(), TenancyError> {
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::StoreError::from)?;
        for attempt in 1..=REREADS {
            let mark = self.read().mark(None);
            let rows = nodes::list_all(&mut conn).await?;
            let all_claims = claims::list_all(&mut conn).await?;
            let mut orgs: HashMap<OrgId, HashMap<NodeId, CatNode>> = HashMap::new();
            for row in &rows {
                orgs.entry(row.org_id.clone())
                    .or_default()
                    .insert(row.node_id.clone(), cat_node(row));
            }
            let mut inner = self.write();
            if inner.mark(None) != mark && attempt < REREADS {
                continue;
            }
            let mut applied = std::mem::take(&mut inner.applied);
            for org in inner.orgs.keys().chain(orgs.keys()) {
                *applied.entry(org.clone()).or_default() += 1;
            }
            let generation = inner.generation + 1;
            *inner = Inner {
                orgs,
                routes: RouteIndex::from_claims(all_claims),
                generation,
                applied,
            };
            break;
        }
        *self
            .effective
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Memo::default();
        Ok(())
    }

    /// Re-reads one org (after a structural change: delete, reparent).
    pub async fn reload_org(&self, store: &Store, org: &OrgId) -> Result<(), TenancyError> {
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::StoreError::from)?;
        for attempt in 1..=REREADS {
            let mark = self.read().mark(Some(org));
            let rows = nodes::list_org(&mut conn, org).await?;
            let org_claims = claims::list_org(&mut conn, org).await?;
            if self.apply_org(org, mark, rows, org_claims, attempt == REREADS) {
                break;
            }
        }
        self.invalidate(org);
        Ok(())
    }

    /// Applies a read of `org` that started at `mark`, unless another read of it was applied
    /// since (then `false`: read again) and `anyway` is not set.
    pub(super) fn apply_org(
        &self,
        org: &OrgId,
        mark: Mark,
        rows: Vec<nodes::NodeRow>,
        org_claims: Vec<crate::domain::routing::Claim>,
        anyway: bool,
    ) -> bool {
        let Some(mut inner) = self.write_unless_stale(org, mark, anyway) else {
            return false;
        };
        let old: Vec<NodeId> = inner
            .orgs
            .get(org)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for node in &old {
            inner.routes.remove_team(org, node);
        }
        if rows.is_empty() {
            inner.orgs.remove(org);
        } else {
            inner.orgs.insert(
                org.clone(),
                rows.iter()
                    .map(|r| (r.node_id.clone(), cat_node(r)))
                    .collect(),
            );
        }
        for c in org_claims {
            inner.routes.insert(c);
        }
        inner.applying(org);
        true
    }

    /// Re-reads one node and its claims (after a config write or a creation).
    pub async fn refresh_node(
        &self,
        store: &Store,
        org: &OrgId,
        node: &NodeId,
    ) -> Result<(), TenancyError> {
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::StoreError::from)?;
        for attempt in 1..=REREADS {
            let mark = self.read().mark(Some(org));
            let row = nodes::get(&mut conn, org, node).await?;
            let team_claims = claims::list_team(&mut conn, org, node).await?;
            if self.apply_node(org, node, mark, row, team_claims, attempt == REREADS) {
                break;
            }
        }
        self.invalidate(org);
        Ok(())
    }

    /// As [`Catalog::apply_org`], for one node.
    pub(super) fn apply_node(
        &self,
        org: &OrgId,
        node: &NodeId,
        mark: Mark,
        row: Option<nodes::NodeRow>,
        team_claims: Vec<crate::domain::routing::Claim>,
        anyway: bool,
    ) -> bool {
        let Some(mut inner) = self.write_unless_stale(org, mark, anyway) else {
            return false;
        };
        // A refresh that read the database before a newer write of this node was applied here
        // must not bring the old config back: config versions only grow (the last line of
        // defence when the rereads ran out).
        let newer_here = row.as_ref().is_some_and(|row| {
            inner
                .orgs
                .get(org)
                .and_then(|m| m.get(node))
                .is_some_and(|held| held.version > row.version && held.created_at == row.created_at)
        });
        if newer_here {
            return true;
        }
        match row {
            Some(row) => {
                inner
                    .orgs
                    .entry(org.clone())
                    .or_default()
                    .insert(node.clone(), cat_node(&row));
            }
            None => {
                if let Some(m) = inner.orgs.get_mut(org) {
                    m.remove(node);
                }
            }
        }
        let ids = team_claims
            .into_iter()
            .map(|c| Identifier {
                kind: c.kind,
                value: c.value,
            })
            .collect();
        inner.routes.set_team_claims(org, node, &ids);
        inner.applying(org);
        true
    }

    /// The catalog, to apply a read of `org` that started at `mark` — unless another read of it was
    /// applied since (`None`: read again) and `anyway` is not set.
    fn write_unless_stale(
        &self,
        org: &OrgId,
        mark: Mark,
        anyway: bool,
    ) -> Option<std::sync::RwLockWriteGuard<'_, Inner>> {
        let inner = self.write();
        (anyway || inner.mark(Some(org)) == mark).then_some(inner)
    }
}
