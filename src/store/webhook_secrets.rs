//! The `webhook_secrets` table: per org and provider key (`slack`, `generic/<source>`, …) the list of
//! secrets the org's webhook URLs verify with (several during a rotation), as a JSON array. Who may
//! write them and how they are wrapped against logging is `ingest::org_secrets`'s business.

use super::{Conn, StoreError, row};
use crate::domain::OrgId;

/// Every provider key of an org with its secrets, in one read (the ingest cache holds an org's whole
/// set, so a flood of made-up provider keys costs no read each).
pub async fn list_org(
    conn: &mut Conn,
    org: &OrgId,
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let rows = sqlx::query("SELECT provider, secrets FROM webhook_secrets WHERE org_id = $1")
        .bind(org.as_str())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((sqlx::Row::try_get(r, "provider")?, row::json(r, "secrets")?)))
        .collect()
}

/// How many provider keys of `org` hold secrets, and whether `provider` is one of them.
pub async fn count(
    conn: &mut Conn,
    org: &OrgId,
    provider: &str,
) -> Result<(u64, bool), StoreError> {
    let rows = sqlx::query("SELECT provider FROM webhook_secrets WHERE org_id = $1")
        .bind(org.as_str())
        .fetch_all(conn)
        .await?;
    let mut has = false;
    for r in &rows {
        let p: String = sqlx::Row::try_get(r, "provider")?;
        has |= p == provider;
    }
    Ok((rows.len() as u64, has))
}

/// Replaces the list of one provider key.
pub async fn set(
    conn: &mut Conn,
    org: &OrgId,
    provider: &str,
    secrets: &[String],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_secrets (org_id, provider, secrets, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, provider) DO UPDATE SET secrets = excluded.secrets, updated_at = excluded.updated_at",
    )
    .bind(org.as_str())
    .bind(provider)
    .bind(row::json_text("secrets", &secrets)?)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, org: &OrgId, provider: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webhook_secrets WHERE org_id = $1 AND provider = $2")
        .bind(org.as_str())
        .bind(provider)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every secret of an org (the org is being deleted).
pub async fn delete_org(conn: &mut Conn, org: &OrgId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webhook_secrets WHERE org_id = $1")
        .bind(org.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
