//! Every bound of the `limits` settings, played by a caller who pushes past it: the answer names the
//! setting and its value (`limit`, `max`), nothing is stored, and the process keeps serving. Limits
//! are set low through the environment (`IFOX__LIMITS__…`), the way an operator sets them.

use crate::support::DbKind;
use crate::support::app::{ADMIN_TOKEN, Answer, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const A: &str = "/api/v1/admin";

/// The refusal of a bound: its status, reason, setting and maximum.
fn refused(a: &Answer, status: StatusCode, reason: &str, setting: &str, max: u64) {
    assert_eq!(
        (
            a.status,
            a.reason(),
            a.body["limit"].as_str(),
            a.body["max"].as_u64()
        ),
        (status, reason, Some(setting), Some(max)),
        "{}",
        a.body
    );
}

fn created(a: &Answer) {
    assert_eq!(a.status.as_u16() / 100, 2, "{}", a.body);
}

/// `{"a":{"a":…1}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

async fn an_org_stops_at_its_node_quota_and_a_deletion_frees_a_place(kind: DbKind) {
    let app = TestApp::spawn_with(kind, &[("IFOX__LIMITS__NODES_PER_ORG", "3")]).await;
    app.org("acme").await;
    app.node("acme", "u1", None, "unit").await;
    app.node("acme", "t1", Some("u1"), "team").await;
    app.node("acme", "t2", None, "team").await;
    let nodes = format!("{A}/orgs/acme/nodes");
    let fourth = json!({"node_id": "t3", "node_type": "team"});
    let a = app.post(&nodes, ADMIN_TOKEN, fourth.clone()).await;
    refused(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_nodes",
        "limits.nodes_per_org",
        3,
    );
    // Another org has its own quota.
    app.org("globex").await;
    app.node("globex", "t1", None, "team").await;
    let a = app.get(&nodes, ADMIN_TOKEN).await;
    assert_eq!(
        a.body["nodes"].as_array().map(Vec::len),
        Some(4),
        "{}",
        a.body
    );
    let a = app.delete(&format!("{nodes}/t2"), ADMIN_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    created(&app.post(&nodes, ADMIN_TOKEN, fourth).await);
    app.stop().await;
}

async fn a_team_cannot_claim_more_identifiers_than_its_quota(kind: DbKind) {
    let app = TestApp::spawn_with(kind, &[("IFOX__LIMITS__CLAIMS_PER_TEAM", "2")]).await;
    app.org("acme").await;
    app.node("acme", "web", None, "team").await;
    let cfg = format!("{A}/orgs/acme/nodes/web/config");
    let two = json!({"routing": {"github_repos": ["acme/a"], "slack_channel_ids": ["C1"]}});
    assert_eq!(app.put(&cfg, ADMIN_TOKEN, two).await.status, StatusCode::OK);
    let three =
        json!({"routing": {"github_repos": ["acme/a", "acme/b"], "slack_channel_ids": ["C1"]}});
    let a = app.put(&cfg, ADMIN_TOKEN, three.clone()).await;
    refused(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_claims",
        "limits.claims_per_team",
        2,
    );
    // A merge patch is held to the same quota (the claims it would leave, not the ones it names).
    let a = app
        .patch(
            &cfg,
            ADMIN_TOKEN,
            json!({"routing": {"github_repos": ["acme/b"]}}),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "a swap keeps two claims: {}",
        a.body
    );
    let a = app.patch(&cfg, ADMIN_TOKEN, three).await;
    assert_eq!(a.reason(), "too_many_claims", "{}", a.body);
    let a = app.get(&format!("{A}/orgs/acme/claims"), ADMIN_TOKEN).await;
    assert_eq!(
        a.body["claims"].as_array().map(Vec::len),
        Some(2),
        "{}",
        a.body
    );
    // A write that leaves the claims alone is not a claim.
    let a = app
        .patch(&cfg, ADMIN_TOKEN, json!({"llm": {"model": "m1"}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    app.stop().await;
}

async fn an_oversized_or_overnested_config_is_refused_before_it_is_stored(kind: DbKind) {
    let app = TestApp::spawn_with(
        kind,
        &[
            ("IFOX__LIMITS__CONFIG_BYTES", "2048"),
            ("IFOX__LIMITS__CONFIG_DEPTH", "8"),
        ],
    )
    .await;
    app.org("acme").await;
    app.node("acme", "web", None, "team").await;
    let cfg = format!("{A}/orgs/acme/nodes/web/config");
    assert_eq!(
        app.put(&cfg, ADMIN_TOKEN, json!({"prompt": "x".repeat(1000)}))
            .await
            .status,
        StatusCode::OK
    );
    // Each patch fits, the config they make would not.
    let a = app
        .patch(&cfg, ADMIN_TOKEN, json!({"more": "y".repeat(1100)}))
        .await;
    refused(
        &a,
        StatusCode::PAYLOAD_TOO_LARGE,
        "config_too_large",
        "limits.config_bytes",
        2048,
    );
    let a = app.patch(&cfg, ADMIN_TOKEN, nested(9)).await;
    refused(
        &a,
        StatusCode::BAD_REQUEST,
        "config_too_deep",
        "limits.config_depth",
        8,
    );
    assert_eq!(
        app.patch(&cfg, ADMIN_TOKEN, nested(8)).await.status,
        StatusCode::OK
    );
    // Deeper than serde_json reads (128) is malformed JSON; nothing recursive ever sees it.
    let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let a = app
        .client
        .patch(format!("{}{cfg}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("send");
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    let a = app.get(&cfg, ADMIN_TOKEN).await;
    assert_eq!(
        a.body["version"], 3,
        "only the two writes that fit are stored: {}",
        a.body
    );
    app.stop().await;
}

async fn a_team_holds_at_most_its_quota_of_live_tokens(kind: DbKind) {
    let app = TestApp::spawn_with(kind, &[("IFOX__LIMITS__TOKENS_PER_TEAM", "2")]).await;
    app.org("acme").await;
    app.node("acme", "web", None, "team").await;
    let (_, first) = app.team_token("acme", "web").await;
    app.team_token("acme", "web").await;
    let tokens = format!("{A}/orgs/acme/teams/web/tokens");
    let a = app.post(&tokens, ADMIN_TOKEN, json!({})).await;
    refused(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_tokens",
        "limits.tokens_per_team",
        2,
    );
    // A revoked token no longer counts.
    let a = app.delete(&format!("{tokens}/{first}"), ADMIN_TOKEN).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    created(&app.post(&tokens, ADMIN_TOKEN, json!({})).await);
    let a = app.get(&tokens, ADMIN_TOKEN).await;
    assert_eq!(
        a.body["tokens"].as_array().map(Vec::len),
        Some(3),
        "{}",
        a.body
    );
    app.stop().await;
}

crate::both_databases!(
    an_org_stops_at_its_node_quota_and_a_deletion_frees_a_place,
    a_team_cannot_claim_more_identifiers_than_its_quota,
    an_oversized_or_overnested_config_is_refused_before_it_is_stored,
    a_team_holds_at_most_its_quota_of_live_tokens,
);

#[tokio::test]
async fn the_tree_depth_and_token_lifetime_follow_their_settings() {
    let app = TestApp::spawn_with(
        DbKind::Sqlite,
        &[
            ("IFOX__LIMITS__TREE_DEPTH", "2"),
            ("IFOX__LIMITS__TOKEN_LIFETIME", "30d"),
        ],
    )
    .await;
    app.org("acme").await;
    app.node("acme", "u1", None, "unit").await;
    app.node("acme", "u2", Some("u1"), "unit").await;
    let a = app
        .post(
            &format!("{A}/orgs/acme/nodes"),
            ADMIN_TOKEN,
            json!({"node_id": "u3", "parent_id": "u2", "node_type": "team"}),
        )
        .await;
    refused(
        &a,
        StatusCode::BAD_REQUEST,
        "tree_too_deep",
        "limits.tree_depth",
        2,
    );
    app.node("acme", "web", Some("u1"), "team").await;
    let tokens = format!("{A}/orgs/acme/teams/web/tokens");
    let a = app
        .post(&tokens, ADMIN_TOKEN, json!({"expires_in": "31d"}))
        .await;
    refused(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "token_lifetime_too_long",
        "limits.token_lifetime",
        30 * 24 * 3600,
    );
    created(
        &app.post(&tokens, ADMIN_TOKEN, json!({"expires_in": "29d"}))
            .await,
    );
    app.stop().await;
}

#[tokio::test]
async fn a_route_explain_past_its_header_or_payload_bounds_is_refused_naming_the_bound() {
    let app = TestApp::spawn_with(
        DbKind::Sqlite,
        &[
            ("IFOX__LIMITS__EXPLAIN_HEADERS", "2"),
            ("IFOX__LIMITS__EXPLAIN_HEADER_BYTES", "100"),
            ("IFOX__LIMITS__EXPLAIN_PAYLOAD_BYTES", "1024"),
        ],
    )
    .await;
    let explain = |headers: Value, payload: Value| json!({"source": "github", "headers": headers, "payload": payload});
    let path = format!("{A}/route/explain");
    let a = app
        .post(
            &path,
            ADMIN_TOKEN,
            explain(json!({"a": "1", "b": "2", "c": "3"}), json!({})),
        )
        .await;
    refused(
        &a,
        StatusCode::BAD_REQUEST,
        "too_many_headers",
        "limits.explain_headers",
        2,
    );
    let a = app
        .post(
            &path,
            ADMIN_TOKEN,
            explain(json!({"a": "v".repeat(100)}), json!({})),
        )
        .await;
    refused(
        &a,
        StatusCode::PAYLOAD_TOO_LARGE,
        "header_too_large",
        "limits.explain_header_bytes",
        100,
    );
    for payload in [json!({"text": "p".repeat(1100)}), json!("p".repeat(1025))] {
        let a = app
            .post(&path, ADMIN_TOKEN, explain(json!({}), payload))
            .await;
        refused(
            &a,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "limits.explain_payload_bytes",
            1024,
        );
    }
    let a = app
        .post(
            &path,
            ADMIN_TOKEN,
            explain(json!({"a": "1", "b": "2"}), json!({"x": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    app.stop().await;
}
