//! Run tokens played against the API: a token reads its own team's effective config while its run
//! is live and nothing else, reports only its own run, expires, and a forged or finished one is
//! refused with its reason.

use crate::bridge_fixtures::*;
use crate::support::{DbKind, eventually};
use ifox::bridge::echo::{EchoOptions, FailMode};
use ifox::domain::run_token::{self, RunClaims};
use ifox::domain::{NodeId, OrgId};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn run_tokens_read_their_own_team_only_report_their_own_run_and_expire() {
    let shared = Agent::start(EchoOptions::default()).await;
    // Alpha's agent keeps its run live (it never answers); beta's run finishes.
    let hanging = Agent::start(EchoOptions {
        fail: FailMode::Hang,
        ..EchoOptions::default()
    })
    .await;
    let stack = stack(DbKind::Sqlite, &shared, &[]).await;
    team(
        &stack,
        "alpha",
        json!({"llm": {"model": "m1"}, "agent_service_url": hanging.url}),
    )
    .await;
    team(&stack, "beta", json!({})).await;
    send(&stack, "alpha", "d-alpha").await;
    send(&stack, "beta", "d-beta").await;
    let alpha = eventually("alpha's run to be live", WAIT, || async {
        let run = runs_of(&stack, "d-alpha").await.first()?.clone();
        matches!(run["status"].as_str(), Some("delivering" | "running")).then_some(run)
    })
    .await;
    let beta = finished(&stack, "d-beta", WAIT).await;
    let key = ifox::settings::BridgeSettings::default().token_key(crate::support::app::ADMIN_TOKEN);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = |run: &serde_json::Value, expires: i64| {
        run_token::mint(
            &key,
            &RunClaims {
                org: OrgId::parse("acme").unwrap(),
                team: NodeId::parse(run["team_id"].as_str().unwrap()).unwrap(),
                run_id: run["run_id"].as_str().unwrap().to_owned(),
                expires_unix: expires,
            },
        )
    };
    let app = &stack.app;
    let alpha_token = token(&alpha, now + 60);
    let a = app.get("/api/v1/config/me/effective", &alpha_token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["config"]["llm"]["model"], "m1", "{}", a.body);
    // Read-only: no config writes, no admin reads.
    let a = app
        .patch("/api/v1/config/me", &alpha_token, json!({"x": 1}))
        .await;
    assert!(a.status == 401 || a.status == 403, "{}", a.status);
    let a = app
        .get("/api/v1/admin/orgs/acme/nodes/beta/effective", &alpha_token)
        .await;
    assert!(a.status == 401 || a.status == 404, "{}", a.status);
    // Its own run only: another team's run answers 404, like a missing one.
    let path = format!("/api/v1/runs/{}/status", beta["run_id"].as_str().unwrap());
    let a = app
        .post(&path, &alpha_token, json!({"status": "failed"}))
        .await;
    assert_eq!(a.status, 404, "{}", a.body);
    // Its own finished run cannot be changed, and the token of a finished run reads nothing.
    let beta_token = token(&beta, now + 60);
    let path = format!("/api/v1/runs/{}/status", beta["run_id"].as_str().unwrap());
    let a = app
        .post(&path, &beta_token, json!({"status": "failed"}))
        .await;
    assert_eq!((a.status.as_u16(), a.reason()), (409, "run_finished"));
    let a = app.get("/api/v1/config/me/effective", &beta_token).await;
    assert_eq!(
        (a.status.as_u16(), a.reason()),
        (401, "run_not_live"),
        "{}",
        a.body
    );
    // Nor does a well-signed token of a run that does not exist (a team created again under the
    // same ids after its runs went with the old one): refused after the recorder's lag budget, as
    // a run the records may not show yet (retryable, but nothing is read).
    let ghost = token(
        &json!({"team_id": "alpha", "run_id": "01a23400-0000-8000-8000-000000000000"}),
        now + 60,
    );
    let a = app.get("/api/v1/config/me/effective", &ghost).await;
    assert_eq!(
        (a.status.as_u16(), a.reason()),
        (503, "run_not_recorded_yet"),
        "{}",
        a.body
    );
    // Expired.
    let expired = token(&alpha, now - 1);
    let a = app.get("/api/v1/config/me/effective", &expired).await;
    assert_eq!((a.status.as_u16(), a.reason()), (401, "token_expired"));
    // Forged with another key.
    let forged = run_token::mint(
        b"not the key",
        &RunClaims {
            org: OrgId::parse("acme").unwrap(),
            team: NodeId::parse("beta").unwrap(),
            run_id: beta["run_id"].as_str().unwrap().to_owned(),
            expires_unix: now + 60,
        },
    );
    let a = app.get("/api/v1/config/me/effective", &forged).await;
    assert_eq!((a.status.as_u16(), a.reason()), (401, "invalid_token"));
}
