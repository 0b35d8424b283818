//! The admin and team API over real HTTP (SQLite; the PostgreSQL story is `tenancy_store`, plus one
//! end-to-end run here).

use crate::support::DbKind;
use crate::support::app::{ADMIN_TOKEN, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

const A: &str = "/api/v1/admin";

async fn acme(app: &TestApp) {
    app.org("acme").await;
    app.node("acme", "platform", None, "unit").await;
    app.node("acme", "payments", Some("platform"), "team").await;
    app.node("acme", "search", Some("platform"), "team").await;
}

async fn the_design_example_of_put_with_null_removes_the_key(kind: DbKind) {
    let app = TestApp::spawn(kind).await;
    acme(&app).await;
    let cfg = format!("{A}/orgs/acme/nodes/payments/config");
    let a = app
        .put(
            &cfg,
            ADMIN_TOKEN,
            json!({"agent_service_url": "http://x:8080", "keep": 1}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = app
        .put(&cfg, ADMIN_TOKEN, json!({"agent_service_url": null}))
        .await;
    assert_eq!(a.body["config"], json!({"keep": 1}));
    let a = app.get(&cfg, ADMIN_TOKEN).await;
    assert_eq!(a.body["config"], json!({"keep": 1}));
    assert_eq!(a.headers["etag"], "\"3\"");
    app.stop().await;
}

#[tokio::test]
async fn put_with_null_removes_the_key_on_sqlite() {
    the_design_example_of_put_with_null_removes_the_key(DbKind::Sqlite).await;
}

#[tokio::test]
async fn put_with_null_removes_the_key_on_postgres() {
    the_design_example_of_put_with_null_removes_the_key(DbKind::Postgres).await;
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412_and_a_current_one_succeeds() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    acme(&app).await;
    let cfg = format!("{A}/orgs/acme/nodes/payments/config");
    let etag = app.get(&cfg, ADMIN_TOKEN).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    app.patch(&cfg, ADMIN_TOKEN, json!({"a": 1})).await;
    let stale = app
        .client
        .patch(format!("{}{cfg}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("if-match", &etag)
        .json(&json!({"a": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let body: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(
        (body["reason"].as_str(), body["current_version"].as_i64()),
        (Some("version_mismatch"), Some(2))
    );
    let fresh = app
        .client
        .patch(format!("{}{cfg}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("if-match", "\"2\"")
        .json(&json!({"a": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(fresh.headers()["etag"], "\"3\"");
}

#[tokio::test]
async fn bad_input_gets_a_status_and_a_machine_readable_reason() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    acme(&app).await;
    let cfg = format!("{}{A}/orgs/acme/nodes/payments/config", app.base);
    let raw = |body: &'static str| {
        app.client
            .put(&cfg)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = raw("{not json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["reason"],
        "malformed_json"
    );
    let r = raw("[1,2]").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["reason"],
        "not_an_object"
    );
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(1_100_000));
    let r = app
        .client
        .put(&cfg)
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .client
        .put(&cfg)
        .bearer_auth(ADMIN_TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let a = app
        .post(
            &format!("{A}/orgs/acme/nodes"),
            ADMIN_TOKEN,
            json!({"node_id": "Bad_Id", "node_type": "team"}),
        )
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    assert!(
        a.body["message"].as_str().unwrap().contains("DNS label"),
        "{}",
        a.body
    );
    let a = app
        .get(&format!("{A}/orgs/acme/nodes/Nope_x"), ADMIN_TOKEN)
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    let a = app
        .get(&format!("{A}/orgs/acme/nodes/ghost"), ADMIN_TOKEN)
        .await;
    assert_eq!((a.status, a.reason()), (StatusCode::NOT_FOUND, "not_found"));
    let a = app
        .put(
            &format!("{A}/orgs/acme/nodes/payments/config"),
            ADMIN_TOKEN,
            json!({"routing": {"slack": ["C1"]}}),
        )
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "invalid_routing")
    );
    let a = app
        .post(
            &format!("{A}/orgs/acme/nodes"),
            ADMIN_TOKEN,
            json!({"node_id": "x", "node_type": "team", "parent_id": "payments"}),
        )
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "parent_is_team")
    );
    let a = app
        .patch(
            &format!("{A}/orgs/acme/nodes/platform"),
            ADMIN_TOKEN,
            json!({"parent_id": "platform"}),
        )
        .await;
    assert_eq!((a.status, a.reason()), (StatusCode::BAD_REQUEST, "cycle"));
    let a = app
        .request(Method::GET, &format!("{A}/orgs"), None, None)
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::UNAUTHORIZED, "missing_token")
    );
    assert_eq!(a.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn locks_and_claims_are_refused_over_http_naming_what_is_in_the_way() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    acme(&app).await;
    let a = app
        .put(
            &format!("{A}/orgs/acme/nodes/acme/locks"),
            ADMIN_TOKEN,
            json!({"paths": ["/security/pii_redaction"]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = app
        .patch(
            &format!("{A}/orgs/acme/nodes/search/config"),
            ADMIN_TOKEN,
            json!({"security": {"pii_redaction": false}}),
        )
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::FORBIDDEN, "locked_path")
    );
    assert_eq!(
        (a.body["path"].as_str(), a.body["locked_by"].as_str()),
        (Some("/security/pii_redaction"), Some("acme"))
    );

    let claim = json!({"routing": {"slack_channel_ids": ["C0A4967KRBM"]}});
    assert_eq!(
        app.put(
            &format!("{A}/orgs/acme/nodes/payments/config"),
            ADMIN_TOKEN,
            claim.clone()
        )
        .await
        .status,
        StatusCode::OK
    );
    let a = app
        .put(
            &format!("{A}/orgs/acme/nodes/search/config"),
            ADMIN_TOKEN,
            claim,
        )
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::CONFLICT, "claim_conflict")
    );
    assert_eq!(a.body["team"], "payments");
    assert_eq!(
        a.body["identifier"],
        json!({"kind": "slack_channel_ids", "value": "C0A4967KRBM"})
    );

    let a = app.get(&format!("{A}/orgs/acme/claims"), ADMIN_TOKEN).await;
    assert_eq!(a.body["claims"].as_array().unwrap().len(), 1);
    let a = app
        .post(
            &format!("{A}/route/lookup"),
            ADMIN_TOKEN,
            json!({"identifiers": {"slack_channel_ids": [" C0A4967KRBM "]}}),
        )
        .await;
    assert_eq!(
        a.body,
        json!({"outcome": "found", "org_id": "acme", "team_id": "payments", "matched": {"kind": "slack_channel_ids", "value": "C0A4967KRBM"}})
    );
    let a = app
        .post(
            &format!("{A}/route/lookup"),
            ADMIN_TOKEN,
            json!({"identifiers": {"github_repos": ["x/y"]}}),
        )
        .await;
    assert_eq!(a.body["outcome"], "not_found");
}

#[tokio::test]
async fn a_team_token_reads_its_effective_config_and_patches_its_own() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    acme(&app).await;
    app.put(
        &format!("{A}/orgs/acme/nodes/acme/config"),
        ADMIN_TOKEN,
        json!({"llm": {"model": "m1", "temperature": 0.2}}),
    )
    .await;
    app.put(
        &format!("{A}/orgs/acme/nodes/platform/config"),
        ADMIN_TOKEN,
        json!({"llm": {"model": "m2"}}),
    )
    .await;
    let (token, token_id) = app.team_token("acme", "payments").await;
    let a = app
        .patch("/api/v1/config/me", &token, json!({"runbooks": ["r1"]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = app
        .get("/api/v1/config/me/effective?explain=true", &token)
        .await;
    assert_eq!(
        a.body["config"],
        json!({"llm": {"model": "m2", "temperature": 0.2}, "runbooks": ["r1"]})
    );
    assert_eq!(
        a.body["sources"],
        json!({"/llm/model": "platform", "/llm/temperature": "acme", "/runbooks": "payments"})
    );
    let a = app
        .get(
            &format!("{A}/orgs/acme/nodes/payments/effective?explain=true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(a.body["sources"]["/runbooks"], "payments");
    let audit = app.get(&format!("{A}/orgs/acme/audit"), ADMIN_TOKEN).await;
    let entry = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "config.patch" && e["target"] == "acme/payments")
        .cloned()
        .unwrap();
    assert_eq!(
        entry["actor"],
        token_id.as_str(),
        "the audit names the token id"
    );
    assert!(
        !audit.body.to_string().contains(&token),
        "the token never appears in the audit"
    );
}

#[tokio::test]
async fn tokens_are_shown_once_listed_as_metadata_and_refused_after_expiry() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    acme(&app).await;
    let a = app
        .post(
            &format!("{A}/orgs/acme/teams/payments/tokens"),
            ADMIN_TOKEN,
            json!({"name": "short", "expires_in": "1s"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let token = a.body["token"].as_str().unwrap().to_owned();
    let list = app
        .get(&format!("{A}/orgs/acme/teams/payments/tokens"), ADMIN_TOKEN)
        .await;
    assert!(
        !list.body.to_string().contains(&token) && !list.body.to_string().contains("hash"),
        "{}",
        list.body
    );
    assert_eq!(list.body["tokens"][0]["name"], "short");
    crate::support::eventually(
        "the token to expire",
        std::time::Duration::from_secs(5),
        || async {
            let a = app.get("/api/v1/config/me", &token).await;
            (a.status == StatusCode::UNAUTHORIZED && a.reason() == "token_expired").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn deleting_a_node_needs_cascade_while_it_has_children() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    acme(&app).await;
    let a = app
        .delete(&format!("{A}/orgs/acme/nodes/platform"), ADMIN_TOKEN)
        .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::CONFLICT, "has_children")
    );
    let a = app
        .delete(
            &format!("{A}/orgs/acme/nodes/platform?cascade=true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["deleted"].as_array().unwrap().len(), 3);
    let tree = app.get(&format!("{A}/orgs/acme/nodes"), ADMIN_TOKEN).await;
    assert_eq!(tree.body["tree"]["children"], json!([]));
}
