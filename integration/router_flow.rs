//! The router end to end on a real nats-server: webhooks and direct publishes routed to the right
//! agent subject with the right run document, dead letters with reasons, config changes taking effect.

use crate::ingest_fixtures::{Stack, Webhook};
use crate::router_fixtures::*;
use crate::support::app::ADMIN_TOKEN;
use crate::support::{TestApp, TestDb, eventually};
use ifox::app::Role;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn each_provider_sample_is_routed_to_its_team_with_the_run_document() {
    let stack = Stack::start().await;
    tenants(
        &stack.app,
        &[
            ("chat-ops", "slack_channel_ids", "C0CHAN"),
            ("checkout", "github_repos", "acme/checkout"),
            ("payments", "pagerduty_service_ids", "PSVC001"),
            ("alerts", "incidentio_alert_source_ids", "01ALERTSRC"),
        ],
    )
    .await;
    let cases = [
        (
            Webhook::slack_event("Ev1", "C0CHAN"),
            "chat-ops",
            "slack",
            "app_mention",
            json!({"kind": "slack_channel_ids", "value": "C0CHAN"}),
        ),
        (
            Webhook::github("issues", "gh-delivery-1"),
            "checkout",
            "github",
            "issues",
            json!({"kind": "github_repos", "value": "acme/checkout"}),
        ),
        (
            Webhook::pagerduty("pd-ev-1"),
            "payments",
            "pagerduty",
            "incident.triggered",
            json!({"kind": "pagerduty_service_ids", "value": "PSVC001"}),
        ),
        (
            Webhook::incidentio("msg_inc_1"),
            "alerts",
            "incidentio",
            "public_alert.alert_created_v1",
            json!({"kind": "incidentio_alert_source_ids", "value": "01ALERTSRC"}),
        ),
    ];
    for (hook, team, source, event_type, matched) in cases {
        let a = stack.send(&hook).await;
        assert!(a.status.is_success(), "{source}: {} {}", a.status, a.body);
        let msg = last_on(
            &stack.js,
            "AGENT_RUNS",
            &format!("ifox.agent.shared.acme.{team}"),
            WAIT,
        )
        .await;
        let doc = json_of(&msg);
        assert_eq!(doc["schema"], "ifox.agent_run.v1");
        assert_eq!(
            (doc["org_id"].as_str(), doc["team_id"].as_str()),
            (Some("acme"), Some(team))
        );
        assert_eq!(
            (doc["source"].as_str(), doc["event_type"].as_str()),
            (Some(source), Some(event_type))
        );
        assert_eq!(doc["matched"], matched);
        assert_eq!(doc["deployment_mode"], "shared");
        assert_eq!(doc["entrance_agent"], "planner");
        assert!(doc["config_version"].as_str().unwrap().contains('.'));
        assert!(doc.get("agent_service_url").is_none());
        assert_eq!(
            header(&msg, "Nats-Msg-Id").as_deref(),
            doc["run_id"].as_str()
        );
        let text = doc.to_string();
        assert!(
            !text.contains("secret") && !text.contains("token"),
            "no secrets in a run: {text}"
        );
    }
    assert_eq!(runs_recorded(&stack.app, &stack.js).await, 4);
    // Every run is noted dispatched (the bridge of this stack then takes them further).
    let (dispatched,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM runs WHERE dispatched_at IS NOT NULL")
            .fetch_one(stack.app.state.tenancy.store().pool())
            .await
            .unwrap();
    assert_eq!(dispatched, 4);
}

#[tokio::test]
async fn unroutable_ambiguous_and_invalid_events_are_dead_lettered_with_their_reason() {
    let stack = Stack::start().await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    stack.app.org("globex").await;
    stack.app.node("globex", "shop", None, "team").await;
    stack
        .app
        .put(
            "/api/v1/admin/orgs/globex/nodes/shop/config",
            ADMIN_TOKEN,
            json!({"routing": {"github_repos": ["acme/checkout"]}}),
        )
        .await;

    let body = br#"{"repository":{"full_name":"nobody/nothing"}}"#;
    let unroutable = publish_event(
        &stack.js,
        "github",
        "issues",
        Some("ev-none"),
        &[("github_repos", "nobody/nothing")],
        &[],
        body,
    )
    .await;
    let ambiguous = github_event(&stack.js, "ev-amb", "Acme/Checkout", &[]).await;
    let invalid = publish_event(
        &stack.js,
        "github",
        "issues",
        None,
        &[("github_repos", "acme/checkout")],
        &[],
        b"{}",
    )
    .await;

    for (reason, seq) in [
        ("no_route", unroutable),
        ("ambiguous_route", ambiguous),
        ("invalid_event", invalid),
    ] {
        let dl = last_on(
            &stack.js,
            "DEADLETTER",
            &format!("ifox.deadletter.router.{reason}"),
            WAIT,
        )
        .await;
        assert_eq!(header(&dl, "Ifox-DL-Reason").as_deref(), Some(reason));
        assert_eq!(
            header(&dl, "Ifox-DL-Subject").as_deref(),
            Some("ifox.events.github.issues")
        );
        assert_eq!(header(&dl, "Ifox-DL-Stream-Seq"), Some(seq.to_string()));
        assert_eq!(header(&dl, "Ifox-DL-Attempts").as_deref(), Some("1"));
        assert!(header(&dl, "Ifox-DL-Detail").is_some_and(|d| !d.is_empty()));
        let original = stack.event(seq).await;
        assert_eq!(
            dl.payload, original.payload,
            "the original body, byte for byte"
        );
    }
    assert_eq!(stream_count(&stack.js, "AGENT_RUNS").await, 0);
    // with "acme" named, the ambiguous identifier routes
    github_event(
        &stack.js,
        "ev-hint",
        "acme/checkout",
        &[("ifox-org", "acme")],
    )
    .await;
    last_on(
        &stack.js,
        "AGENT_RUNS",
        "ifox.agent.shared.acme.checkout",
        WAIT,
    )
    .await;
    // nothing is left unacknowledged
    drained(&stack.js, WAIT).await;
}

#[tokio::test]
async fn an_admin_config_change_sends_the_very_next_event_to_the_dedicated_subject() {
    let stack = Stack::start().await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    github_event(&stack.js, "before", "acme/checkout", &[]).await;
    let first = last_on(
        &stack.js,
        "AGENT_RUNS",
        "ifox.agent.shared.acme.checkout",
        WAIT,
    )
    .await;
    assert_eq!(json_of(&first)["event_id"], "before");

    let url = "http://agent-dedicated-acme-checkout.incidentfox.svc.cluster.local:8080";
    let a = stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/nodes/checkout/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": url}),
        )
        .await;
    assert_eq!(a.status, 200);
    github_event(&stack.js, "after", "acme/checkout", &[]).await;
    let next = last_on(
        &stack.js,
        "AGENT_RUNS",
        "ifox.agent.dedicated.acme.checkout",
        WAIT,
    )
    .await;
    let doc = json_of(&next);
    assert_eq!(
        (doc["event_id"].as_str(), doc["deployment_mode"].as_str()),
        (Some("after"), Some("dedicated"))
    );
    assert_eq!(doc["agent_service_url"], url);

    // and back: the design's `PUT … {"agent_service_url": null}` returns the team to shared at once
    stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/nodes/checkout/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": null}),
        )
        .await;
    github_event(&stack.js, "back", "acme/checkout", &[]).await;
    eventually("the next run on the shared subject", WAIT, || async {
        let msg = last_on(
            &stack.js,
            "AGENT_RUNS",
            "ifox.agent.shared.acme.checkout",
            WAIT,
        )
        .await;
        (json_of(&msg)["event_id"] == "back").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_write_through_one_replica_reaches_another_replicas_catalog_within_a_second() {
    let stack = Stack::start().await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    let nats_url = stack.nats.url();
    let other = TestApp::spawn_roles(
        TestDb::shared(&stack.app.db.url),
        &[("IFOX__NATS__URL", &nats_url)],
        &[Role::Router],
    )
    .await;
    let (org, team) = (
        ifox::domain::OrgId::parse("acme").unwrap(),
        ifox::domain::NodeId::parse("checkout").unwrap(),
    );
    eventually("the second replica to connect", WAIT, || async {
        // a fresh write (so a fresh notice) until the replica has subscribed: notices are not stored
        let probe = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_string();
        stack
            .app
            .put(
                "/api/v1/admin/orgs/acme/nodes/checkout/config",
                ADMIN_TOKEN,
                json!({ "probe": probe }),
            )
            .await;
        other
            .state
            .tenancy
            .catalog()
            .effective(&org, &team)
            .filter(|e| e.config.get("probe").is_some())
            .map(|_| ())
    })
    .await;
    stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/nodes/checkout/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": "http://x:8080"}),
        )
        .await;
    eventually(
        "the other replica to see the change",
        Duration::from_secs(1),
        || async {
            other
                .state
                .tenancy
                .catalog()
                .effective(&org, &team)
                .filter(|e| e.config["agent_service_url"] == "http://x:8080")
                .map(|_| ())
        },
    )
    .await;
}

#[tokio::test]
async fn route_explain_shows_identifiers_team_mode_and_subject_without_side_effects() {
    let stack = Stack::start().await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    stack
        .app
        .put(
            "/api/v1/admin/orgs/acme/nodes/checkout/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": "http://agent:8080"}),
        )
        .await;
    let body = json!({"source": "github", "event_type": "issues", "payload": {"repository": {"full_name": "Acme/Checkout"}}});
    let a = stack
        .app
        .post("/api/v1/admin/route/explain", ADMIN_TOKEN, body.clone())
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["identifiers"],
        json!([{"kind": "github_repos", "value": "acme/checkout"}, {"kind": "github_owners", "value": "acme"}])
    );
    let o = &a.body["outcome"];
    assert_eq!(
        (
            o["action"].as_str(),
            o["team_id"].as_str(),
            o["deployment_mode"].as_str()
        ),
        (Some("dispatch"), Some("checkout"), Some("dedicated"))
    );
    assert_eq!(o["target_subject"], "ifox.agent.dedicated.acme.checkout");
    assert_eq!(
        o["config_version"].as_str().map(|v| v.split('.').count()),
        Some(3)
    );
    let a = stack
        .app
        .post(
            "/api/v1/admin/route/explain",
            ADMIN_TOKEN,
            json!({"source": "github", "payload": {"repository": {"full_name": "x/y"}}}),
        )
        .await;
    assert_eq!(
        (
            a.body["outcome"]["action"].as_str(),
            a.body["outcome"]["reason"].as_str()
        ),
        (Some("dead_letter"), Some("no_route"))
    );
    // an org admin of another org learns nothing about acme's routes
    stack.app.org("globex").await;
    let (globex, _) = stack.app.org_token("globex").await;
    let a = stack
        .app
        .post("/api/v1/admin/route/explain", &globex, body)
        .await;
    assert_eq!(a.body["outcome"]["reason"], "no_route");
    assert_eq!(
        runs_recorded(&stack.app, &stack.js).await,
        0,
        "explain has no side effects"
    );
    assert_eq!(stream_count(&stack.js, "AGENT_RUNS").await, 0);
}
