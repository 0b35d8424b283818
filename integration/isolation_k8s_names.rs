//! Issue 13, finding 4, played as the attacker: two tenants whose `{org}-{team}` spell the same
//! string (org `acme` team `x-y`, org `acme-x` team `y`) must never share a Kubernetes object or an
//! `agent_service_url`, and the provisioner never touches an object labelled for another tenant.

use crate::provision_fixtures::*;
use crate::support::app::ADMIN_TOKEN;
use ifox::domain::{NodeId, OrgId};
use ifox::provision::reconcile::Outcome;
use serde_json::{Value, json};
use std::time::Duration;

fn body(org: &str, team: &str) -> Value {
    json!({"org_id": org, "team_node_id": team, "deployment_mode": "dedicated",
        "dedicated_config": {"replicas": 1, "autoscaling": null}})
}

async fn pass(rig: &Rig, org: &str, team: &str) -> Outcome {
    let (org, team) = (OrgId::parse(org).unwrap(), NodeId::parse(team).unwrap());
    rig.rec()
        .reconcile_team(&org, &team)
        .await
        .expect("a pass without transient errors")
}

async fn url_of(rig: &Rig, org: &str, team: &str) -> Value {
    let a = rig
        .app
        .get(
            &format!("/api/v1/admin/orgs/{org}/nodes/{team}/config"),
            ADMIN_TOKEN,
        )
        .await;
    a.body["config"]["agent_service_url"].clone()
}

/// Every object in the fake cluster with its tenant labels, as `(plural, name, org, team)`.
fn owners(rig: &Rig) -> Vec<(String, String, String, String)> {
    rig.fake
        .names()
        .into_iter()
        .map(|(plural, name)| {
            let obj = rig.fake.get(&plural, &name).unwrap();
            let label = |k: &str| {
                obj["metadata"]["labels"][k]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            };
            (plural, name, label("ifox.dev/org"), label("ifox.dev/team"))
        })
        .collect()
}

#[tokio::test]
async fn two_tenants_spelling_the_same_org_team_string_get_distinct_objects_and_urls() {
    let rig = rig(Duration::from_secs(60)).await;
    rig.app.org("acme-x").await;
    provision(&rig, body("acme", "x-y")).await;
    assert!(matches!(pass(&rig, "acme", "x-y").await, Outcome::Done));
    let before = owners(&rig);
    assert_eq!(before.len(), 3, "{before:?}");

    provision(&rig, body("acme-x", "y")).await;
    let second = pass(&rig, "acme-x", "y").await;
    assert!(matches!(second, Outcome::Done), "{second:?}");

    let first_url = url_of(&rig, "acme", "x-y").await;
    let second_url = url_of(&rig, "acme-x", "y").await;
    assert!(first_url.is_string() && second_url.is_string());
    assert_ne!(first_url, second_url, "both teams routed to one service");
    // The first tenant's objects are untouched: same names, still labelled for it.
    let after = owners(&rig);
    for obj in &before {
        assert!(after.contains(obj), "{obj:?} was taken over: {after:?}");
    }
    assert_eq!(after.len(), 6, "{after:?}");
    // Every name is the bridge's `agent-dedicated-*` and a valid DNS label.
    for (_, name, _, _) in &after {
        assert!(
            name.starts_with("agent-dedicated-") && name.len() <= 63,
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_object_labelled_for_another_tenant_is_never_overwritten_and_fails_the_run() {
    let rig = rig(Duration::from_secs(60)).await;
    // Org `acme` provisions first; then someone plants a Secret under the name `acme`'s team
    // `enterprise-team` will want, labelled for another tenant.
    let labels = json!({"app.kubernetes.io/managed-by": "ifox", "ifox.dev/org": "other", "ifox.dev/team": "victim"});
    let planted = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": NAME, "namespace": "incidentfox", "labels": labels, "resourceVersion": "1"},
        "data": {"IFOX_TEAM_TOKEN": "dmljdGltLXRva2Vu"}});
    rig.fake.insert("secrets", "incidentfox", planted.clone());
    let run = provision(&rig, design_example()).await;
    let error = failed_as_foreign(&rig, &run, rig.pass().await).await;
    assert!(error.contains(NAME), "{error}");
    let secret = rig.fake.get("secrets", NAME).unwrap();
    assert_eq!(
        secret["data"], planted["data"],
        "the other tenant's token was overwritten"
    );
    assert_eq!(secret["metadata"]["labels"]["ifox.dev/org"], "other");
    assert!(rig.config().await.get("agent_service_url").is_none());
}

#[tokio::test]
async fn the_resync_leaves_an_object_taken_over_by_another_tenant_alone_and_goes_on() {
    let (rig, _) = converged(Duration::from_secs(60)).await;
    // The team's Service is replaced by one labelled for another tenant, and its Deployment is
    // edited (drift the resync must still repair, since one refused team stops nothing else).
    rig.fake.remove("services", NAME);
    let labels = json!({"app.kubernetes.io/managed-by": "ifox", "ifox.dev/org": "other", "ifox.dev/team": "victim"});
    let foreign = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": "incidentfox", "labels": labels, "resourceVersion": "1"},
        "spec": {"ports": [{"port": 9090}]}});
    rig.fake.insert("services", "incidentfox", foreign.clone());
    let report = rig.worker.resync().await.expect("the resync goes on");
    assert_eq!(report.repaired, 0, "{report:?}");
    let service = rig.fake.get("services", NAME).unwrap();
    assert_eq!(
        service["spec"], foreign["spec"],
        "another tenant's object was overwritten"
    );
    assert_eq!(service["metadata"]["labels"]["ifox.dev/org"], "other");
}
