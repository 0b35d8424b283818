//! Issue 13, finding 6, played as the attacker: an org admin asks for a pod spec that would reach
//! beyond its own team (another registry's image, the nodes kept for ifox or the control plane, a
//! quota on the namespace every tenant shares) and is refused with 400 `invalid_field` naming the
//! field, nothing written; and every agent pod the provisioner applies runs under the `restricted`
//! Pod Security profile.

use crate::both_databases;
use crate::provision_fixtures::*;
use crate::support::{DbKind, NatsServer, TestApp, TestDb};
use ifox::app::Role;
use ifox::provision::reconcile::Outcome;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const P: &str = "/api/v1/admin/provision/team";

fn with(config: Value) -> Value {
    json!({"org_id": "acme", "team_node_id": "enterprise-team", "deployment_mode": "dedicated",
        "dedicated_config": config})
}

async fn an_org_admin_cannot_reach_beyond_its_team_through_the_pod_spec(kind: DbKind) {
    let nats = NatsServer::start().await;
    let db = TestDb::new(kind).await;
    let app = TestApp::spawn_roles(db, &[("IFOX__NATS__URL", &nats.url())], &[Role::Admin]).await;
    app.org("acme").await;
    let (org_admin, _) = app.org_token("acme").await;
    let mut pipeline = with(json!({}));
    pipeline["pipeline"] = json!({"schedule": "@hourly", "image": "docker.io/attacker/miner:1"});
    let cases = [
        (
            with(json!({"image": "docker.io/attacker/miner:1"})),
            "dedicated_config.image",
        ),
        (pipeline, "pipeline.image"),
        (
            with(json!({"node_selector": {"kubernetes.io/hostname": "ifox-router-0"}})),
            "dedicated_config.node_selector.kubernetes.io/hostname",
        ),
        (
            with(json!({"tolerations": [{"operator": "Exists"}]})),
            "dedicated_config.tolerations[0].key",
        ),
        (
            with(
                json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}),
            ),
            "dedicated_config.tolerations[0].key",
        ),
        (
            with(json!({"resource_quota": {"cpu": "1", "memory": "1Gi", "pods": 1}})),
            "dedicated_config.resource_quota",
        ),
    ];
    for (body, field) in cases {
        let a = app.post(P, &org_admin, body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body} → {}", a.body);
        assert_eq!(a.body["reason"], "invalid_field", "{}", a.body);
        assert_eq!(a.body["field"], field, "{}", a.body);
    }
    let node = app
        .get("/api/v1/admin/orgs/acme/nodes/enterprise-team", &org_admin)
        .await;
    assert_eq!(
        node.status,
        StatusCode::NOT_FOUND,
        "a refused request wrote the team"
    );
}

both_databases!(an_org_admin_cannot_reach_beyond_its_team_through_the_pod_spec);

#[tokio::test]
async fn every_applied_agent_and_pipeline_pod_meets_the_restricted_pod_security_profile() {
    let rig = rig(Duration::from_secs(60)).await;
    let mut body = design_example();
    body["pipeline"] = json!({"schedule": "0 */6 * * *"});
    provision(&rig, body).await;
    assert!(matches!(rig.pass().await, Outcome::Done));
    let deployment = rig.fake.get("deployments", NAME).unwrap();
    let cron = rig
        .fake
        .get("cronjobs", &format!("{NAME}-pipeline"))
        .expect("the pipeline CronJob");
    let pods = [
        deployment["spec"]["template"]["spec"].clone(),
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone(),
    ];
    for pod in pods {
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{pod}"
        );
        let tmp = pod["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["emptyDir"].is_object()))
            .unwrap_or_else(|| panic!("no emptyDir volume: {pod}"));
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{c}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{c}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{c}");
            let mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
            assert!(
                mounts
                    .iter()
                    .any(|m| m["mountPath"] == "/tmp" && m["name"] == tmp["name"]),
                "/tmp is not writable: {c}"
            );
        }
    }
}
