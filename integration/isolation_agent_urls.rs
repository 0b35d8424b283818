//! Played as a hostile org admin: its team's `agent_service_url` names another tenant's dedicated
//! Service (a name anyone can compute), or a path with a query on an allowed host. The bridge must
//! refuse both (the run fails, `url_not_allowed` dead letter) and call nothing.

use crate::bridge_fixtures::*;
use crate::router_fixtures::last_on;
use crate::support::DbKind;
use ifox::bridge::echo::EchoOptions;
use ifox::domain::kube_names::service_url;
use ifox::domain::{NodeId, OrgId};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_team_cannot_point_its_runs_at_another_tenants_service_or_at_a_query() {
    let shared = Agent::start(EchoOptions::default()).await;
    // The default patterns of a cluster install, plus loopback for the shared echo agent.
    let patterns = "http://127.0.0.1:*,http://agent-dedicated-*.incidentfox.svc.cluster.local:8080";
    let stack = stack(
        DbKind::Sqlite,
        &shared,
        &[("IFOX__BRIDGE__ALLOWED_URL_PATTERNS", patterns)],
    )
    .await;
    let victim = service_url(
        &OrgId::parse("victim").unwrap(),
        &NodeId::parse("payments").unwrap(),
        "incidentfox",
    );
    let cases = [
        ("thief", victim.clone(), "another team's dedicated service"),
        ("query", format!("{}/x?y=", shared.url), "query"),
    ];
    for (name, url, _) in &cases {
        team(&stack, name, json!({"agent_service_url": url})).await;
        let a = stack.send(&issue(name, &format!("d-{name}"))).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    for (name, url, why) in &cases {
        let run = finished(&stack, &format!("d-{name}"), WAIT).await;
        assert_eq!(run["status"], "failed", "{name}: {run}");
        assert!(
            run["error"].as_str().is_some_and(|e| e.contains(why)),
            "{name} ({url}): {run}"
        );
    }
    let letter = last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.bridge.url_not_allowed",
        WAIT,
    )
    .await;
    assert!(letter.headers.get("Ifox-DL-Detail").is_some());
    assert!(shared.requests().is_empty(), "nothing was called");
    // The team's own provisioned name is still accepted (it fails later only because no such
    // Service resolves here, not at the guard).
    let own = service_url(
        &OrgId::parse("acme").unwrap(),
        &NodeId::parse("own").unwrap(),
        "incidentfox",
    );
    team(&stack, "own", json!({"agent_service_url": own})).await;
    let a = stack.send(&issue("own", "d-own")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let delivering = crate::support::eventually("the own service to be tried", WAIT, || async {
        let runs = runs_of(&stack, "d-own").await;
        let run = runs.first()?.clone();
        (run["attempts"].as_i64() >= Some(1)).then_some(run)
    })
    .await;
    assert_eq!(delivering["delivered_to"], own.as_str(), "{delivering}");
}
