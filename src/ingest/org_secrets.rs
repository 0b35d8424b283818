//! Per-org webhook secrets: the write-only admin endpoints over `store::webhook_secrets`.
//!
//! - `PUT /api/v1/admin/orgs/{org}/webhook-secrets/{provider}` with `{"secrets": ["…", "…"]}` replaces
//!   the list (several during a rotation); `DELETE` on the same path removes it. Generic sources use
//!   `…/webhook-secrets/generic/{source}`. Providers: `slack`, `github`, `pagerduty`, `incidentio`.
//! - Who: the global admin or that org's admin (a team token gets 403, another org's token 404).
//! - Never returned by any read and never logged; the audit log records the provider and how many
//!   secrets were set, not the secrets. Answers are `204 No Content`.
//!
//! The org-scoped webhook URLs (`/webhooks/orgs/{org}/…`) verify with these and only these, read
//! through the [`SecretCache`]; a write here drops the org's entry, so it applies to the next webhook.

use super::Provider;
use super::secret_cache::SecretCache;
use crate::domain::limits::{Exceeded, Limit};
use crate::domain::subject::check_generic_source;
use crate::domain::{OrgId, now_ms};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::store::{StoreError, audit, webhook_secrets};
use crate::tenancy::{OrgScope, TenancyError};
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use serde::Deserialize;
use serde_json::json;

/// At most this many secrets per provider (a rotation needs two).
const MAX_SECRETS: usize = 5;

/// The admin routes; `cache` is the one the ingest role of this process reads through.
pub fn routes(cache: SecretCache) -> Router<AppState> {
    let base = "/api/v1/admin/orgs/{org}/webhook-secrets";
    Router::new()
        .route(
            &format!("{base}/generic/{{source}}"),
            put(put_generic).delete(delete_generic),
        )
        .route(
            &format!("{base}/{{provider}}"),
            put(put_provider).delete(delete_provider),
        )
        .layer(Extension(cache))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecrets {
    secrets: Vec<String>,
}

async fn put_provider(
    State(s): State<AppState>,
    Extension(cache): Extension<SecretCache>,
    Auth(p): Auth,
    Path((org, provider)): Path<(String, String)>,
    Body(body): Body<NewSecrets>,
) -> Result<StatusCode, ApiError> {
    let scope = scope(&s, &p, &org)?;
    write(&s, &cache, &scope, named(&provider)?, Some(body)).await
}

async fn delete_provider(
    State(s): State<AppState>,
    Extension(cache): Extension<SecretCache>,
    Auth(p): Auth,
    Path((org, provider)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = scope(&s, &p, &org)?;
    write(&s, &cache, &scope, named(&provider)?, None).await
}

async fn put_generic(
    State(s): State<AppState>,
    Extension(cache): Extension<SecretCache>,
    Auth(p): Auth,
    Path((org, source)): Path<(String, String)>,
    Body(body): Body<NewSecrets>,
) -> Result<StatusCode, ApiError> {
    let scope = scope(&s, &p, &org)?;
    write(&s, &cache, &scope, generic(source)?, Some(body)).await
}

async fn delete_generic(
    State(s): State<AppState>,
    Extension(cache): Extension<SecretCache>,
    Auth(p): Auth,
    Path((org, source)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = scope(&s, &p, &org)?;
    write(&s, &cache, &scope, generic(source)?, None).await
}

fn scope(
    s: &AppState,
    p: &crate::domain::token::Principal,
    org: &str,
) -> Result<OrgScope, ApiError> {
    let org = OrgId::parse(org)?;
    Ok(s.tenancy.org_scope(p, &org)?)
}

fn named(provider: &str) -> Result<Provider, ApiError> {
    Provider::named(provider).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            "providers: slack, github, pagerduty, incidentio, generic/{source}",
        )
    })
}

fn generic(source: String) -> Result<Provider, ApiError> {
    check_generic_source(&source)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_source", m))?;
    Ok(Provider::Generic(source))
}

/// Replaces (`Some`) or removes (`None`) one provider's secrets, with an audit entry, in one transaction.
async fn write(
    s: &AppState,
    cache: &SecretCache,
    scope: &OrgScope,
    provider: Provider,
    body: Option<NewSecrets>,
) -> Result<StatusCode, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_secrets", m);
    let limits = *s.tenancy.limits();
    if let Some(b) = &body {
        if b.secrets.is_empty() || b.secrets.len() > MAX_SECRETS {
            return Err(bad("give 1 to 5 secrets (DELETE removes them)"));
        }
        if b.secrets
            .iter()
            .any(|x| x.trim().is_empty() || x.contains(','))
        {
            return Err(bad("a secret must not be empty nor hold a comma"));
        }
        let longest = b.secrets.iter().map(String::len).max().unwrap_or(0);
        limits.check(Limit::WebhookSecretBytes, longest as u64)?;
    }
    let key = provider.secret_key();
    let store = s.tenancy.store();
    let org = scope.org().as_str();
    let now = now_ms();
    let result: Result<Result<(), Exceeded>, StoreError> = async {
        let mut tx = store.begin().await?;
        let (action, count) = match &body {
            Some(b) => {
                // A new provider key counts against the org's quota; replacing one does not.
                let (held, has) = webhook_secrets::count(&mut tx, scope.org(), &key).await?;
                if !has && let Err(e) = limits.check(Limit::WebhookSourcesPerOrg, held + 1) {
                    return Ok(Err(e));
                }
                webhook_secrets::set(&mut tx, scope.org(), &key, &b.secrets, now).await?;
                ("webhook_secrets.set", b.secrets.len())
            }
            None => {
                webhook_secrets::delete(&mut tx, scope.org(), &key).await?;
                ("webhook_secrets.delete", 0)
            }
        };
        let detail = json!({"provider": key, "count": count});
        audit::record(
            &mut tx,
            Some(scope.org()),
            scope.actor(),
            action,
            &format!("{org}/{key}"),
            &detail,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
    .await;
    result.map_err(|e| ApiError::from(TenancyError::from(e)))??;
    cache.invalidate(scope.org());
    Ok(StatusCode::NO_CONTENT)
}
