//! The provisioner against a fake Kubernetes API server, through the real kube-rs client. The tests
//! drive one reconcile pass (or one resync, one tick) at a time, so each step's effect is checked.

use crate::provision_fixtures::*;
use crate::support::eventually;
use ifox::provision::backend::{AnyBackend, Backend};
use ifox::provision::kube_backend::KubeBackend;
use ifox::provision::reconcile::Outcome;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn provisioning_creates_the_objects_and_sets_the_url_only_once_the_deployment_is_available() {
    let rig = rig(Duration::from_secs(60)).await;
    rig.fake.hold_availability(true);
    let run = provision(&rig, design_example()).await;
    assert!(matches!(rig.pass().await, Outcome::Wait(_)));
    for plural in ["secrets", "deployments", "services"] {
        assert!(rig.fake.get(plural, NAME).is_some(), "{plural} missing");
    }
    assert!(
        rig.config().await.get("agent_service_url").is_none(),
        "routed before the service was ready"
    );
    let shown = rig.run(&run).await;
    assert_eq!(shown["status"], "running", "{shown}");
    assert_eq!(shown["steps"][1]["step"], "wait_available");
    assert_eq!(shown["steps"][1]["status"], "waiting");

    rig.fake.hold_availability(false);
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(rig.config().await["agent_service_url"], URL);
    let shown = rig.run(&run).await;
    assert_eq!(shown["status"], "succeeded", "{shown}");
    let deployment = rig.fake.get("deployments", NAME).unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["nodeSelector"]["node-type"],
        "high-memory"
    );
    assert!(rig.fake.field_managers().iter().all(|m| m == "ifox"));
}

#[tokio::test]
async fn reconciling_the_same_desired_state_again_issues_no_mutating_request() {
    let (rig, _) = converged(Duration::from_secs(60)).await;
    let before = (rig.fake.mutating_requests(), rig.fake.changes());
    assert_eq!(before.1, 3, "three objects created");
    assert!(matches!(rig.pass().await, Outcome::Done));
    let report = rig.worker.resync().await.unwrap();
    assert_eq!(report.repaired, 0);
    assert_eq!((rig.fake.mutating_requests(), rig.fake.changes()), before);
    // The server-side apply itself is a no-op too: the request arrives, nothing changes.
    let rv = rig.fake.get("deployments", NAME).unwrap()["metadata"]["resourceVersion"].clone();
    let desired = rig.rec().desired(&rig.row().await);
    rig.rec().backend.apply(&desired[1]).await.unwrap();
    assert_eq!(rig.fake.mutating_requests(), before.0 + 1);
    assert_eq!(rig.fake.changes(), before.1);
    assert_eq!(
        rig.fake.get("deployments", NAME).unwrap()["metadata"]["resourceVersion"],
        rv
    );
}

#[tokio::test]
async fn the_resync_repairs_edited_replicas_and_a_deleted_service() {
    let (rig, _) = converged(Duration::from_secs(60)).await;
    rig.fake
        .edit("deployments", NAME, json!({"spec": {"replicas": 7}}));
    rig.fake.remove("services", NAME);
    let report = rig.worker.resync().await.unwrap();
    assert_eq!(report.repaired, 2, "{report:?}");
    assert_eq!(
        rig.fake.get("deployments", NAME).unwrap()["spec"]["replicas"],
        2
    );
    assert!(rig.fake.get("services", NAME).is_some());
}

#[tokio::test]
async fn an_orphan_is_deleted_once_the_grace_has_passed_and_not_before() {
    let rig = rig(Duration::from_millis(1500)).await;
    let labels = json!({"app.kubernetes.io/managed-by": "ifox", "ifox.dev/org": "acme", "ifox.dev/team": "ghost"});
    let orphan = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "agent-dedicated-acme-ghost", "namespace": "incidentfox", "labels": labels, "resourceVersion": "1"},
        "spec": {"ports": [{"port": 8080}]}});
    rig.fake.insert("services", "incidentfox", orphan);
    let found = std::time::Instant::now();
    assert_eq!(rig.worker.resync().await.unwrap().orphans, 1);
    rig.worker.tick_once().await.unwrap();
    assert!(
        rig.fake
            .get("services", "agent-dedicated-acme-ghost")
            .is_some(),
        "deleted before the grace"
    );
    eventually("the orphan deleted", Duration::from_secs(10), || async {
        rig.worker.tick_once().await.unwrap();
        rig.fake
            .get("services", "agent-dedicated-acme-ghost")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        found.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        found.elapsed()
    );
}

#[tokio::test]
async fn api_5xx_409_and_429_answers_are_retried_until_the_pass_converges() {
    let rig = rig(Duration::from_secs(60)).await;
    let run = provision(&rig, design_example()).await;
    rig.fake.fail_next(1, 500);
    rig.fake.fail_next(1, 409);
    rig.fake.fail_next(1, 429);
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(rig.config().await["agent_service_url"], URL);
    // A longer outage outlasts the in-pass retries: the pass reports a transient error (the worker
    // NAKs with a growing delay) and the next pass converges.
    rig.fake.remove("services", NAME);
    rig.fake.fail_next(100, 503);
    let (org, team) = ids();
    let err = rig.rec().reconcile_team(&org, &team).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    rig.fake.clear_failures();
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert!(rig.fake.get("services", NAME).is_some());
    assert_eq!(rig.run(&run).await["status"], "succeeded");
}

#[tokio::test]
async fn an_object_the_api_rejects_fails_the_run_with_the_apis_message_and_routes_nothing() {
    let rig = rig(Duration::from_secs(60)).await;
    rig.fake.reject_kind(
        "deployments",
        "spec.template.spec.containers[0].image: Required value",
    );
    let run = provision(&rig, design_example()).await;
    let Outcome::Failed(e) = rig.pass().await else {
        panic!("the run should fail")
    };
    assert_eq!(e.reason(), "object_rejected");
    let shown = rig.run(&run).await;
    assert_eq!(shown["status"], "failed");
    assert!(
        shown["error"].as_str().unwrap().contains("Required value"),
        "{shown}"
    );
    assert_eq!(shown["steps"][0]["status"], "failed");
    assert!(rig.config().await.get("agent_service_url").is_none());
}

#[tokio::test]
async fn a_crash_between_apply_and_the_url_update_resumes_without_duplicates() {
    let rig = rig(Duration::from_secs(60)).await;
    let run = provision(&rig, design_example()).await;
    let (org, team) = ids();
    // The first pass applied everything and died before touching the team's config.
    let row = rig.row().await;
    rig.rec()
        .apply_objects(&org, &team, &rig.rec().desired(&row))
        .await
        .unwrap();
    let (mutating, objects) = (rig.fake.mutating_requests(), rig.fake.names().len());
    assert!(rig.config().await.get("agent_service_url").is_none());
    // The redelivered nudge resumes from the database.
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(
        rig.fake.mutating_requests(),
        mutating,
        "objects applied twice"
    );
    assert_eq!(rig.fake.names().len(), objects);
    assert_eq!(rig.config().await["agent_service_url"], URL);
    let shown = rig.run(&run).await;
    let steps: Vec<_> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["apply", "wait_available", "set_url"]);
    assert_eq!(shown["status"], "succeeded");
}

#[tokio::test]
async fn deprovisioning_switches_routing_at_once_and_reprovisioning_in_the_grace_cancels_the_deletion()
 {
    // A grace of zero: the deletion is due at once, unless the re-provisioning cancelled it.
    let (rig, _) = converged(Duration::ZERO).await;
    deprovision(&rig).await;
    assert!(
        rig.config().await.get("agent_service_url").is_none(),
        "still routed to dedicated"
    );
    provision(&rig, design_example()).await;
    rig.worker.tick_once().await.unwrap();
    assert!(
        rig.fake.get("deployments", NAME).is_some(),
        "deleted although re-provisioned"
    );
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(rig.config().await["agent_service_url"], URL);
}

#[tokio::test]
async fn a_slow_api_server_times_out_as_a_transient_error_and_the_next_pass_converges() {
    let rig = rig(Duration::from_secs(60)).await;
    provision(&rig, design_example()).await;
    let backend = KubeBackend::connect(
        Some(&rig.fake.url),
        "incidentfox",
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    let mut rec = rig.rec().clone();
    rec.backend = AnyBackend::Kube(backend);
    rec.options.retries = 1;
    rig.fake.set_delay(Duration::from_millis(600));
    let (org, team) = ids();
    let err = rec.reconcile_team(&org, &team).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    rig.fake.set_delay(Duration::ZERO);
    assert!(matches!(
        rec.reconcile_team(&org, &team).await.unwrap(),
        Outcome::Done
    ));
    assert_eq!(rig.config().await["agent_service_url"], URL);
}

#[tokio::test]
async fn every_optional_kind_is_applied_on_its_own_rest_path_and_removed_when_no_longer_wanted() {
    let rig = rig(Duration::from_secs(60)).await;
    let mut body = design_example();
    body["dedicated_config"]["autoscaling"] = json!({"min": 2, "max": 10, "cpu_percent": 70});
    body["dedicated_config"]["network_policy"] = json!(true);
    body["pipeline"] = json!({"schedule": "0 3 * * *"});
    provision(&rig, body).await;
    assert!(matches!(rig.pass().await, Outcome::Done));
    let mut plurals: Vec<String> = rig.fake.names().into_iter().map(|(p, _)| p).collect();
    plurals.sort();
    assert_eq!(
        plurals,
        [
            "cronjobs",
            "deployments",
            "horizontalpodautoscalers",
            "networkpolicies",
            "secrets",
            "services"
        ]
    );
    assert!(
        rig.fake.get("deployments", NAME).unwrap()["spec"]
            .get("replicas")
            .is_none()
    );
    // Back to the plain example: the optional objects go, the rest stays.
    provision(&rig, design_example()).await;
    assert!(matches!(rig.pass().await, Outcome::Done));
    let mut plurals: Vec<String> = rig.fake.names().into_iter().map(|(p, _)| p).collect();
    plurals.sort();
    assert_eq!(plurals, ["deployments", "secrets", "services"]);
}

#[tokio::test]
async fn the_designs_migration_body_gets_the_default_runtime_and_the_hpa() {
    let rig = rig(Duration::from_secs(60)).await;
    let body = json!({"org_id": "acme", "team_node_id": "enterprise-team", "deployment_mode": "dedicated"});
    let run = provision(&rig, body).await;
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(rig.run(&run).await["status"], "succeeded");
    let deployment = rig.fake.get("deployments", NAME).unwrap();
    let resources = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        *resources,
        json!({"limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "2", "memory": "4Gi"}})
    );
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "left to the HPA"
    );
    let hpa = rig.fake.get("horizontalpodautoscalers", NAME).unwrap();
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 10);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    assert_eq!(rig.config().await["agent_service_url"], URL);
}
