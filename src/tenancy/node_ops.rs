//! Org tree operations: create (also inside a caller's transaction: [`create_node_in`]), read,
//! list, rename, reparent, delete.

use super::{OrgScope, Tenancy, TenancyError, node_target};
use crate::domain::limits::{Limit, Limits};
use crate::domain::{NodeId, NodeType, OrgId, now_ms};
use crate::store::{
    Conn, StoreError, audit, claims, deployments, history, nodes, provision_runs, run_lifecycle,
    tokens, webhook_secrets,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /orgs/{org}/nodes` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    pub node_id: NodeId,
    /// Defaults to the org root.
    #[serde(default)]
    pub parent_id: Option<NodeId>,
    pub node_type: NodeType,
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /orgs/{org}/nodes/{node}` body: rename and/or reparent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent_id: Option<NodeId>,
}

fn check_name(name: &str) -> Result<(), TenancyError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(TenancyError::invalid(
            "invalid_name",
            "name must be 1 to 200 characters",
        ));
    }
    Ok(())
}

impl Tenancy {
    /// Creates an org (its root node). Global admin only; the caller checks that.
    pub async fn create_org(
        &self,
        actor: &str,
        org: &OrgId,
        name: &str,
    ) -> Result<nodes::NodeRow, TenancyError> {
        check_name(name)?;
        let now = now_ms();
        let root = NodeId::root_of(org);
        let row = nodes::NodeRow {
            org_id: org.clone(),
            node_id: root.clone(),
            parent_id: None,
            node_type: NodeType::Org,
            name: name.to_owned(),
            config: json!({}),
            locked_paths: vec![],
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.begin().await?;
        if nodes::get(&mut tx, org, &root).await?.is_some() {
            return Err(TenancyError::AlreadyExists {
                what: format!("org {org}"),
            });
        }
        insert_node(&mut tx, &row, actor)
            .await
            .map_err(|e| already(e, format!("org {org}")))?;
        audit::record(
            &mut tx,
            Some(org),
            actor,
            "org.create",
            org.as_str(),
            &json!({"name": name}),
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.changed(org, Some(&root)).await?;
        Ok(row)
    }

    pub async fn list_orgs(&self) -> Result<Vec<nodes::NodeRow>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(nodes::list_orgs(&mut conn).await?)
    }

    /// Creates a unit or team in its own transaction (see [`create_node_in`]).
    pub async fn create_node(
        &self,
        scope: &OrgScope,
        new: NewNode,
    ) -> Result<nodes::NodeRow, TenancyError> {
        let mut tx = self.store.begin().await?;
        let row = create_node_in(&mut tx, scope, &self.limits, new, now_ms()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.changed(scope.org(), Some(&row.node_id)).await?;
        Ok(row)
    }

    pub async fn get_node(
        &self,
        scope: &OrgScope,
        node: &NodeId,
    ) -> Result<nodes::NodeRow, TenancyError> {
        let mut conn = self.conn().await?;
        nodes::get(&mut conn, scope.org(), node)
            .await?
            .ok_or_else(|| TenancyError::not_found(format!("node {node}")))
    }

    pub async fn list_nodes(&self, scope: &OrgScope) -> Result<Vec<nodes::NodeRow>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(nodes::list_org(&mut conn, scope.org()).await?)
    }

    /// Renames and/or moves a node. Moving under its own subtree is a cycle (400); the org root does
    /// not move; teams have no children.
    pub async fn change_node(
        &self,
        scope: &OrgScope,
        node: &NodeId,
        change: NodeChange,
    ) -> Result<nodes::NodeRow, TenancyError> {
        let org = scope.org();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let Some(row) = nodes::get(&mut tx, org, node).await? else {
            return Err(TenancyError::not_found(format!("node {node}")));
        };
        if let Some(name) = &change.name {
            check_name(name)?;
            nodes::set_name(&mut tx, org, node, name, now).await?;
        }
        if let Some(parent) = &change.parent_id {
            if row.node_type == NodeType::Org {
                return Err(TenancyError::invalid(
                    "cannot_move_org",
                    "the org root has no parent",
                ));
            }
            let Some(parent_row) = nodes::get(&mut tx, org, parent).await? else {
                return Err(TenancyError::not_found(format!("parent node {parent}")));
            };
            if parent_row.node_type == NodeType::Team {
                return Err(TenancyError::invalid(
                    "parent_is_team",
                    format!("{parent} is a team; teams have no children"),
                ));
            }
            if nodes::subtree(&mut tx, org, node).await?.contains(parent) {
                return Err(TenancyError::invalid(
                    "cycle",
                    format!("{parent} is {node} or below it: the move would make a cycle"),
                ));
            }
            let below = usize::try_from(nodes::height(&mut tx, org, node).await?).unwrap_or(0);
            let depth = nodes::chain(&mut tx, org, parent).await?.len() + below;
            check_depth(&self.limits, depth)?;
            nodes::set_parent(&mut tx, org, node, parent, now).await?;
        }
        let detail =
            serde_json::to_value(json!({"name": change.name, "parent_id": change.parent_id}))
                .unwrap_or(Value::Null);
        audit::record(
            &mut tx,
            Some(org),
            scope.actor(),
            "node.update",
            &node_target(org, node),
            &detail,
            now,
        )
        .await?;
        let updated = nodes::get(&mut tx, org, node)
            .await?
            .ok_or_else(|| TenancyError::not_found(format!("node {node}")))?;
        tx.commit().await.map_err(StoreError::from)?;
        self.changed(org, None).await?;
        Ok(updated)
    }

    /// Deletes a node. Without `cascade`, refused (409) while it has children or routing claims;
    /// with it, the whole subtree goes, with its claims, history and team tokens (revoked).
    pub async fn delete_node(
        &self,
        scope: &OrgScope,
        node: &NodeId,
        cascade: bool,
    ) -> Result<Vec<NodeId>, TenancyError> {
        let org = scope.org();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        if nodes::get(&mut tx, org, node).await?.is_none() {
            return Err(TenancyError::not_found(format!("node {node}")));
        }
        if !cascade {
            let children = nodes::count_children(&mut tx, org, node).await?;
            if children > 0 {
                return Err(TenancyError::HasDependents {
                    reason: "has_children",
                    what: format!(
                        "node {node} has {children} children; delete them first or pass cascade=true"
                    ),
                });
            }
            let claimed = claims::count_team(&mut tx, org, node).await?;
            if claimed > 0 {
                return Err(TenancyError::HasDependents {
                    reason: "has_claims",
                    what: format!(
                        "team {node} holds {claimed} routing claims; remove them first or pass cascade=true"
                    ),
                });
            }
        }
        let doomed = nodes::subtree(&mut tx, org, node).await?;
        claims::delete_teams(&mut tx, org, &doomed).await?;
        history::delete_nodes(&mut tx, org, &doomed).await?;
        tokens::revoke_teams(&mut tx, org, &doomed, now).await?;
        if node.as_str() == org.as_str() {
            delete_org_state(&mut tx, org).await?;
        }
        nodes::delete(&mut tx, org, &doomed).await?;
        let detail = json!({"cascade": cascade, "deleted": doomed});
        audit::record(
            &mut tx,
            Some(org),
            scope.actor(),
            "node.delete",
            &node_target(org, node),
            &detail,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.changed(org, None).await?;
        Ok(doomed)
    }
}

/// Everything else an org owns, removed with its root node in the same transaction, so that a new
/// org with the same id inherits nothing: its tokens (the runtime tokens included), webhook secrets,
/// agent runs with their transitions, provisioning runs, steps, idempotency keys and desired
/// runtimes. The Kubernetes objects of its dedicated teams go after the grace: pending deletions are
/// kept, and the provisioner's resync schedules the objects no team wants any more (see
/// `store::deployments::delete_org`). The audit log stays: it records who deleted the org.
async fn delete_org_state(conn: &mut Conn, org: &OrgId) -> Result<(), StoreError> {
    tokens::delete_org(conn, org).await?;
    webhook_secrets::delete_org(conn, org).await?;
    run_lifecycle::delete_org(conn, org).await?;
    provision_runs::delete_org(conn, org).await?;
    deployments::delete_org(conn, org).await?;
    Ok(())
}

/// Refuses a node that would sit `depth` levels below the org root, past `limits.tree_depth`: a
/// bound on what an org admin controls (every walk of a chain, the recursive queries and the API's
/// tree stay small), far above real org charts.
fn check_depth(limits: &Limits, depth: usize) -> Result<(), TenancyError> {
    Ok(limits.check(Limit::TreeDepth, depth as u64)?)
}

/// Creates a unit or team under its parent (the org root by default) inside the caller's
/// transaction, with its first history entry and audit, within `limits` (tree depth, nodes per
/// org). The caller commits, then calls `Tenancy::changed`.
pub async fn create_node_in(
    conn: &mut Conn,
    scope: &OrgScope,
    limits: &Limits,
    new: NewNode,
    now: i64,
) -> Result<nodes::NodeRow, TenancyError> {
    let org = scope.org();
    if new.node_type == NodeType::Org {
        return Err(TenancyError::invalid(
            "invalid_node_type",
            "node_type must be unit or team",
        ));
    }
    let name = new.name.unwrap_or_else(|| new.node_id.to_string());
    check_name(&name)?;
    let parent = new.parent_id.unwrap_or_else(|| NodeId::root_of(org));
    let Some(parent_row) = nodes::get(conn, org, &parent).await? else {
        return Err(TenancyError::not_found(format!("parent node {parent}")));
    };
    if parent_row.node_type == NodeType::Team {
        return Err(TenancyError::invalid(
            "parent_is_team",
            format!("{parent} is a team; teams have no children"),
        ));
    }
    check_depth(limits, nodes::chain(conn, org, &parent).await?.len())?;
    if nodes::get(conn, org, &new.node_id).await?.is_some() {
        return Err(TenancyError::AlreadyExists {
            what: format!("node {}", new.node_id),
        });
    }
    // Counted in the writer's transaction: concurrent creations can pass the count together and
    // end a few over it, which the bound tolerates (it is about orders of magnitude, not one node).
    let count = u64::try_from(nodes::count_org(conn, org).await?).unwrap_or(0);
    limits.check(Limit::NodesPerOrg, count + 1)?;
    let row = nodes::NodeRow {
        org_id: org.clone(),
        node_id: new.node_id.clone(),
        parent_id: Some(parent),
        node_type: new.node_type,
        name,
        config: json!({}),
        locked_paths: vec![],
        version: 1,
        created_at: now,
        updated_at: now,
    };
    insert_node(conn, &row, scope.actor())
        .await
        .map_err(|e| already(e, format!("node {}", new.node_id)))?;
    let detail = json!({"parent_id": row.parent_id, "node_type": row.node_type, "name": row.name});
    audit::record(
        conn,
        Some(org),
        scope.actor(),
        "node.create",
        &node_target(org, &row.node_id),
        &detail,
        now,
    )
    .await?;
    Ok(row)
}

async fn insert_node(conn: &mut Conn, row: &nodes::NodeRow, actor: &str) -> Result<(), StoreError> {
    nodes::insert(conn, row).await?;
    let first = history::HistoryRow {
        version: 1,
        config: row.config.clone(),
        diff: json!({}),
        actor: actor.to_owned(),
        at: row.created_at,
    };
    history::insert(conn, &row.org_id, &row.node_id, &first).await
}

fn already(e: StoreError, what: String) -> TenancyError {
    if e.is_unique_violation() {
        TenancyError::AlreadyExists { what }
    } else {
        e.into()
    }
}
