//! Hostile input that used to take a handler (or the process) down now gets a clear answer, and the
//! process keeps serving.

use crate::support::DbKind;
use crate::support::app::{ADMIN_TOKEN, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_ten_thousand_year_token_is_refused_and_listing_tokens_keeps_working() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    app.org("acme").await;
    app.node("acme", "web", None, "team").await;
    let path = "/api/v1/admin/orgs/acme/teams/web/tokens";
    let a = app
        .post(path, ADMIN_TOKEN, json!({"expires_in": "10000y"}))
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::UNPROCESSABLE_ENTITY, "token_lifetime_too_long"),
        "{}",
        a.body
    );
    let a = app
        .post(
            path,
            ADMIN_TOKEN,
            json!({"expires_at": "9999-12-31T00:00:00Z"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let a = app
        .post(path, ADMIN_TOKEN, json!({"expires_in": "365d"}))
        .await;
    assert_eq!(a.status.as_u16() / 100, 2, "{}", a.body);
    let a = app.get(path, ADMIN_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn route_explain_with_a_line_break_in_a_header_is_a_bad_request_not_a_dropped_connection() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    for headers in [
        json!({"ifox-route-github_repos": "acme/x\r\nInjected: 1"}),
        json!({"bad header": "x"}),
        json!({"x": "y".repeat(5000)}),
    ] {
        let a = app
            .post(
                "/api/v1/admin/route/explain",
                ADMIN_TOKEN,
                json!({"source": "github", "headers": headers, "payload": {}}),
            )
            .await;
        assert_eq!(
            (a.status, a.reason()),
            (StatusCode::BAD_REQUEST, "invalid_header"),
            "{}",
            a.body
        );
    }
    let a = app
        .post(
            "/api/v1/admin/route/explain",
            ADMIN_TOKEN,
            json!({"source": "git\nhub", "payload": {}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    // Still serving.
    let a = app.get("/api/v1/admin/orgs", ADMIN_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
}
