//! A claim conflict during provisioning answers exactly as through the config API (409
//! `claim_conflict` naming the owner), also when the owner's claim commits while the provisioning
//! request is already past the check: both go through tenancy's one write path.

use crate::both_databases;
use crate::support::{DbKind, NatsServer, TestApp, app::ADMIN_TOKEN, eventually};
use ifox::app::Role;
use ifox::domain::{NodeId, OrgId, now_ms};
use ifox::tenancy::scope::cli_scope;
use ifox::tenancy::{ConfigWrite, write_config_in};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const PROVISION: &str = "/api/v1/admin/provision/team";
const CHANNEL: &str = "C0A4967KRBM";

fn claim() -> Value {
    json!({"routing": {"slack_channel_ids": [CHANNEL]}})
}

fn provision_body(team: &str) -> Value {
    json!({"org_id": "acme", "team_node_id": team, "deployment_mode": "shared", "routing": claim()["routing"]})
}

async fn app(kind: DbKind, nats: &NatsServer) -> TestApp {
    let db = crate::support::TestDb::new(kind).await;
    let app = TestApp::spawn_roles(db, &[("IFOX__NATS__URL", &nats.url())], &[Role::Admin]).await;
    app.org("acme").await;
    for team in ["owner", "by-config"] {
        app.node("acme", team, None, "team").await;
    }
    app
}

fn config_path(team: &str) -> String {
    format!("/api/v1/admin/orgs/acme/nodes/{team}/config")
}

async fn a_claim_held_by_another_team_answers_the_same_409_through_provisioning_and_config(
    kind: DbKind,
) {
    let nats = NatsServer::start().await;
    let app = app(kind, &nats).await;
    let held = app.put(&config_path("owner"), ADMIN_TOKEN, claim()).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.body);
    let by_config = app
        .put(&config_path("by-config"), ADMIN_TOKEN, claim())
        .await;
    let by_provisioning = app
        .post(PROVISION, ADMIN_TOKEN, provision_body("by-provisioning"))
        .await;
    assert_eq!(by_config.status, StatusCode::CONFLICT, "{}", by_config.body);
    assert_eq!(by_config.body["reason"], "claim_conflict");
    assert!(
        by_config.body.to_string().contains("owner"),
        "names the owner: {}",
        by_config.body
    );
    assert_eq!(
        (by_provisioning.status, &by_provisioning.body),
        (by_config.status, &by_config.body)
    );
}

/// The owner's claim is written (not yet committed) in a transaction of its own; a provisioning
/// request and a config write claiming the same channel start meanwhile. On PostgreSQL both pass the
/// conflict check (the claim is not committed) and wait on the unique index: the test waits until
/// both wait, then commits, so each loses the race on the database's uniqueness. SQLite serialises
/// writers (`BEGIN IMMEDIATE`), so there both wait for the commit and then see the claim.
async fn a_claim_race_lost_during_provisioning_answers_409_claim_conflict_like_the_config_api(
    kind: DbKind,
) {
    let nats = NatsServer::start().await;
    let app = app(kind, &nats).await;
    let store = app.state.tenancy.store().clone();
    let scope = cli_scope(&OrgId::parse("acme").unwrap());
    let owner = NodeId::parse("owner").unwrap();
    let mut tx = store.begin().await.unwrap();
    let patch = ConfigWrite::Patch(claim());
    let limits = *app.state.tenancy.limits();
    write_config_in(&mut tx, &scope, &limits, &owner, &patch, None, now_ms())
        .await
        .unwrap();

    let (base, client) = (app.base.clone(), app.client.clone());
    let send = move |method: reqwest::Method, path: String, body: Value| {
        let request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        tokio::spawn(async move {
            let res = request.send().await.unwrap();
            (
                res.status(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    let provisioning = send(
        reqwest::Method::POST,
        PROVISION.to_owned(),
        provision_body("by-provisioning"),
    );
    let config = send(reqwest::Method::PUT, config_path("by-config"), claim());
    if kind == DbKind::Postgres {
        let pool = store.pool().clone();
        eventually(
            "both requests wait on the owner's uncommitted claim",
            Duration::from_secs(10),
            || {
                let pool = pool.clone();
                async move {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    (waiting >= 2).then_some(())
                }
            },
        )
        .await;
    }
    tx.commit().await.unwrap();

    let (status, provisioned) = provisioning.await.unwrap();
    let (config_status, configured) = config.await.unwrap();
    assert_eq!(config_status, StatusCode::CONFLICT, "{configured}");
    assert_eq!(configured["reason"], "claim_conflict", "{configured}");
    assert_eq!(
        (status, &provisioned),
        (config_status, &configured),
        "provisioning answers like the config API"
    );
    // The refused request wrote nothing: no team, and the owner still holds the only claim.
    let team = app
        .get("/api/v1/admin/orgs/acme/nodes/by-provisioning", ADMIN_TOKEN)
        .await;
    assert_eq!(team.status, StatusCode::NOT_FOUND, "{}", team.body);
    let claims = app
        .state
        .tenancy
        .list_claims(&scope)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.team_id.to_string(), c.value))
        .collect::<Vec<_>>();
    assert_eq!(claims, vec![("owner".to_owned(), CHANNEL.to_owned())]);
}

both_databases!(
    a_claim_held_by_another_team_answers_the_same_409_through_provisioning_and_config,
    a_claim_race_lost_during_provisioning_answers_409_claim_conflict_like_the_config_api,
);
