//! The runs API: run records and their transitions for operators (`/api/v1/admin/orgs/{org}/runs…`),
//! a team's own runs (`/api/v1/config/me/runs`), and the status reports of agents
//! (`POST /api/v1/runs/{run_id}/status` with the run token of that run). Cross-tenant reads answer
//! 404 like everything else; a run token names one run and reports only on it.

use super::nodes::org_scope;
use crate::bridge::lifecycle::{Lifecycle, RunRef};
use crate::domain::run_token::{self, RunClaims};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, Body};
use crate::store::run_lifecycle::{self, Change, Filter, RunRecord};
use crate::tenancy::scope::team_scope;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{StatusCode, header, request::Parts};
use serde::Deserialize;
use serde_json::{Value, json};

const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    team: Option<String>,
    status: Option<String>,
    source: Option<String>,
    /// RFC 3339, or a duration back from now (`2h`).
    since: Option<String>,
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn bad(reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, reason, message)
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    ApiError::from(crate::tenancy::TenancyError::Store(e))
}

async fn conn(s: &AppState) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ApiError> {
    s.tenancy
        .store()
        .pool()
        .acquire()
        .await
        .map_err(|e| store_error(e.into()))
}

fn run_json(r: &RunRecord) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// The page of runs `q` selects in `org` (and `team`, when a team token asks).
async fn page(
    s: &AppState,
    org: &str,
    team: Option<&str>,
    q: &ListQuery,
) -> Result<Json<Value>, ApiError> {
    if let Some(status) = &q.status
        && !run_lifecycle::STATUSES.contains(&status.as_str())
    {
        return Err(bad(
            "invalid_status",
            format!(
                "status must be one of {}",
                run_lifecycle::STATUSES.join(", ")
            ),
        ));
    }
    let since = match &q.since {
        None => None,
        Some(t) => Some(parse_since(t).ok_or_else(|| {
            bad(
                "invalid_since",
                "since is an RFC 3339 time or a duration like 2h",
            )
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let cursor = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .ok_or_else(|| bad("invalid_cursor", "not a cursor of this API"))?,
        ),
    };
    let filter = Filter {
        org,
        team,
        status: q.status.as_deref(),
        source: q.source.as_deref(),
        since,
        before: cursor,
        limit,
    };
    let runs = run_lifecycle::list(&mut *conn(s).await?, &filter)
        .await
        .map_err(store_error)?;
    let next = (runs.len() as i64 == limit)
        .then(|| {
            runs.last()
                .map(|r| format!("{}_{}", r.created_at, r.run_id))
        })
        .flatten();
    Ok(Json(json!({
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

fn parse_since(t: &str) -> Option<i64> {
    if let Ok(at) = humantime::parse_rfc3339_weak(t.trim()) {
        return at
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64);
    }
    let back = humantime::parse_duration(t.trim()).ok()?;
    Some(crate::domain::now_ms() - i64::try_from(back.as_millis()).ok()?)
}

/// `GET /api/v1/admin/orgs/{org}/runs`.
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    page(&s, scope.org().as_str(), q.team.as_deref(), &q).await
}

/// `GET /api/v1/config/me/runs`: the caller's team only.
pub async fn list_mine(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let team = team_scope(&p)?;
    if q.team.as_deref().is_some_and(|t| t != team.team().as_str()) {
        return Err(bad("invalid_team", "a team token lists its own runs only"));
    }
    page(&s, team.org().as_str(), Some(team.team().as_str()), &q).await
}

/// `GET /api/v1/admin/orgs/{org}/runs/{run_id}`: the run and its transitions.
pub async fn show(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, run_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    let mut c = conn(&s).await?;
    let run = run_lifecycle::get(&mut c, &run_id)
        .await
        .map_err(store_error)?
        .filter(|r| r.org_id == scope.org().as_str())
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("run {run_id}"))
        })?;
    let transitions = run_lifecycle::transitions(&mut c, &run.run_id)
        .await
        .map_err(store_error)?;
    let mut body = run_json(&run);
    body["transitions"] = serde_json::to_value(transitions).unwrap_or(Value::Null);
    Ok(Json(body))
}

/// `GET /api/v1/admin/orgs/{org}/runs/by-event/{event_id}`.
pub async fn by_event(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((org, event_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let scope = org_scope(&s, &p, &org)?;
    let runs = run_lifecycle::by_event(&mut *conn(&s).await?, scope.org().as_str(), &event_id)
        .await
        .map_err(store_error)?;
    Ok(Json(
        json!({"event_id": event_id, "runs": runs.iter().map(run_json).collect::<Vec<_>>()}),
    ))
}

/// The caller of an agent endpoint: a valid run token.
pub struct RunAuth(pub RunClaims);

impl FromRequestParts<AppState> for RunAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |reason, msg: &str| ApiError::new(StatusCode::UNAUTHORIZED, reason, msg);
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing_token", "send Authorization: Bearer <run token>"))?
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                unauthorized("malformed_token", "Authorization must be `Bearer <token>`")
            })?;
        verify_run_token(s, bearer).map(RunAuth)
    }
}

/// The claims of a run token, or 401 with the reason.
pub fn verify_run_token(s: &AppState, bearer: &str) -> Result<RunClaims, ApiError> {
    let now = crate::domain::now_ms() / 1000;
    run_token::verify(&s.run_token_key, bearer, now).map_err(|e| {
        let reason = match e {
            run_token::RunTokenError::Malformed => "malformed_token",
            run_token::RunTokenError::Invalid => "invalid_token",
            run_token::RunTokenError::Expired => "token_expired",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, reason, e.to_string())
    })
}

/// The caller of a read-only team endpoint (`GET /api/v1/config/me/effective`): a team token, or
/// a run token, which reads as its team (actor `run:<run id>`) and nothing more.
pub struct ReadAuth(pub crate::domain::token::Principal);

impl FromRequestParts<AppState> for ReadAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(bearer) = bearer
            && run_token::is_run_token(bearer)
        {
            let c = verify_run_token(s, bearer)?;
            // A run token reads only while its run is live: once the run finished, or its
            // record went with its team or org (a team or org created again under the same ids
            // is another tenant), the token reads nothing.
            let r = delivered_record(s, &c.run_id).await?;
            let live = r.org_id == c.org.as_str()
                && r.team_id == c.team.as_str()
                && !run_lifecycle::is_final(&r.status);
            if !live {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "run_not_live",
                    "the run of this token has finished or no longer exists",
                ));
            }
            return Ok(ReadAuth(crate::domain::token::Principal::Team {
                org: c.org,
                team: c.team,
                token_id: format!("run:{}", c.run_id),
            }));
        }
        let Auth(p) = Auth::from_request_parts(parts, s).await?;
        Ok(ReadAuth(p))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    status: String,
    #[serde(default)]
    result: Option<ReportedResult>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedResult {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    success: Option<bool>,
}

/// A run token's run as recorded once the bridge's `delivering` reached the record: the token
/// exists because that transition was stored on RUNS before the agent was called, so a record still
/// `queued` (or absent) is the recorder's lag, waited for (10 ms doubling to 0.5 s) up to its budget
/// ([`crate::bridge::recorder::LAG_BUDGET`]); then a `queued` record is taken as it is and an
/// absent one answers 503 `run_not_recorded_yet` (retryable).
async fn delivered_record(s: &AppState, run_id: &str) -> Result<RunRecord, ApiError> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        let record = run_lifecycle::get(&mut *conn(s).await?, run_id)
            .await
            .map_err(store_error)?;
        match record {
            Some(r) if r.status != "queued" => return Ok(r),
            // The recorder is behind: still a live run, as far as anyone can tell.
            Some(r) if started.elapsed() >= crate::bridge::recorder::LAG_BUDGET => return Ok(r),
            // No record at all: the token exists, so the run was delivered; the recorder is
            // behind (or the run went with its team). Worth a retry, not a final refusal.
            None if started.elapsed() >= crate::bridge::recorder::LAG_BUDGET => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "run_not_recorded_yet",
                    format!("run {run_id} is not in the run records yet; retry in a few seconds"),
                ));
            }
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}

/// `POST /api/v1/runs/{run_id}/status` with that run's token: `running`, `completed` or `failed`.
pub async fn report(
    State(s): State<AppState>,
    RunAuth(claims): RunAuth,
    Path(run_id): Path<String>,
    Body(report): Body<StatusReport>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("run {run_id}"));
    if claims.run_id != run_id {
        return Err(not_found());
    }
    if !matches!(report.status.as_str(), "running" | "completed" | "failed") {
        return Err(bad(
            "invalid_status",
            "an agent reports running, completed or failed",
        ));
    }
    let record = Some(delivered_record(&s, &run_id).await?)
        .filter(|r| r.org_id == claims.org.as_str() && r.team_id == claims.team.as_str())
        .ok_or_else(not_found)?;
    if run_lifecycle::is_final(&record.status) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_finished",
            format!(
                "run {run_id} is {} and cannot become {}",
                record.status, report.status
            ),
        )
        .with("status", record.status));
    }
    let limit = s.result_limit;
    let mut text = report.result.as_ref().and_then(|r| r.text.clone());
    if let Some(t) = &mut text
        && t.len() > limit
    {
        let mut end = limit;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t.truncate(end);
    }
    // A `completed` report whose result says it did not succeed is a failure, as in the SSE protocol.
    let status = match (
        report.status.as_str(),
        report.result.as_ref().and_then(|r| r.success),
    ) {
        ("completed", Some(false)) => "failed",
        (s, _) => s,
    };
    let mut error = report.error.clone();
    if let Some(e) = &mut error {
        e.truncate(e.floor_char_boundary(4096));
    }
    let run = RunRef::from(&record);
    let change = Change {
        to: status,
        detail: Some("reported by the agent"),
        result_text: text.as_deref(),
        error: error.as_deref(),
        ..Change::default()
    };
    // Stored on RUNS (PubAck) before the answer; the recorder applies it in RUNS's order, so an
    // outcome the bridge or the sweeper stored first stays (the record keeps the first outcome).
    let Some(bus) = s.runs_bus.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "runs_unavailable",
            "this process has no NATS connection to store the report on",
        ));
    };
    let lifecycle = Lifecycle::new(
        s.tenancy.store().clone(),
        bus,
        crate::bridge::lifecycle::record_key(&s.run_token_key),
    );
    if let Err(e) = lifecycle.advance(&run, change).await {
        tracing::warn!(run_id = %run_id, error = %e, "status report not stored");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "runs_unavailable",
            format!("the report could not be stored, retry: {e}"),
        ));
    }
    Ok(Json(json!({"run_id": run_id, "status": status})))
}
