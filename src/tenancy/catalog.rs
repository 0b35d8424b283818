//! The in-memory catalog: every node (parent, raw config, version) and the route index, loaded from
//! the database and refreshed on change, so route lookups and effective configs are memory reads.
//!
//! Freshness: a write through this process refreshes the node it touched before the write returns;
//! other processes' writes arrive by the periodic reload (`tenancy.reload_interval`) or, when wired,
//! a change notice. Effective configs are memoised per node and dropped for the whole org on any change
//! in it (a unit's change reaches every team below). How reads are applied (and two racing reads of
//! one org resolved): `catalog_sync.rs`.

use super::TenancyError;
use crate::domain::config;
use crate::domain::routing::{Identifier, RouteIndex, RouteOutcome};
use crate::domain::{NodeId, NodeType, OrgId};
use crate::store::nodes;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

#[derive(Debug, Clone)]
struct CatNode {
    parent: Option<NodeId>,
    /// Creation time (Unix ms); the org root's tells one org from another of the same id.
    created_at: i64,
    node_type: NodeType,
    config: Arc<Value>,
    version: i64,
}

/// One link of a node's chain: id, type, raw config, version.
pub type ChainLink = (NodeId, NodeType, Arc<Value>, i64);

#[derive(Default)]
struct Inner {
    orgs: HashMap<OrgId, HashMap<NodeId, CatNode>>,
    routes: RouteIndex,
    /// Bumped on every change, so a memo computed from older data is never stored after a change.
    generation: u64,
    /// Reads of each org applied so far (never reset): a read applied while another read of the
    /// same org was under way makes that one read again, so the later of two racing reads wins
    /// (a change notice's reload that read before an org was deleted and created again must not
    /// put the deleted org back over the new one).
    applied: HashMap<OrgId, u64>,
}

/// Some keys of a node's effective config ([`Catalog::effective_keys`]): what the router and the
/// bridge read per event, without the chain an [`Effective`] carries.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveKeys {
    /// An object holding the asked keys the chain sets, merged as in the effective config.
    pub config: Value,
    /// As [`Effective::version`].
    pub version: String,
}

/// A node's effective config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    pub org_id: OrgId,
    pub node_id: NodeId,
    pub node_type: NodeType,
    pub config: Value,
    /// The versions of the chain from the org down, joined by `.` (changes whenever any link changes).
    pub version: String,
    /// `(node, version)` from the org down to the node.
    pub chain: Vec<(NodeId, i64)>,
}

impl Effective {
    /// For each effective leaf (JSON Pointer), the node that set it.
    pub fn explain(&self, raws: &[(NodeId, Arc<Value>)]) -> BTreeMap<String, NodeId> {
        let chain: Vec<(NodeId, &Value)> =
            raws.iter().map(|(n, v)| (n.clone(), v.as_ref())).collect();
        config::explain(&self.config, &chain)
    }

    /// Builds the effective config from a chain of `(node, type, raw, version)`, org first.
    pub fn from_chain(org: &OrgId, chain: &[(NodeId, NodeType, &Value, i64)]) -> Option<Effective> {
        let (node_id, node_type, _, _) = chain.last()?;
        Some(Effective {
            org_id: org.clone(),
            node_id: node_id.clone(),
            node_type: *node_type,
            config: config::effective(chain.iter().map(|(_, _, raw, _)| *raw)),
            version: chain
                .iter()
                .map(|(_, _, _, v)| v.to_string())
                .collect::<Vec<_>>()
                .join("."),
            chain: chain.iter().map(|(n, _, _, v)| (n.clone(), *v)).collect(),
        })
    }
}

/// At most this many memoised effective configs (a team's can weigh tens of KiB); past it the memo
/// starts over, which keeps memory bounded for thousands of teams and costs one recomputation each.
pub const EFFECTIVE_MEMO_LIMIT: usize = 4096;

/// At most this many memoised key subsets ([`Catalog::effective_keys`], a few hundred bytes each:
/// ~16 MiB at most); past it that memo starts over.
pub const KEYS_MEMO_LIMIT: usize = 65_536;

/// The in-memory catalog.
///
/// Its locks are taken through `unwrap_or_else(PoisonError::into_inner)`: a panic while one was held
/// (a request handler's, which the catch-panic layer survives) must not turn every later lookup into
/// a panic too. What a poisoned lock guards is still whole (each section only assigns or inserts),
/// and the periodic reload replaces all of it anyway.
#[derive(Default)]
pub struct Catalog {
    inner: RwLock<Inner>,
    effective: RwLock<Memo>,
}

#[derive(Default)]
struct Memo {
    by_org: HashMap<OrgId, HashMap<NodeId, Arc<Effective>>>,
    len: usize,
    /// [`Catalog::effective_keys`] answers, per org, by node and key set (a few hundred bytes each).
    keys_by_org: HashMap<OrgId, HashMap<(NodeId, KeySet), Arc<EffectiveKeys>>>,
    keys_len: usize,
}

/// A hot path's fixed set of config keys (a constant of its caller).
pub type KeySet = &'static [&'static str];

fn cat_node(row: &nodes::NodeRow) -> CatNode {
    CatNode {
        parent: row.parent_id.clone(),
        created_at: row.created_at,
        node_type: row.node_type,
        config: Arc::new(row.config.clone()),
        version: row.version,
    }
}

impl Catalog {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn invalidate(&self, org: &OrgId) {
        let mut memo = self
            .effective
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(gone) = memo.by_org.remove(org) {
            memo.len = memo.len.saturating_sub(gone.len());
        }
        if let Some(gone) = memo.keys_by_org.remove(org) {
            memo.keys_len = memo.keys_len.saturating_sub(gone.len());
        }
    }

    /// Which org of this id the catalog holds (its root's creation time, Unix ms), if any: an org
    /// deleted and created again is another incarnation, so nothing cached for the first one (its
    /// webhook secrets) serves the second.
    pub fn org_incarnation(&self, org: &OrgId) -> Option<i64> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .orgs
            .get(org)
            .and_then(|m| m.get(&NodeId::root_of(org)))
            .map(|root| root.created_at)
    }

    pub fn has_org(&self, org: &OrgId) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .orgs
            .contains_key(org)
    }

    pub fn has_node(&self, org: &OrgId, node: &NodeId) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .orgs
            .get(org)
            .is_some_and(|m| m.contains_key(node))
    }

    /// A node's type, when it exists.
    pub fn node_type(&self, org: &OrgId, node: &NodeId) -> Option<NodeType> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .orgs
            .get(org)?
            .get(node)
            .map(|n| n.node_type)
    }

    pub fn route(&self, identifiers: &[Identifier], org_hints: &[OrgId]) -> RouteOutcome {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .routes
            .lookup(identifiers, org_hints)
    }

    pub fn claim_count(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .routes
            .len()
    }

    /// The chain of raw configs from the org down to `node` (for explain).
    pub fn raw_chain(&self, org: &OrgId, node: &NodeId) -> Option<Vec<ChainLink>> {
        self.raw_chain_at(org, node).map(|(chain, _)| chain)
    }

    fn raw_chain_at(&self, org: &OrgId, node: &NodeId) -> Option<(Vec<ChainLink>, u64)> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let nodes = inner.orgs.get(org)?;
        let mut chain = Vec::new();
        let mut cursor = Some(node.clone());
        while let Some(id) = cursor {
            let n = nodes.get(&id)?;
            chain.push((id, n.node_type, n.config.clone(), n.version));
            cursor = n.parent.clone();
            if chain.len() > 64 {
                return None;
            }
        }
        chain.reverse();
        Some((chain, inner.generation))
    }

    /// Only `keys` of a node's effective config (same merge rules), without building the whole of
    /// it: what a hot path that reads a few settings per event needs. Memoised per node and key set
    /// (the router and the bridge ask this for every event; a chain walk and merge is ~2 µs, the memo
    /// a lookup), invalidated with the effective configs.
    pub fn effective_keys(
        &self,
        org: &OrgId,
        node: &NodeId,
        keys: KeySet,
    ) -> Option<Arc<EffectiveKeys>> {
        let memo_key = (node.clone(), keys);
        if let Some(hit) = self
            .effective
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys_by_org
            .get(org)
            .and_then(|m| m.get(&memo_key))
        {
            return Some(hit.clone());
        }
        let (computed, generation) = {
            let inner = self.read();
            (
                Arc::new(keys_of(&inner, org, node, keys)?),
                inner.generation,
            )
        };
        let mut memo = self
            .effective
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // As in `effective`: invalidation takes this lock after bumping the generation.
        if self.read().generation == generation {
            if memo.keys_len >= KEYS_MEMO_LIMIT {
                memo.keys_by_org = HashMap::new();
                memo.keys_len = 0;
            }
            if memo
                .keys_by_org
                .entry(org.clone())
                .or_default()
                .insert(memo_key, computed.clone())
                .is_none()
            {
                memo.keys_len += 1;
            }
        }
        Some(computed)
    }

    /// The effective config of a node, memoised.
    pub fn effective(&self, org: &OrgId, node: &NodeId) -> Option<Arc<Effective>> {
        if let Some(hit) = self
            .effective
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_org
            .get(org)
            .and_then(|m| m.get(node))
        {
            return Some(hit.clone());
        }
        let (chain, generation) = self.raw_chain_at(org, node)?;
        let borrowed: Vec<_> = chain
            .iter()
            .map(|(n, t, raw, v)| (n.clone(), *t, raw.as_ref(), *v))
            .collect();
        let computed = Arc::new(Effective::from_chain(org, &borrowed)?);
        let mut memo = self
            .effective
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Invalidation takes this lock after bumping the generation, so checking here is enough.
        if self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
            == generation
        {
            if memo.len >= EFFECTIVE_MEMO_LIMIT {
                // Only this memo starts over (the hot paths' key subsets stay).
                memo.by_org = HashMap::new();
                memo.len = 0;
            }
            if memo
                .by_org
                .entry(org.clone())
                .or_default()
                .insert(node.clone(), computed.clone())
                .is_none()
            {
                memo.len += 1;
            }
        }
        Some(computed)
    }
}

/// `keys` of `node`'s effective config, merged down its chain (org first).
fn keys_of(inner: &Inner, org: &OrgId, node: &NodeId, keys: KeySet) -> Option<EffectiveKeys> {
    let nodes = inner.orgs.get(org)?;
    let mut chain: Vec<&CatNode> = Vec::new();
    let mut cursor = nodes.get(node);
    while let Some(n) = cursor {
        chain.push(n);
        if chain.len() > 64 {
            return None;
        }
        cursor = n.parent.as_ref().and_then(|p| nodes.get(p));
    }
    chain.reverse();
    let mut subset = serde_json::Map::new();
    for n in &chain {
        for key in keys {
            if let Some(v) = n.config.get(*key) {
                match subset.get_mut(*key) {
                    Some(slot) => config::deep_merge(slot, v),
                    None => {
                        subset.insert((*key).to_owned(), v.clone());
                    }
                }
            }
        }
    }
    chain.last()?;
    let mut version = String::with_capacity(4 * chain.len());
    for (i, n) in chain.iter().enumerate() {
        use std::fmt::Write;
        let _ = write!(version, "{}{}", if i == 0 { "" } else { "." }, n.version);
    }
    Some(EffectiveKeys {
        config: Value::Object(subset),
        version,
    })
}

#[path = "catalog_sync.rs"]
mod sync;

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
