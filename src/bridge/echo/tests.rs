//! The echo agent over real HTTP on loopback ports, in process.

use super::*;
use crate::bridge::sse::{AnswerReader, Outcome};
use axum::extract::State as AxState;
use serde_json::{Value, json};
use std::time::Instant;

struct Running {
    agent: EchoAgent,
    base: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), EchoError>>,
}

async fn start(options: EchoOptions) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let agent = EchoAgent::new(options);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(agent.clone().serve(listener, shutdown.clone()));
    Running {
        agent,
        base,
        shutdown,
        server,
    }
}

fn investigate_body(prompt: &str) -> Value {
    json!({"prompt": prompt, "team_token": "tok", "thread_id": "slack-c1-1-2",
        "tenant_id": "acme", "team_id": "payments"})
}

/// Posts to `/investigate` and reads the answer incrementally as the bridge will.
async fn investigate(base: &str, body: &Value) -> (u16, Option<String>, Outcome) {
    let mut resp = reqwest::Client::new()
        .post(format!("{base}/investigate"))
        .header("idempotency-key", "run-1")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let thread = resp
        .headers()
        .get("x-thread-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut reader = AnswerReader::default();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        reader.feed(&chunk).unwrap();
    }
    (status, thread, reader.finish())
}

#[tokio::test]
async fn investigate_answers_an_sse_result_and_records_the_request() {
    let echo = start(EchoOptions::default()).await;
    let prompt = "x".repeat(300);
    let (status, thread, outcome) = investigate(&echo.base, &investigate_body(&prompt)).await;
    assert_eq!(status, 200);
    assert_eq!(thread.as_deref(), Some("slack-c1-1-2"));
    assert_eq!(
        outcome,
        Outcome::Completed {
            text: format!("echo: {}", "x".repeat(200)),
            success: true,
            truncated: false
        }
    );
    let listed: Vec<Recorded> = reqwest::get(format!("{}/_echo/requests", echo.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, echo.agent.requests());
    let [rec] = listed.as_slice() else {
        panic!("{listed:?}")
    };
    assert_eq!(rec.path, "/investigate");
    assert_eq!(rec.idempotency_key.as_deref(), Some("run-1"));
    assert!(rec.traceparent.as_deref().unwrap().starts_with("00-0af7"));
    assert_eq!(rec.tenant_id.as_deref(), Some("acme"));
    assert_eq!(rec.team_id.as_deref(), Some("payments"));
    assert_eq!(rec.status, 200);
    let health = reqwest::get(format!("{}/healthz", echo.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    echo.shutdown.cancel();
    echo.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn fail_modes_give_500s_first_then_error_events_and_cut_streams() {
    let echo = start(EchoOptions {
        fail: FailMode::Http500FirstN(2),
        ..EchoOptions::default()
    })
    .await;
    let body = investigate_body("why?");
    let statuses = [
        investigate(&echo.base, &body).await.0,
        investigate(&echo.base, &body).await.0,
        investigate(&echo.base, &body).await.0,
    ];
    assert_eq!(statuses, [500, 500, 200]);
    let recorded: Vec<u16> = echo.agent.requests().iter().map(|r| r.status).collect();
    assert_eq!(recorded, [500, 500, 200]);

    let echo = start(EchoOptions {
        fail: FailMode::ErrorEvent,
        ..EchoOptions::default()
    })
    .await;
    let (status, _, outcome) = investigate(&echo.base, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        outcome,
        Outcome::AgentError {
            message: "echo: told to fail".into()
        }
    );

    let echo = start(EchoOptions {
        fail: FailMode::CutStream,
        ..EchoOptions::default()
    })
    .await;
    assert_eq!(investigate(&echo.base, &body).await.2, Outcome::Cut);
}

#[tokio::test]
async fn bad_bodies_and_missing_service_tokens_are_refused() {
    let echo = start(EchoOptions {
        service_token: Some("svc".into()),
        ..EchoOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/investigate", echo.base);
    let r = client
        .post(&url)
        .json(&investigate_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .bearer_auth("svc")
        .json(&investigate_body(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "an empty prompt");
    let r = client
        .post(&url)
        .bearer_auth("svc")
        .json(&json!({"prompt": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "fields missing");
    let r = client
        .post(&url)
        .bearer_auth("svc")
        .json(&investigate_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn excess_requests_wait_for_a_slot_and_hanging_requests_end_at_shutdown() {
    let delay = Duration::from_millis(200);
    let echo = start(EchoOptions {
        delay,
        max_concurrent: 1,
        ..EchoOptions::default()
    })
    .await;
    let begun = Instant::now();
    let body = investigate_body("q");
    let (a, b) = tokio::join!(
        investigate(&echo.base, &body),
        investigate(&echo.base, &body)
    );
    assert!(matches!(a.2, Outcome::Completed { .. }) && matches!(b.2, Outcome::Completed { .. }));
    assert!(
        begun.elapsed() >= delay * 2,
        "one at a time: {:?}",
        begun.elapsed()
    );

    let echo = start(EchoOptions {
        fail: FailMode::Hang,
        ..EchoOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let hung = client
        .post(format!("{}/investigate", echo.base))
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
    let pending = tokio::spawn(
        client
            .post(format!("{}/v1/runs", echo.base))
            .json(&json!({"run": {"run_id": "r"}, "prompt": "p", "run_token": "t", "status_url": "http://127.0.0.1:9/"}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    echo.shutdown.cancel();
    assert_eq!(pending.await.unwrap().unwrap().status(), 503);
    echo.server.await.unwrap().unwrap();
}

/// The reports a status receiver got: (authorization header, body).
type Reports = Arc<Mutex<Vec<(String, Value)>>>;

/// A stand-in for ifox's status endpoint: records (authorization, body) of each report.
async fn status_receiver() -> (String, Reports) {
    let got: Reports = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/v1/runs/{run_id}/status",
            axum::routing::post(
                |AxState(got): AxState<Reports>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    got.lock().unwrap().push((auth, body));
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(got.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, got)
}

fn run_body(ifox: &str, run_id: &str) -> Value {
    json!({
        "run": {"schema": "ifox.agent_run.v1", "run_id": run_id, "event_id": "slack:Ev1",
            "org_id": "acme", "team_id": "payments", "source": "slack", "event_type": "app_mention",
            "matched": {"kind": "slack_channel_ids", "value": "C1"}, "deployment_mode": "shared",
            "entrance_agent": "planner", "config_version": "1.1"},
        "prompt": "why is checkout slow?",
        "thread_id": "slack-c1-1-2",
        "event": {"subject": "ifox.events.slack.app_mention", "headers": {}, "payload": {}},
        "run_token": "run-token-1",
        "status_url": format!("{ifox}/api/v1/runs/{run_id}/status"),
        "config_url": format!("{ifox}/api/v1/config/me/effective"),
        "deadline": "2030-01-01T00:00:00Z",
    })
}

async fn reports_until(got: &Mutex<Vec<(String, Value)>>, n: usize) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = got.lock().unwrap().clone();
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_ifox_protocol_accepts_at_once_then_reports_running_and_completed_once() {
    let (ifox, got) = status_receiver().await;
    let echo = start(EchoOptions {
        delay: Duration::from_millis(50),
        ..EchoOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let post = || {
        client
            .post(format!("{}/v1/runs", echo.base))
            .header("idempotency-key", "r1")
            .json(&run_body(&ifox, "r1"))
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 202);
    let reports = reports_until(&got, 2).await;
    assert_eq!(
        reports,
        [
            (
                "Bearer run-token-1".to_owned(),
                json!({"status": "running"})
            ),
            (
                "Bearer run-token-1".to_owned(),
                json!({"status": "completed", "result": {"text": "echo: why is checkout slow?", "success": true}})
            ),
        ]
    );
    // A redelivery with the same run id is acknowledged and not run again.
    let again: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(got.lock().unwrap().len(), 2);
    let recs = echo.agent.requests();
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter()
            .all(|r| r.idempotency_key.as_deref() == Some("r1")
                && r.run_id.as_deref() == Some("r1")
                && r.team_id.as_deref() == Some("payments")
                && r.tenant_id.as_deref() == Some("acme")
                && r.status == 202)
    );
}

#[tokio::test]
async fn the_ifox_protocol_reports_failure_and_500s_as_told() {
    let (ifox, got) = status_receiver().await;
    let echo = start(EchoOptions {
        fail: FailMode::ErrorEvent,
        ..EchoOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/runs", echo.base))
        .json(&run_body(&ifox, "r2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let reports = reports_until(&got, 2).await;
    assert_eq!(
        reports[1].1,
        json!({"status": "failed", "error": "echo: told to fail"})
    );

    let echo = start(EchoOptions {
        fail: FailMode::Http500FirstN(1),
        ..EchoOptions::default()
    })
    .await;
    let send = || {
        client
            .post(format!("{}/v1/runs", echo.base))
            .json(&run_body(&ifox, "r3"))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 500);
    assert_eq!(send().await.unwrap().status(), 202);
    let r = client
        .post(format!("{}/v1/runs", echo.base))
        .json(&json!({"run": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[test]
fn fail_modes_parse_from_their_cli_names() {
    assert_eq!("none".parse::<FailMode>().unwrap(), FailMode::None);
    assert_eq!(
        "http-500-first-3".parse::<FailMode>().unwrap(),
        FailMode::Http500FirstN(3)
    );
    assert_eq!(
        "error-event".parse::<FailMode>().unwrap(),
        FailMode::ErrorEvent
    );
    assert_eq!(
        "cut-stream".parse::<FailMode>().unwrap(),
        FailMode::CutStream
    );
    assert_eq!("hang".parse::<FailMode>().unwrap(), FailMode::Hang);
    assert!("http-500-first-x".parse::<FailMode>().is_err());
    assert!("explode".parse::<FailMode>().is_err());
}
