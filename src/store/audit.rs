//! The `audit_log` table: every admin write, with the actor's token id (never a token).

use super::{Conn, StoreError, row};
use crate::domain::OrgId;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub org_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
    pub at: i64,
}

/// Bytes of one entry's detail at most: past it, the detail keeps its scalar members and says how
/// many bytes it left out (a config write's full diff stays in the config history).
pub const DETAIL_MAX: usize = 16 * 1024;

/// `detail` as stored: itself when it fits [`DETAIL_MAX`], else its scalar members and
/// `"omitted_bytes"`.
pub fn bounded(detail: &Value) -> String {
    let text = detail.to_string();
    if text.len() <= DETAIL_MAX {
        return text;
    }
    let mut kept = serde_json::Map::new();
    if let Value::Object(members) = detail {
        for (k, v) in members {
            if !(v.is_object() || v.is_array()) && v.to_string().len() <= 1024 {
                kept.insert(k.clone(), v.clone());
            }
        }
    }
    kept.insert("omitted_bytes".into(), Value::from(text.len()));
    Value::Object(kept).to_string()
}

pub async fn record(
    conn: &mut Conn,
    org: Option<&OrgId>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &Value,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (id, org_id, actor, action, target, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(org.map(|o| o.as_str().to_owned()))
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(bounded(detail))
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Newest first, at most `limit`.
pub async fn list_org(
    conn: &mut Conn,
    org: &OrgId,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, org_id, actor, action, target, detail, at FROM audit_log WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(org.as_str())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: row::json(r, "detail")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}
