//! Tokens: issue (shown once; [`issue_token_in`] also inside a caller's transaction), list (metadata
//! only), revoke, and authenticate a bearer token.

use super::{OrgScope, Tenancy, TenancyError};
use crate::domain::limits::{Limit, Limits};
use crate::domain::token::{self, Principal, TokenShape};
use crate::domain::{NodeId, NodeType, now_ms, rfc3339};
use crate::store::{Conn, StoreError, audit, nodes, tokens};
use serde::Serialize;
use serde_json::json;

/// Throttle for `last_used_at` writes: at most one per token per minute.
const TOUCH_EVERY_MS: i64 = 60_000;

/// What list and issue show about a token: never the token or its hash.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub token_id: String,
    pub org_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub name: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&tokens::TokenRow> for TokenView {
    fn from(t: &tokens::TokenRow) -> Self {
        TokenView {
            token_id: t.token_id.clone(),
            org_id: t.org_id.to_string(),
            team_id: t.team_id.as_ref().map(ToString::to_string),
            name: t.name.clone(),
            created_by: t.created_by.clone(),
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
        }
    }
}

/// A freshly issued token: the only time the secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

impl Tenancy {
    /// Issues a token in its own transaction (see [`issue_token_in`]).
    pub async fn issue_token(
        &self,
        scope: &OrgScope,
        team: Option<&NodeId>,
        name: Option<String>,
        expires_at: Option<i64>,
    ) -> Result<IssuedToken, TenancyError> {
        let mut tx = self.store.begin().await?;
        let issued = issue_token_in(
            &mut tx,
            scope,
            &self.limits,
            team,
            name,
            expires_at,
            now_ms(),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(issued)
    }

    pub async fn list_tokens(
        &self,
        scope: &OrgScope,
        team: Option<&NodeId>,
    ) -> Result<Vec<TokenView>, TenancyError> {
        if let Some(team) = team
            && self.catalog.node_type(scope.org(), team) != Some(NodeType::Team)
        {
            return Err(TenancyError::not_found(format!("team {team}")));
        }
        let mut conn = self.conn().await?;
        Ok(tokens::list(&mut conn, scope.org(), team)
            .await?
            .iter()
            .map(TokenView::from)
            .collect())
    }

    pub async fn revoke_token(
        &self,
        scope: &OrgScope,
        team: Option<&NodeId>,
        token_id: &str,
    ) -> Result<(), TenancyError> {
        let org = scope.org();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        if !tokens::revoke(&mut tx, org, team, token_id, now).await? {
            return Err(TenancyError::not_found(format!("live token {token_id}")));
        }
        audit::record(
            &mut tx,
            Some(org),
            scope.actor(),
            "token.revoke",
            token_id,
            &json!({"team_id": team}),
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Who a bearer token stands for. Missing, malformed, unknown, revoked and expired tokens each get
    /// their own reason (401).
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, TenancyError> {
        let unauthorized = |reason| TenancyError::Unauthorized { reason };
        let presented = bearer.ok_or(unauthorized("missing_token"))?;
        if let Some(global) = &self.admin_token
            && token::constant_time_eq(presented, global.expose())
        {
            return Ok(Principal::GlobalAdmin);
        }
        let shape = token::parse_shape(presented).map_err(|_| unauthorized("malformed_token"))?;
        let mut conn = self.conn().await?;
        let row = tokens::by_hash(&mut conn, &token::hash(presented))
            .await?
            .ok_or(unauthorized("invalid_token"))?;
        let now = now_ms();
        if row.revoked_at.is_some() {
            return Err(unauthorized("token_revoked"));
        }
        if row.expires_at.is_some_and(|exp| exp <= now) {
            return Err(unauthorized("token_expired"));
        }
        if row
            .last_used_at
            .is_none_or(|last| now - last >= TOUCH_EVERY_MS)
        {
            tokens::touch(&mut conn, &row.token_id, now).await?;
        }
        match (shape, row.team_id) {
            (TokenShape::Org { org }, None) if org == row.org_id => Ok(Principal::OrgAdmin {
                org,
                token_id: row.token_id,
            }),
            (TokenShape::Team { org, team }, Some(owner)) if org == row.org_id && team == owner => {
                Ok(Principal::Team {
                    org,
                    team,
                    token_id: row.token_id,
                })
            }
            _ => Err(unauthorized("invalid_token")),
        }
    }

    /// The audit log of an org, newest first.
    pub async fn audit_log(
        &self,
        scope: &OrgScope,
        limit: i64,
    ) -> Result<Vec<audit::AuditEntry>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(audit::list_org(&mut conn, scope.org(), limit.clamp(1, 1000)).await?)
    }
}

/// Issues an org admin token (`team` = None) or a team token inside the caller's transaction, with
/// its audit entry. `expires_at` in Unix ms, at most `limits.token_lifetime` away; a team holds at
/// most `limits.tokens_per_team` live tokens. The team is looked up in the transaction, so a team
/// the same transaction created can get its token.
pub async fn issue_token_in(
    conn: &mut Conn,
    scope: &OrgScope,
    limits: &Limits,
    team: Option<&NodeId>,
    name: Option<String>,
    expires_at: Option<i64>,
    now: i64,
) -> Result<IssuedToken, TenancyError> {
    let org = scope.org();
    if let Some(exp) = expires_at
        && exp <= now
    {
        return Err(TenancyError::invalid(
            "invalid_expiry",
            "expires_at must be in the future",
        ));
    }
    if let Some(exp) = expires_at {
        // Seconds, rounded up, so that one millisecond past the limit is past it.
        let lifetime_s = u64::try_from(exp.saturating_sub(now))
            .unwrap_or(0)
            .div_ceil(1000);
        limits.check(Limit::TokenLifetime, lifetime_s)?;
    }
    let shape = match team {
        Some(team) => {
            let found = nodes::get(conn, org, team).await?;
            if found.is_none_or(|n| n.node_type != NodeType::Team) {
                return Err(TenancyError::not_found(format!("team {team}")));
            }
            let live = u64::try_from(tokens::count_live(conn, org, team, now).await?).unwrap_or(0);
            limits.check(Limit::TokensPerTeam, live + 1)?;
            TokenShape::Team {
                org: org.clone(),
                team: team.clone(),
            }
        }
        None => TokenShape::Org { org: org.clone() },
    };
    let secret = token::generate(&shape);
    let row = tokens::TokenRow {
        token_id: token::new_token_id(),
        token_hash: token::hash(&secret),
        org_id: org.clone(),
        team_id: team.cloned(),
        name: name.unwrap_or_default(),
        created_by: scope.actor().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    tokens::insert(conn, &row).await?;
    let detail =
        json!({"token_id": row.token_id, "team_id": row.team_id, "expires_at": row.expires_at});
    audit::record(
        conn,
        Some(org),
        scope.actor(),
        "token.issue",
        &row.token_id,
        &detail,
        now,
    )
    .await?;
    Ok(IssuedToken {
        token: secret,
        view: TokenView::from(&row),
    })
}
