//! The provisioning API over HTTP, on SQLite and PostgreSQL: validation names the field and writes
//! nothing, idempotency keys, claim conflicts, run visibility across orgs, the cost report.

use crate::both_databases;
use crate::support::{DbKind, NatsServer, TestApp, app::ADMIN_TOKEN};
use ifox::app::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

const P: &str = "/api/v1/admin/provision/team";

async fn app(kind: DbKind, nats: &NatsServer) -> TestApp {
    let db = crate::support::TestDb::new(kind).await;
    let app = TestApp::spawn_roles(db, &[("IFOX__NATS__URL", &nats.url())], &[Role::Admin]).await;
    app.org("acme").await;
    app
}

fn example(cpu: &str) -> Value {
    json!({"org_id":"acme","team_node_id":"enterprise-team","deployment_mode":"dedicated",
        "dedicated_config":{"replicas":2,"resources":{"cpu": cpu,"memory":"8Gi"},"node_selector":{"node-type":"high-memory"}},
        "routing":{"slack_channel_ids":["C0A4967KRBM"]}})
}

async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}{P}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn invalid_input_is_refused_naming_the_field_and_nothing_is_written(kind: DbKind) {
    let nats = NatsServer::start().await;
    let app = app(kind, &nats).await;
    let cases = [
        (example("four"), "dedicated_config.resources.cpu"),
        (
            json!({"org_id":"acme","team_node_id":"enterprise-team","deployment_mode":"dedicated","dedicated_config":{"replicas":-1}}),
            "dedicated_config.replicas",
        ),
        (
            json!({"org_id":"acme","team_node_id":"enterprise-team","deployment_mode":"dedicated","dedicated_config":{"autoscaling":{"min":4,"max":2}}}),
            "dedicated_config.autoscaling.min",
        ),
        (
            json!({"org_id":"acme","team_node_id":"enterprise-team","deployment_mode":"dedicated","dedicated_config":{"node_selector":{"bad key!":"x"}}}),
            "dedicated_config.node_selector.bad key!",
        ),
    ];
    for (body, field) in cases {
        let a = app.post(P, ADMIN_TOKEN, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
        assert_eq!(a.body["field"], field, "{}", a.body);
    }
    let node = app
        .get("/api/v1/admin/orgs/acme/nodes/enterprise-team", ADMIN_TOKEN)
        .await;
    assert_eq!(
        node.status,
        StatusCode::NOT_FOUND,
        "a refused request created the team"
    );
}

async fn the_same_key_and_body_give_the_same_run_without_a_second_token_and_another_body_is_422(
    kind: DbKind,
) {
    let nats = NatsServer::start().await;
    let app = app(kind, &nats).await;
    let (status, first) = post_with_key(&app, "k-1", &example("4")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let token = first["team_token"]["token"]
        .as_str()
        .expect("the first team token");
    assert!(token.starts_with("acme.enterprise-team."));
    let (status, again) = post_with_key(&app, "k-1", &example("4")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(again["replayed"], true);
    assert!(again.get("team_token").is_none(), "a second token: {again}");
    let (status, other) = post_with_key(&app, "k-1", &example("8")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    assert_eq!(other["reason"], "idempotency_key_reused");
    // The key in the body works like the header.
    let mut body = example("4");
    body["idempotency_key"] = json!("k-1");
    let a = app.post(P, ADMIN_TOKEN, body).await;
    assert_eq!(a.body["run_id"], first["run_id"], "{}", a.body);
    // A new key for the same team is a new run, still without a second first-token.
    let (_, next) = post_with_key(&app, "k-2", &example("2")).await;
    assert_ne!(next["run_id"], first["run_id"]);
    assert!(next.get("team_token").is_none());
}

async fn a_claim_held_by_another_team_answers_409_and_writes_nothing(kind: DbKind) {
    let nats = NatsServer::start().await;
    let app = app(kind, &nats).await;
    app.node("acme", "owner", None, "team").await;
    let a = app
        .put(
            "/api/v1/admin/orgs/acme/nodes/owner/config",
            ADMIN_TOKEN,
            json!({"routing": {"slack_channel_ids": ["C0A4967KRBM"]}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = app.post(P, ADMIN_TOKEN, example("4")).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert_eq!(a.body["reason"], "claim_conflict");
    let node = app
        .get("/api/v1/admin/orgs/acme/nodes/enterprise-team", ADMIN_TOKEN)
        .await;
    assert_eq!(node.status, StatusCode::NOT_FOUND);
}

async fn runs_are_visible_to_their_org_only_and_the_cost_report_prices_the_team(kind: DbKind) {
    let nats = NatsServer::start().await;
    let app = app(kind, &nats).await;
    app.org("other").await;
    let a = app.post(P, ADMIN_TOKEN, example("4")).await;
    let run = a.body["run_id"].as_str().unwrap().to_owned();
    let (acme_admin, _) = app.org_token("acme").await;
    let (other_admin, _) = app.org_token("other").await;
    let path = format!("/api/v1/admin/provision/runs/{run}");
    let own = app.get(&path, &acme_admin).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["steps"][0]["step"], "apply");
    assert_eq!(
        app.get(&path, &other_admin).await.status,
        StatusCode::NOT_FOUND
    );
    let mut foreign = example("4");
    foreign["team_node_id"] = json!("sneaky");
    assert_eq!(
        app.post(P, &other_admin, foreign).await.status,
        StatusCode::NOT_FOUND
    );
    let cost = app.get("/api/v1/admin/orgs/acme/cost", &acme_admin).await;
    assert_eq!(cost.status, StatusCode::OK, "{}", cost.body);
    let team = cost.body["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["team_id"] == "enterprise-team")
        .unwrap();
    assert_eq!(team["deployment_mode"], "dedicated");
    assert_eq!(team["dedicated_monthly_usd"], 221.92);
    assert_eq!(
        app.get("/api/v1/admin/orgs/acme/cost", &other_admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

both_databases!(
    invalid_input_is_refused_naming_the_field_and_nothing_is_written,
    the_same_key_and_body_give_the_same_run_without_a_second_token_and_another_body_is_422,
    a_claim_held_by_another_team_answers_409_and_writes_nothing,
    runs_are_visible_to_their_org_only_and_the_cost_report_prices_the_team,
);
