//! `POST /v1/runs`: the `ifox` protocol. Answers `202` at once (a run id it already accepted is
//! acknowledged again and not run twice: that is what `Idempotency-Key` is for), then in a task:
//! waits for a slot, reports `running`, waits the delay, reports `completed` with
//! `echo: <prompt, first 200 chars>` (or what the fail mode says) to the body's `status_url` with
//! `Authorization: Bearer <run_token>`. A report is retried a few times on a connection error,
//! 429 or 5xx.

use super::{FailMode, Ids, State};
use crate::bridge::prompt::first_chars;
use axum::body::Bytes;
use axum::extract::State as Axum;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Attempts per status report.
const REPORT_ATTEMPTS: u32 = 5;

/// What the task needs from the body.
struct Run {
    run_id: String,
    prompt: String,
    run_token: String,
    status_url: String,
}

pub(crate) async fn handle(
    Axum(state): Axum<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |p: &str| value.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let ids = Ids {
        tenant_id: text("/run/org_id"),
        team_id: text("/run/team_id"),
        thread_id: text("/thread_id"),
        run_id: text("/run/run_id"),
    };
    let run = match (
        text("/run/run_id"),
        text("/prompt"),
        text("/run_token"),
        text("/status_url"),
    ) {
        (Some(run_id), Some(prompt), Some(run_token), Some(status_url))
            if !run_token.is_empty() =>
        {
            Some(Run {
                run_id,
                prompt,
                run_token,
                status_url,
            })
        }
        _ => None,
    };
    let (n, fail_500) = state.arrive("/v1/runs", &headers, ids);
    let response = accept(&state, &headers, run, fail_500).await;
    state.answered(n, response.status().as_u16());
    response
}

async fn accept(
    state: &Arc<State>,
    headers: &HeaderMap,
    run: Option<Run>,
    fail_500: bool,
) -> Response {
    if !state.authorized(headers) {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong service token"}),
        );
    }
    let Some(run) = run else {
        let msg = "needs run.run_id, prompt, run_token and status_url";
        return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": msg}));
    };
    if fail_500 {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "told to fail"}),
        );
    }
    if state.options.fail == FailMode::Hang {
        state.shutdown.cancelled().await;
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "shutting down"}),
        );
    }
    let fresh = state
        .accepted
        .lock()
        .expect("echo accepted runs")
        .insert(run.run_id.clone());
    let body = json!({"run_id": run.run_id, "duplicate": !fresh});
    if fresh {
        tokio::spawn(work(state.clone(), run));
    }
    answer(StatusCode::ACCEPTED, body)
}

async fn work(state: Arc<State>, run: Run) {
    let _slot = tokio::select! {
        p = state.slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        () = state.shutdown.cancelled() => return,
    };
    if !report(&state, &run, json!({"status": "running"})).await {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep(state.options.delay) => {}
        () = state.shutdown.cancelled() => return,
    }
    let last = match state.options.fail {
        FailMode::ErrorEvent => json!({"status": "failed", "error": "echo: told to fail"}),
        FailMode::CutStream => return,
        _ => json!({"status": "completed", "result": {
            "text": format!("echo: {}", first_chars(&run.prompt, 200)),
            "success": true,
        }}),
    };
    report(&state, &run, last).await;
}

/// Why a status report was not taken.
enum ReportError {
    /// Connection error, 429 or 5xx: worth another try.
    Retry,
    /// Any other answer: retrying the same report cannot help.
    Refused(StatusCode),
}

/// Posts one status report, retried (backon: 100 ms doubling, `REPORT_ATTEMPTS` tries) while ifox
/// is unreachable or busy; whether ifox took it.
async fn report(state: &State, run: &Run, body: Value) -> bool {
    use backon::Retryable;
    let send = || async {
        match state
            .client
            .post(&run.status_url)
            .bearer_auth(&run.run_token)
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if !(r.status().is_server_error() || r.status().as_u16() == 429) => {
                Err(ReportError::Refused(r.status()))
            }
            _ => Err(ReportError::Retry),
        }
    };
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_times(REPORT_ATTEMPTS as usize - 1);
    let attempts = send.retry(policy).when(|e| matches!(e, ReportError::Retry));
    let outcome = tokio::select! {
        r = attempts => r,
        () = state.shutdown.cancelled() => return false,
    };
    match outcome {
        Ok(()) => true,
        Err(ReportError::Refused(status)) => {
            tracing::warn!(run_id = %run.run_id, %status, "agent-echo: status report refused");
            false
        }
        Err(ReportError::Retry) => {
            tracing::warn!(run_id = %run.run_id, "agent-echo: status report not delivered");
            false
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}
