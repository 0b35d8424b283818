//! The access matrix: every admin and team endpoint × every kind of caller, with the expected status
//! of each cell. What a caller cannot see answers 404, exactly like a node that does not exist.

use crate::support::DbKind;
use crate::support::app::{ADMIN_TOKEN, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

const CALLERS: [&str; 9] = [
    "none",
    "malformed",
    "revoked",
    "expired",
    "team A",
    "team B",
    "org admin A",
    "org admin other",
    "global",
];

struct Row {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// Statuses for team A, team B, org admin of A's org, org admin of another org, global admin
    /// (the four bad credentials always answer 401).
    expect: [u16; 5],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 5]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

fn matrix() -> Vec<Row> {
    use Method as M;
    let b = |v: Value| Some(v);
    vec![
        row(
            M::POST,
            "/api/v1/admin/orgs",
            b(json!({"org_id": "acme"})),
            [403, 403, 403, 403, 409],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs",
            None,
            [403, 403, 200, 200, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme",
            None,
            [403, 403, 200, 404, 200],
        ),
        row(
            M::DELETE,
            "/api/v1/admin/orgs/acme",
            None,
            [403, 403, 403, 404, 409],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/nodes",
            None,
            [403, 403, 200, 404, 200],
        ),
        row(
            M::POST,
            "/api/v1/admin/orgs/acme/nodes",
            b(json!({"node_id": "platform", "node_type": "unit"})),
            [403, 403, 409, 404, 409],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/nodes/team-a",
            None,
            [403, 404, 200, 404, 200],
        ),
        row(
            M::PATCH,
            "/api/v1/admin/orgs/acme/nodes/team-a",
            b(json!({"name": "Team A"})),
            [403, 404, 200, 404, 200],
        ),
        row(
            M::DELETE,
            "/api/v1/admin/orgs/acme/nodes/team-a",
            None,
            [403, 404, 409, 404, 409],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/nodes/team-a/config",
            None,
            [403, 404, 200, 404, 200],
        ),
        row(
            M::PUT,
            "/api/v1/admin/orgs/acme/nodes/team-a/config",
            b(json!({"x": 1})),
            [403, 404, 200, 404, 200],
        ),
        row(
            M::PATCH,
            "/api/v1/admin/orgs/acme/nodes/team-a/config",
            b(json!({"x": 2})),
            [403, 404, 200, 404, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/nodes/team-a/config/history",
            None,
            [403, 404, 200, 404, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/nodes/team-a/effective?explain=true",
            None,
            [403, 404, 200, 404, 200],
        ),
        row(
            M::POST,
            "/api/v1/admin/orgs/acme/nodes/platform/config/rollback",
            b(json!({"version": 1})),
            [404, 404, 200, 404, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/nodes/platform/locks",
            None,
            [404, 404, 200, 404, 200],
        ),
        row(
            M::PUT,
            "/api/v1/admin/orgs/acme/nodes/platform/locks",
            b(json!({"paths": ["/llm"]})),
            [404, 404, 200, 404, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/claims",
            None,
            [403, 403, 200, 404, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/audit",
            None,
            [403, 403, 200, 404, 200],
        ),
        row(
            M::POST,
            "/api/v1/admin/orgs/acme/tokens",
            b(json!({})),
            [403, 403, 403, 404, 201],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/tokens",
            None,
            [403, 403, 403, 404, 200],
        ),
        row(
            M::DELETE,
            "/api/v1/admin/orgs/acme/tokens/tok_missing",
            None,
            [403, 403, 403, 404, 404],
        ),
        row(
            M::POST,
            "/api/v1/admin/orgs/acme/teams/team-a/tokens",
            b(json!({})),
            [403, 404, 201, 404, 201],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/acme/teams/team-a/tokens",
            None,
            [403, 404, 200, 404, 200],
        ),
        row(
            M::DELETE,
            "/api/v1/admin/orgs/acme/teams/team-a/tokens/tok_missing",
            None,
            [403, 404, 404, 404, 404],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/globex/nodes/g",
            None,
            [404, 404, 404, 200, 200],
        ),
        row(
            M::GET,
            "/api/v1/admin/orgs/globex/nodes/g/config",
            None,
            [404, 404, 404, 200, 200],
        ),
        row(
            M::POST,
            "/api/v1/admin/route/lookup",
            b(json!({"identifiers": {"slack_channel_ids": ["C1"]}})),
            [403, 403, 200, 200, 200],
        ),
        row(M::GET, "/api/v1/config/me", None, [200, 200, 403, 403, 403]),
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"y": 1})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::GET,
            "/api/v1/config/me/effective",
            None,
            [200, 200, 403, 403, 403],
        ),
        // Platform-owned keys: never through a team token (403 `platform_owned_key`), still by admins.
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"agent_service_url": "http://169.254.169.254/latest/meta-data/"})),
            [403, 403, 403, 403, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"routing": null})),
            [403, 403, 403, 403, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"max_concurrent_agents": 100, "deployment": {"replicas": 9}})),
            [403, 403, 403, 403, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/admin/orgs/acme/nodes/team-b/config",
            b(json!({"agent_service_url": "http://agent.example:8080"})),
            [404, 403, 200, 404, 200],
        ),
        // Locks (the org locks /security/pii_redaction): an ancestor replaced, removed or retyped, or
        // the path itself, is refused to every writer below the lock.
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"security": false})),
            [403, 403, 403, 403, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"security": {"pii_redaction": false}})),
            [403, 403, 403, 403, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/admin/orgs/acme/nodes/team-a/config",
            b(json!({"security": "off"})),
            [403, 404, 403, 404, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/config/me",
            b(json!({"security": {"note": "ok"}})),
            [200, 200, 403, 403, 403],
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_matrix_says() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    app.org("acme").await;
    app.node("acme", "platform", None, "unit").await;
    app.node("acme", "team-a", Some("platform"), "team").await;
    app.node("acme", "team-b", Some("platform"), "team").await;
    app.put(
        "/api/v1/admin/orgs/acme/nodes/team-a/config",
        ADMIN_TOKEN,
        json!({"routing": {"slack_channel_ids": ["C1"]}}),
    )
    .await;
    app.put(
        "/api/v1/admin/orgs/acme/nodes/acme/config",
        ADMIN_TOKEN,
        json!({"security": {"pii_redaction": true}}),
    )
    .await;
    let locked = app
        .put(
            "/api/v1/admin/orgs/acme/nodes/acme/locks",
            ADMIN_TOKEN,
            json!({"paths": ["/security/pii_redaction"]}),
        )
        .await;
    assert_eq!(locked.status, 200, "{}", locked.body);
    app.org("globex").await;
    app.node("globex", "g", None, "team").await;

    let (team_a, _) = app.team_token("acme", "team-a").await;
    let (team_b, _) = app.team_token("acme", "team-b").await;
    let (org_a, _) = app.org_token("acme").await;
    let (org_other, _) = app.org_token("globex").await;
    let (revoked, revoked_id) = app.team_token("acme", "team-a").await;
    let a = app
        .delete(
            &format!("/api/v1/admin/orgs/acme/teams/team-a/tokens/{revoked_id}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(a.status, 204);
    let expired = app
        .post(
            "/api/v1/admin/orgs/acme/teams/team-a/tokens",
            ADMIN_TOKEN,
            json!({"expires_in": "1s"}),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::support::eventually(
        "the short token to expire",
        std::time::Duration::from_secs(5),
        || async { (app.get("/api/v1/config/me", &expired).await.status == 401).then_some(()) },
    )
    .await;

    let callers: [(Option<&str>, &str); 9] = [
        (None, "missing_token"),
        (Some("acme.not-a-token"), "malformed_token"),
        (Some(&revoked), "token_revoked"),
        (Some(&expired), "token_expired"),
        (Some(&team_a), ""),
        (Some(&team_b), ""),
        (Some(&org_a), ""),
        (Some(&org_other), ""),
        (Some(ADMIN_TOKEN), ""),
    ];
    let mut failures = Vec::new();
    for row in matrix() {
        for (i, (token, reason)) in callers.iter().enumerate() {
            let expected = if i < 4 { 401 } else { row.expect[i - 4] };
            let a = app
                .request(row.method.clone(), row.path, *token, row.body.as_ref())
                .await;
            if a.status.as_u16() != expected || (i < 4 && a.reason() != *reason) {
                failures.push(format!(
                    "{} {} as {}: expected {expected} {reason}, got {} {}",
                    row.method, row.path, CALLERS[i], a.status, a.body
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_foreign_org_answers_exactly_like_a_missing_one() {
    let app = TestApp::spawn(DbKind::Sqlite).await;
    app.org("acme").await;
    app.org("globex").await;
    app.node("globex", "g", None, "team").await;
    let (org_a, _) = app.org_token("acme").await;
    let foreign = app.get("/api/v1/admin/orgs/globex/nodes/g", &org_a).await;
    let missing = app.get("/api/v1/admin/orgs/initech/nodes/g", &org_a).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["reason"], missing.body["reason"]);
    assert_eq!(
        foreign.body["message"]
            .as_str()
            .unwrap()
            .replace("globex", "X"),
        missing.body["message"]
            .as_str()
            .unwrap()
            .replace("initech", "X")
    );
}
