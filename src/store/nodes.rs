//! The `nodes` table: the org tree, each node's raw config, locks and version.

use super::{Conn, StoreError, row};
use crate::domain::{NodeId, NodeType, OrgId};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub org_id: OrgId,
    pub node_id: NodeId,
    pub parent_id: Option<NodeId>,
    pub node_type: NodeType,
    pub name: String,
    pub config: Value,
    pub locked_paths: Vec<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "org_id, node_id, parent_id, node_type, name, config, locked_paths, version, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<NodeRow, StoreError> {
    let node_type: String = r.try_get("node_type")?;
    Ok(NodeRow {
        org_id: row::org(r, "org_id")?,
        node_id: row::node(r, "node_id")?,
        parent_id: row::opt_node(r, "parent_id")?,
        node_type: NodeType::parse(&node_type)
            .ok_or_else(|| row::corrupt("node_type", &node_type))?,
        name: r.try_get("name")?,
        config: row::json(r, "config")?,
        locked_paths: row::json(r, "locked_paths")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn all(rows: Vec<AnyRow>) -> Result<Vec<NodeRow>, StoreError> {
    rows.iter().map(from_row).collect()
}

pub async fn insert(conn: &mut Conn, n: &NodeRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO nodes (org_id, node_id, parent_id, node_type, name, config, locked_paths, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(n.org_id.as_str())
    .bind(n.node_id.as_str())
    .bind(n.parent_id.as_ref().map(|p| p.as_str().to_owned()))
    .bind(n.node_type.as_str())
    .bind(&n.name)
    .bind(n.config.to_string())
    .bind(row::json_text("locked_paths", &n.locked_paths)?)
    .bind(n.version)
    .bind(n.created_at)
    .bind(n.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
) -> Result<Option<NodeRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM nodes WHERE org_id = $1 AND node_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.as_str())
        .bind(node.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every node of one org, parents before children is not guaranteed (ordered by id).
pub async fn list_org(conn: &mut Conn, org: &OrgId) -> Result<Vec<NodeRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM nodes WHERE org_id = $1 ORDER BY node_id");
    all(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.as_str())
        .fetch_all(conn)
        .await?)
}

/// Every node of every org (the catalog's full load).
pub async fn list_all(conn: &mut Conn) -> Result<Vec<NodeRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM nodes ORDER BY org_id, node_id");
    all(sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// The roots: one row per org.
pub async fn list_orgs(conn: &mut Conn) -> Result<Vec<NodeRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM nodes WHERE node_type = 'org' ORDER BY org_id");
    all(sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// The node and its ancestors, ordered from the org down to the node (empty when it does not exist).
pub async fn chain(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
) -> Result<Vec<NodeRow>, StoreError> {
    let sql = format!(
        "WITH RECURSIVE up(org_id, node_id, parent_id, depth) AS ( \
           SELECT org_id, node_id, parent_id, 0 FROM nodes WHERE org_id = $1 AND node_id = $2 \
           UNION ALL \
           SELECT n.org_id, n.node_id, n.parent_id, up.depth + 1 FROM nodes n \
             JOIN up ON n.org_id = up.org_id AND n.node_id = up.parent_id WHERE up.depth < 64) \
         SELECT {cols} FROM nodes n JOIN up ON n.org_id = up.org_id AND n.node_id = up.node_id \
         ORDER BY up.depth DESC",
        cols = COLUMNS
            .split(", ")
            .map(|c| format!("n.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    all(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.as_str())
        .bind(node.as_str())
        .fetch_all(conn)
        .await?)
}

/// How many levels lie below `node` (0 for a leaf), counted up to 64.
pub async fn height(conn: &mut Conn, org: &OrgId, node: &NodeId) -> Result<i64, StoreError> {
    let (h,): (Option<i64>,) = sqlx::query_as(
        "WITH RECURSIVE down(node_id, depth) AS ( \
           SELECT node_id, 0 FROM nodes WHERE org_id = $1 AND node_id = $2 \
           UNION ALL \
           SELECT n.node_id, down.depth + 1 FROM nodes n JOIN down ON n.parent_id = down.node_id \
             WHERE n.org_id = $1 AND down.depth < 64) \
         SELECT MAX(depth) FROM down",
    )
    .bind(org.as_str())
    .bind(node.as_str())
    .fetch_one(conn)
    .await?;
    Ok(h.unwrap_or(0))
}

/// The node and everything below it, shallowest first.
pub async fn subtree(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
) -> Result<Vec<NodeId>, StoreError> {
    let rows = sqlx::query(
        "WITH RECURSIVE down(node_id, depth) AS ( \
           SELECT node_id, 0 FROM nodes WHERE org_id = $1 AND node_id = $2 \
           UNION ALL \
           SELECT n.node_id, down.depth + 1 FROM nodes n JOIN down ON n.parent_id = down.node_id \
             WHERE n.org_id = $1 AND down.depth < 64) \
         SELECT node_id FROM down ORDER BY depth",
    )
    .bind(org.as_str())
    .bind(node.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| row::node(r, "node_id")).collect()
}

pub async fn count_children(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM nodes WHERE org_id = $1 AND parent_id = $2")
        .bind(org.as_str())
        .bind(node.as_str())
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("n")?)
}

/// Units and teams of an org (the root not counted): what `limits.nodes_per_org` bounds.
pub async fn count_org(conn: &mut Conn, org: &OrgId) -> Result<i64, StoreError> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM nodes WHERE org_id = $1 AND parent_id IS NOT NULL")
            .bind(org.as_str())
            .fetch_one(conn)
            .await?;
    Ok(row.try_get("n")?)
}

/// Compare-and-set of the config: writes only when the stored version is still `expected`.
/// Returns false when another writer got there first.
pub async fn set_config(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    config: &Value,
    expected: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE nodes SET config = $1, version = version + 1, updated_at = $2 \
         WHERE org_id = $3 AND node_id = $4 AND version = $5",
    )
    .bind(config.to_string())
    .bind(now)
    .bind(org.as_str())
    .bind(node.as_str())
    .bind(expected)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets one text column of a node (and its `updated_at`).
async fn set_text(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    column: &'static str,
    value: String,
    now: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE nodes SET {column} = $1, updated_at = $2 WHERE org_id = $3 AND node_id = $4"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .bind(now)
        .bind(org.as_str())
        .bind(node.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_name(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    name: &str,
    now: i64,
) -> Result<(), StoreError> {
    set_text(conn, org, node, "name", name.to_owned(), now).await
}

pub async fn set_parent(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    parent: &NodeId,
    now: i64,
) -> Result<(), StoreError> {
    set_text(conn, org, node, "parent_id", parent.to_string(), now).await
}

pub async fn set_locks(
    conn: &mut Conn,
    org: &OrgId,
    node: &NodeId,
    paths: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let paths = row::json_text("locked_paths", &paths)?;
    set_text(conn, org, node, "locked_paths", paths, now).await
}

/// Deletes the given nodes of one org, given shallowest first (as [`subtree`] returns them): chunks are
/// taken from the deep end, so no statement removes a parent before its children.
pub async fn delete(conn: &mut Conn, org: &OrgId, ids: &[NodeId]) -> Result<(), StoreError> {
    for chunk in ids.rchunks(500) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "DELETE FROM nodes WHERE org_id = $1 AND node_id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org.as_str());
        for id in chunk {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
