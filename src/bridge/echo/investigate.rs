//! `POST /investigate`: the original's protocol. Validates the body as an agent image does, waits
//! for a slot and the configured delay, then answers `200 text/event-stream` with `X-Thread-ID`, a
//! few progress events and `{"type":"result","data":{"text":"echo: <prompt, first 200 chars>",
//! "success":true}}` (or what the fail mode says). The slot is held until the body is sent.

use super::{FailMode, Ids, State};
use crate::bridge::prompt::{MAX_PROMPT_CHARS, MAX_THREAD_ID, first_chars};
use axum::body::{Body, Bytes};
use axum::extract::State as Axum;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The longest team token the protocol allows.
const MAX_TEAM_TOKEN: usize = 512;

// Every field is required (or typed) as the agent images require it; the echo reads only some.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Request {
    prompt: String,
    team_token: String,
    thread_id: String,
    tenant_id: String,
    team_id: String,
    #[serde(default)]
    images: Option<Value>,
    #[serde(default)]
    file_attachments: Option<Value>,
}

pub(crate) async fn handle(
    Axum(state): Axum<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
    let ids = Ids {
        tenant_id: text("tenant_id"),
        team_id: text("team_id"),
        thread_id: text("thread_id"),
        run_id: None,
    };
    let (n, fail_500) = state.arrive("/investigate", &headers, ids);
    let response = answer(&state, &headers, value, fail_500).await;
    state.answered(n, response.status().as_u16());
    response
}

async fn answer(state: &State, headers: &HeaderMap, value: Value, fail_500: bool) -> Response {
    if !state.authorized(headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong service token");
    }
    let req: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let prompt_chars = req.prompt.chars().count();
    if prompt_chars == 0 || prompt_chars > MAX_PROMPT_CHARS {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "prompt: 1 to 500,000 characters",
        );
    }
    if req.thread_id.chars().count() > MAX_THREAD_ID || req.team_token.len() > MAX_TEAM_TOKEN {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "thread_id ≤ 128, team_token ≤ 512",
        );
    }
    if fail_500 {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "told to fail");
    }
    let permit = tokio::select! {
        p = state.slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        () = state.shutdown.cancelled() => return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    };
    if state.options.fail == FailMode::Hang {
        state.shutdown.cancelled().await;
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    tokio::select! {
        () = tokio::time::sleep(state.options.delay) => {}
        () = state.shutdown.cancelled() => return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
    let mut events = vec![
        json!({"type": "thought", "data": {"text": "reading the prompt"}}),
        json!({"type": "tool_call", "data": {"name": "echo", "input": {"thread_id": req.thread_id}}}),
    ];
    match state.options.fail {
        FailMode::ErrorEvent => {
            events.push(json!({"type": "error", "data": {"message": "echo: told to fail"}}));
        }
        FailMode::CutStream => {}
        _ => events.push(json!({"type": "result", "data": {
            "text": format!("echo: {}", first_chars(&req.prompt, 200)),
            "success": true,
        }})),
    }
    let chunks: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    // Each event is its own chunk, so readers see an incremental stream; the slot is released when
    // the body has been sent (or dropped).
    let stream = futures::stream::iter(chunks).map(move |c| {
        let _slot = &permit;
        Ok::<_, std::convert::Infallible>(Bytes::from(c))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&req.thread_id) {
        h.insert("x-thread-id", v);
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}
