//! The `tokens` table: org-admin and team tokens, stored as SHA-256 hashes only.

use super::{Conn, StoreError, row};
use crate::domain::{NodeId, OrgId};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub token_id: String,
    pub token_hash: String,
    pub org_id: OrgId,
    /// `None` for an org admin token.
    pub team_id: Option<NodeId>,
    pub name: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "token_id, token_hash, org_id, team_id, name, created_by, created_at, expires_at, revoked_at, last_used_at";

fn from_row(r: &AnyRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        token_id: r.try_get("token_id")?,
        token_hash: r.try_get("token_hash")?,
        org_id: row::org(r, "org_id")?,
        team_id: row::opt_node(r, "team_id")?,
        name: r.try_get("name")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

pub async fn insert(conn: &mut Conn, t: &TokenRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (token_id, token_hash, org_id, team_id, name, created_by, created_at, expires_at, revoked_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&t.token_id)
    .bind(&t.token_hash)
    .bind(t.org_id.as_str())
    .bind(t.team_id.as_ref().map(|x| x.as_str().to_owned()))
    .bind(&t.name)
    .bind(&t.created_by)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.revoked_at)
    .bind(t.last_used_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn by_hash(conn: &mut Conn, hash: &str) -> Result<Option<TokenRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM tokens WHERE token_hash = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Tokens of an org: org admin tokens when `team` is `None`, else that team's.
pub async fn list(
    conn: &mut Conn,
    org: &OrgId,
    team: Option<&NodeId>,
) -> Result<Vec<TokenRow>, StoreError> {
    let rows = match team {
        None => {
            let sql = format!(
                "SELECT {COLUMNS} FROM tokens WHERE org_id = $1 AND team_id IS NULL ORDER BY created_at"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(org.as_str())
                .fetch_all(conn)
                .await?
        }
        Some(team) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM tokens WHERE org_id = $1 AND team_id = $2 ORDER BY created_at"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(org.as_str())
                .bind(team.as_str())
                .fetch_all(conn)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Live tokens of one team at `now` (not revoked, not expired): what `limits.tokens_per_team`
/// bounds.
pub async fn count_live(
    conn: &mut Conn,
    org: &OrgId,
    team: &NodeId,
    now: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM tokens WHERE org_id = $1 AND team_id = $2 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind(org.as_str())
    .bind(team.as_str())
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("n")?)
}

/// Revokes one token of the given scope; false when no such live token exists in that scope.
pub async fn revoke(
    conn: &mut Conn,
    org: &OrgId,
    team: Option<&NodeId>,
    token_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let team = team.map(|t| t.as_str().to_owned()).unwrap_or_default();
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE token_id = $2 AND org_id = $3 AND COALESCE(team_id, '') = $4 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(token_id)
    .bind(org.as_str())
    .bind(team)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every token of the given teams (their nodes are being deleted).
pub async fn revoke_teams(
    conn: &mut Conn,
    org: &OrgId,
    teams: &[NodeId],
    now: i64,
) -> Result<(), StoreError> {
    for team in teams {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE org_id = $2 AND team_id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(org.as_str())
            .bind(team.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Revokes every token of an org (the org is being deleted).
pub async fn revoke_org(conn: &mut Conn, org: &OrgId, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE org_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(org.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn touch(conn: &mut Conn, token_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE token_id = $2")
        .bind(now)
        .bind(token_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every token of an org, revoked or not (the org is being deleted): a new org with the same
/// id must not list them, and a deleted token cannot authenticate.
pub async fn delete_org(conn: &mut Conn, org: &OrgId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tokens WHERE org_id = $1")
        .bind(org.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
