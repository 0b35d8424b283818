//! Tests of the catalog: poisoned locks, racing reloads, org incarnations.

use super::*;

/// A panic while the catalog's lock was held (a handler's, caught by the catch-panic layer)
/// leaves the catalog answering: no lookup after it panics on the poisoned lock.
#[test]
fn a_panic_under_the_lock_does_not_poison_later_lookups() {
    let catalog = Arc::new(Catalog::default());
    let held = catalog.clone();
    let crashed = std::thread::spawn(move || {
        let _guard = held.inner.write().unwrap_or_else(PoisonError::into_inner);
        panic!("a handler panics while holding the catalog");
    })
    .join();
    assert!(crashed.is_err() && catalog.inner.is_poisoned());
    let org = OrgId::parse("acme").unwrap();
    assert!(!catalog.has_org(&org));
    assert_eq!(catalog.claim_count(), 0);
    assert!(catalog.effective(&org, &NodeId::root_of(&org)).is_none());
}

fn row(
    org: &OrgId,
    node: &str,
    parent: Option<&str>,
    created_at: i64,
    version: i64,
) -> nodes::NodeRow {
    nodes::NodeRow {
        org_id: org.clone(),
        node_id: NodeId::parse(node).unwrap(),
        parent_id: parent.map(|p| NodeId::parse(p).unwrap()),
        node_type: if parent.is_none() {
            NodeType::Org
        } else {
            NodeType::Team
        },
        name: node.to_owned(),
        config: serde_json::json!({}),
        locked_paths: vec![],
        version,
        created_at,
        updated_at: created_at,
    }
}

/// A change notice's reload read the org while it was deleted; before it applied, the org was
/// created again and that read applied. The stale read must not remove the new org: it reads
/// again.
#[test]
fn a_reload_that_read_before_a_newer_one_was_applied_reads_again() {
    let catalog = Catalog::default();
    let org = OrgId::parse("acme").unwrap();
    let root = NodeId::root_of(&org);
    let stale = catalog.read().mark(Some(&org));
    let fresh = catalog.read().mark(Some(&org));
    let new_root = row(&org, root.as_str(), None, 2_000, 1);
    assert!(catalog.apply_org(&org, fresh, vec![new_root], vec![], false));
    assert_eq!(catalog.org_incarnation(&org), Some(2_000));
    assert!(
        !catalog.apply_org(&org, stale, vec![], vec![], false),
        "the read that saw the deleted org is refused"
    );
    assert_eq!(
        catalog.org_incarnation(&org),
        Some(2_000),
        "the new org stays"
    );
    // The same for one node: an older read of a team does not replace a newer one.
    let team = NodeId::parse("ops").unwrap();
    let stale = catalog.read().mark(Some(&org));
    let fresh = catalog.read().mark(Some(&org));
    let ops = row(&org, "ops", Some(root.as_str()), 3_000, 1);
    assert!(catalog.apply_node(&org, &team, fresh, Some(ops), vec![], false));
    assert!(!catalog.apply_node(&org, &team, stale, None, vec![], false));
    assert!(catalog.has_node(&org, &team));
    // When the rereads run out, the last read is applied.
    let stale = catalog.read().mark(Some(&org));
    let fresh = catalog.read().mark(Some(&org));
    assert!(catalog.apply_org(&org, fresh, vec![], vec![], false));
    assert!(catalog.apply_org(&org, stale, vec![], vec![], true));
}

/// An org deleted and created again under the same id is another incarnation, even when its
/// nodes' versions start over below the deleted ones'.
#[test]
fn an_org_created_again_is_another_incarnation_and_its_nodes_replace_the_old_ones() {
    let catalog = Catalog::default();
    let org = OrgId::parse("acme").unwrap();
    let root = NodeId::root_of(&org);
    let m = catalog.read().mark(Some(&org));
    assert!(catalog.apply_org(
        &org,
        m,
        vec![row(&org, root.as_str(), None, 1_000, 7)],
        vec![],
        false
    ));
    assert_eq!(catalog.org_incarnation(&org), Some(1_000));
    let m = catalog.read().mark(Some(&org));
    assert!(catalog.apply_node(
        &org,
        &root,
        m,
        Some(row(&org, root.as_str(), None, 5_000, 1)),
        vec![],
        false
    ));
    assert_eq!(catalog.org_incarnation(&org), Some(5_000));
    assert_eq!(
        catalog.org_incarnation(&OrgId::parse("other").unwrap()),
        None
    );
}

/// The router's and the bridge's key subsets are memoised: after a refresh of any node of the chain
/// (here the org's config, which the team inherits) the next lookup sees the change.
#[test]
fn memoised_key_subsets_follow_a_change_up_the_chain() {
    const KEYS: KeySet = &["agent_protocol", "entrance_agent"];
    let catalog = Catalog::default();
    let org = OrgId::parse("acme").unwrap();
    let root = NodeId::root_of(&org);
    let team = NodeId::parse("ops").unwrap();
    let with = |node: nodes::NodeRow, config: serde_json::Value| nodes::NodeRow { config, ..node };
    let mark = catalog.read().mark(Some(&org));
    let org_row = with(
        row(&org, root.as_str(), None, 1_000, 1),
        serde_json::json!({"agent_protocol": "investigate", "other": 1}),
    );
    let ops = with(
        row(&org, "ops", Some(root.as_str()), 1_000, 1),
        serde_json::json!({"entrance_agent": "triage"}),
    );
    assert!(catalog.apply_org(&org, mark, vec![org_row.clone(), ops], vec![], false));
    let first = catalog.effective_keys(&org, &team, KEYS).unwrap();
    assert_eq!(
        first.config,
        serde_json::json!({"agent_protocol": "investigate", "entrance_agent": "triage"})
    );
    assert_eq!(first.version, "1.1");
    assert!(
        Arc::ptr_eq(&first, &catalog.effective_keys(&org, &team, KEYS).unwrap()),
        "the second lookup is the memo's"
    );
    let mark = catalog.read().mark(Some(&org));
    let changed = with(
        nodes::NodeRow {
            version: 2,
            ..org_row
        },
        serde_json::json!({"agent_protocol": "ifox"}),
    );
    assert!(catalog.apply_node(&org, &root, mark, Some(changed), vec![], false));
    catalog.invalidate(&org); // as the node refresh does after applying
    let after = catalog.effective_keys(&org, &team, KEYS).unwrap();
    assert_eq!(after.config["agent_protocol"], "ifox");
    assert_eq!(after.version, "2.1");
    // Another key set of the same node is its own memo entry.
    let url = catalog
        .effective_keys(&org, &team, &["agent_service_url"])
        .unwrap();
    assert_eq!(url.config, serde_json::json!({}));
}
