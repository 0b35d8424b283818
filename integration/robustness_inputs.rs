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
    // Past the size bound: its own answer, naming the bound.
    let a = app
        .post(
            "/api/v1/admin/route/explain",
            ADMIN_TOKEN,
            json!({"source": "github", "headers": {"x": "y".repeat(5000)}, "payload": {}}),
        )
        .await;
    assert_eq!(
        (a.status, a.reason(), a.body["limit"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "header_too_large",
            Some("limits.explain_header_bytes")
        ),
        "{}",
        a.body
    );
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

#[tokio::test]
async fn a_chain_of_nested_units_stops_at_the_depth_limit_and_the_org_still_lists() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    app.org("deep").await;
    let mut parent = "deep".to_owned();
    for level in 1..=32 {
        let id = format!("u{level}");
        let a = app
            .post(
                "/api/v1/admin/orgs/deep/nodes",
                ADMIN_TOKEN,
                json!({"node_id": id, "parent_id": parent, "node_type": "unit"}),
            )
            .await;
        assert_eq!(a.status.as_u16() / 100, 2, "level {level}: {}", a.body);
        parent = id;
    }
    let a = app
        .post(
            "/api/v1/admin/orgs/deep/nodes",
            ADMIN_TOKEN,
            json!({"node_id": "u33", "parent_id": parent, "node_type": "unit"}),
        )
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "tree_too_deep"),
        "{}",
        a.body
    );
    // Moving a two-level branch under the deepest unit is refused the same way.
    app.node("deep", "side", None, "unit").await;
    app.node("deep", "leaf", Some("side"), "unit").await;
    let a = app
        .patch(
            "/api/v1/admin/orgs/deep/nodes/side",
            ADMIN_TOKEN,
            json!({"parent_id": "u31"}),
        )
        .await;
    assert_eq!(a.reason(), "tree_too_deep", "{}", a.body);
    let a = app.get("/api/v1/admin/orgs/deep/nodes", ADMIN_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["nodes"].as_array().map(Vec::len), Some(35));
}
