//! Issue 13, finding 6 (quotas, a namespace per team) and the AI pipeline of shared teams, against
//! the fake Kubernetes API server through the real kube-rs client, played as the attacker where
//! there is one: an org admin's quota lands only in its own team's namespace, never in the one every
//! tenant shares; a team cannot adopt a namespace labelled for another tenant (or for none); a
//! shared team's pipeline CronJob is applied where the team's objects live and goes with the team.

use crate::both_databases;
use crate::provision_fixtures::*;
use crate::support::DbKind;
use ifox::bridge::allow::AllowList;
use ifox::provision::reconcile::Outcome;
use ifox::settings::bridge::BridgeSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// The team namespace of `acme`/`enterprise-team` under the platform namespace `incidentfox`.
const TEAM_NS: &str = "incidentfox-acme-enterprise-team";
const TEAM_URL: &str = "http://agent-dedicated-acme-enterprise-team.incidentfox-acme-enterprise-team.svc.cluster.local:8080";
const CRON: &str = "agent-dedicated-acme-enterprise-team-pipeline";

/// The namespace of every stored object of `plural`.
fn namespaces_of(rig: &Rig, plural: &str) -> Vec<String> {
    rig.fake
        .keys()
        .into_iter()
        .filter(|(p, _, _)| p == plural)
        .map(|(_, ns, _)| ns)
        .collect()
}

fn with_quota() -> Value {
    let mut body = design_example();
    body["dedicated_config"]["resource_quota"] = json!({"cpu": "8", "memory": "16Gi", "pods": 4});
    body
}

async fn a_quota_lands_only_in_the_teams_own_namespace(kind: DbKind) {
    // Without the option the quota is refused, with the reason and the way out.
    let off = rig_with(Duration::from_secs(60), kind, false).await;
    let (org_admin, _) = off.app.org_token("acme").await;
    let a = off
        .app
        .post("/api/v1/admin/provision/team", &org_admin, with_quota())
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["field"], "dedicated_config.resource_quota");
    assert!(
        a.body.to_string().contains("namespace_per_team"),
        "{}",
        a.body
    );
    assert!(off.fake.keys().is_empty());

    let rig = rig_with(Duration::from_secs(60), kind, true).await;
    // As on a real API server, nothing can be applied into a namespace before it exists.
    rig.fake.require_namespaces(true);
    let (org_admin, _) = rig.app.org_token("acme").await;
    let a = rig
        .app
        .post("/api/v1/admin/provision/team", &org_admin, with_quota())
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert!(matches!(rig.pass().await, Outcome::Done));

    assert_eq!(namespaces_of(&rig, "resourcequotas"), [TEAM_NS]);
    let quota = rig.fake.get_in("resourcequotas", TEAM_NS, NAME).unwrap();
    assert_eq!(
        quota["spec"]["hard"],
        json!({"limits.cpu": "8", "limits.memory": "16Gi", "pods": "4"})
    );
    // Nothing of the team is in the platform namespace; everything is in its own.
    for (plural, ns, name) in rig.fake.keys() {
        match plural.as_str() {
            "namespaces" => assert_eq!((ns.as_str(), name.as_str()), ("", TEAM_NS)),
            _ => assert_eq!(ns, TEAM_NS, "{plural}/{name}"),
        }
    }
    let namespace = rig.fake.get_in("namespaces", "", TEAM_NS).unwrap();
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels["ifox.dev/org"], "acme");
    assert_eq!(labels["ifox.dev/team"], "enterprise-team");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    let binding = rig.fake.get_in("rolebindings", TEAM_NS, NAME).unwrap();
    assert_eq!(binding["roleRef"]["name"], "ifox-team-objects");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ifox-provisioner", "namespace": "incidentfox"}])
    );
    // The team is routed to the service in its namespace, which the bridge's default patterns admit.
    assert_eq!(rig.config().await["agent_service_url"], TEAM_URL);
    let patterns = BridgeSettings::default().allowed_patterns("incidentfox", true);
    let allow = AllowList::new(&patterns).unwrap();
    assert!(allow.check(TEAM_URL).is_ok(), "{patterns:?}");
    let without = BridgeSettings::default().allowed_patterns("incidentfox", false);
    assert!(AllowList::new(&without).unwrap().check(TEAM_URL).is_err());
    // Reconciling again changes nothing.
    let mutating = rig.fake.mutating_requests();
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(rig.fake.mutating_requests(), mutating);
}

async fn a_shared_teams_pipeline_runs_where_its_objects_live_and_goes_with_the_team(kind: DbKind) {
    for per_team in [false, true] {
        let rig = rig_with(Duration::ZERO, kind, per_team).await;
        let ns = if per_team { TEAM_NS } else { "incidentfox" };
        let (org_admin, _) = rig.app.org_token("acme").await;
        let body = json!({"org_id": "acme", "team_node_id": "enterprise-team",
            "pipeline": {"schedule": "0 3 * * *"}});
        let a = rig
            .app
            .post("/api/v1/admin/provision/team", &org_admin, body)
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        assert_eq!(a.body["deployment_mode"], "shared");
        let run = a.body["run_id"].as_str().unwrap().to_owned();
        assert!(matches!(rig.pass().await, Outcome::Done));

        let cron = rig.fake.get_in("cronjobs", ns, CRON).expect("the CronJob");
        assert_eq!(cron["spec"]["schedule"], "0 3 * * *");
        let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let container = &pod["containers"][0];
        assert_eq!(container["args"], json!(["pipeline"]));
        assert_eq!(container["envFrom"][0]["secretRef"]["name"], NAME);
        // The token the pipeline uses is the team's runtime token, in the team's Secret.
        assert!(rig.fake.get_in("secrets", ns, NAME).is_some());
        assert!(rig.row().await.runtime_token.is_some());
        // Still a shared team: no agent of its own, nothing routed elsewhere.
        for plural in ["deployments", "services", "horizontalpodautoscalers"] {
            assert!(namespaces_of(&rig, plural).is_empty(), "{plural}");
        }
        assert!(rig.config().await.get("agent_service_url").is_none());
        let shown = rig.run(&run).await;
        assert_eq!(shown["status"], "succeeded", "{shown}");
        assert_eq!(
            namespaces_of(&rig, "namespaces").len(),
            usize::from(per_team)
        );

        // Deprovisioned: after the grace everything of the team is gone, its namespace included.
        deprovision(&rig).await;
        assert!(matches!(rig.pass().await, Outcome::Done));
        rig.worker.tick_once().await.unwrap();
        assert!(
            rig.fake.get_in("cronjobs", ns, CRON).is_some(),
            "deleted within the grace"
        );
        grace_over(&rig).await;
        rig.worker.tick_once().await.unwrap();
        assert!(rig.fake.keys().is_empty(), "{:?}", rig.fake.keys());
        // And the resync does not bring it back.
        rig.worker.resync().await.unwrap();
        assert!(rig.fake.keys().is_empty(), "{:?}", rig.fake.keys());
    }
}

both_databases!(
    a_quota_lands_only_in_the_teams_own_namespace,
    a_shared_teams_pipeline_runs_where_its_objects_live_and_goes_with_the_team
);

#[tokio::test]
async fn a_team_cannot_adopt_a_namespace_labelled_for_another_tenant_or_for_none() {
    let foreign = json!({"ifox.dev/org": "other", "ifox.dev/team": "victim",
        "app.kubernetes.io/managed-by": "ifox"});
    for labels in [foreign, json!({"team": "payments"})] {
        let rig = rig_with(Duration::from_secs(60), DbKind::Sqlite, true).await;
        let planted = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": TEAM_NS, "labels": labels, "resourceVersion": "1"}});
        rig.fake.insert("namespaces", "", planted.clone());
        let run = provision(&rig, with_quota()).await;
        let error = failed_as_foreign(&rig, &run, rig.pass().await).await;
        assert!(
            error.contains("Namespace") && error.contains(TEAM_NS),
            "{error}"
        );
        // The namespace is as it was, and nothing of the team was put into it.
        assert_eq!(rig.fake.get_in("namespaces", "", TEAM_NS).unwrap(), planted);
        assert_eq!(rig.fake.keys().len(), 1, "{:?}", rig.fake.keys());
        assert!(rig.config().await.get("agent_service_url").is_none());
        // Nor does the resync delete or relabel it.
        rig.worker.resync().await.unwrap();
        assert_eq!(rig.fake.get_in("namespaces", "", TEAM_NS).unwrap(), planted);
    }
}

#[tokio::test]
async fn two_tenants_spelling_the_same_org_team_string_get_namespaces_of_their_own() {
    let rig = rig_with(Duration::from_secs(60), DbKind::Sqlite, true).await;
    rig.app.org("acme-x").await;
    for (org, team) in [("acme", "x-y"), ("acme-x", "y")] {
        let body = json!({"org_id": org, "team_node_id": team, "deployment_mode": "dedicated",
            "dedicated_config": {"replicas": 1, "autoscaling": null,
                "resource_quota": {"cpu": "2", "memory": "2Gi"}}});
        provision(&rig, body).await;
        let (o, t) = (
            ifox::domain::OrgId::parse(org).unwrap(),
            ifox::domain::NodeId::parse(team).unwrap(),
        );
        let outcome = rig.rec().reconcile_team(&o, &t).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Done),
            "{org}/{team}: {outcome:?}"
        );
    }
    let namespaces = namespaces_of(&rig, "namespaces");
    assert_eq!(namespaces.len(), 2);
    let names: Vec<String> = rig
        .fake
        .keys()
        .into_iter()
        .filter(|(p, _, _)| p == "namespaces")
        .map(|(_, _, n)| n)
        .collect();
    assert_ne!(names[0], names[1]);
    for name in &names {
        let ns = rig.fake.get_in("namespaces", "", name).unwrap();
        let labels = &ns["metadata"]["labels"];
        let owner = (
            labels["ifox.dev/org"].as_str(),
            labels["ifox.dev/team"].as_str(),
        );
        assert!(
            matches!(
                owner,
                (Some("acme"), Some("x-y")) | (Some("acme-x"), Some("y"))
            ),
            "{ns}"
        );
        // Each quota limits its own namespace, labelled for the same team as the namespace.
        let quotas: Vec<_> = rig
            .fake
            .keys()
            .into_iter()
            .filter(|(p, n, _)| p == "resourcequotas" && n == name)
            .collect();
        assert_eq!(quotas.len(), 1, "{name}: {quotas:?}");
        let quota = rig
            .fake
            .get_in("resourcequotas", name, &quotas[0].2)
            .unwrap();
        assert_eq!(
            quota["metadata"]["labels"]["ifox.dev/org"],
            labels["ifox.dev/org"]
        );
    }
}

#[tokio::test]
async fn a_dedicated_team_in_its_own_namespace_keeps_it_for_the_grace_then_it_is_deleted() {
    let rig = rig_with(Duration::from_secs(60), DbKind::Sqlite, true).await;
    let mut body = design_example();
    body["pipeline"] = json!({"schedule": "@daily"});
    provision(&rig, body).await;
    assert!(matches!(rig.pass().await, Outcome::Done));
    assert_eq!(rig.config().await["agent_service_url"], TEAM_URL);
    // Back to shared, keeping the pipeline: routed to shared at once; after the grace the agent's
    // objects go, the pipeline's (and so the namespace) stay.
    let shared = json!({"org_id": "acme", "team_node_id": "enterprise-team",
        "deployment_mode": "shared", "pipeline": {"schedule": "@daily"}});
    provision(&rig, shared).await;
    assert!(rig.config().await.get("agent_service_url").is_none());
    assert!(matches!(rig.pass().await, Outcome::Done));
    rig.worker.tick_once().await.unwrap();
    assert!(
        rig.fake.get_in("deployments", TEAM_NS, NAME).is_some(),
        "deleted within the grace"
    );
    rig.worker.resync().await.unwrap();
    assert!(
        rig.fake.get_in("deployments", TEAM_NS, NAME).is_some(),
        "the resync deleted within the grace"
    );
    grace_over(&rig).await;
    assert_eq!(rig.rec().delete_due().await.unwrap(), 1);
    let mut left: Vec<String> = rig.fake.keys().into_iter().map(|(p, _, _)| p).collect();
    left.sort();
    assert_eq!(left, ["cronjobs", "namespaces", "rolebindings", "secrets"]);
    // Deprovisioned: the pipeline goes too, and the namespace with it.
    deprovision(&rig).await;
    grace_over(&rig).await;
    rig.worker.tick_once().await.unwrap();
    assert!(rig.fake.keys().is_empty(), "{:?}", rig.fake.keys());
}

#[tokio::test]
async fn turning_the_option_on_moves_a_converged_team_into_its_namespace_at_the_next_resync() {
    let (rig, _) = converged(Duration::from_secs(60)).await;
    assert_eq!(rig.config().await["agent_service_url"], URL);
    let mut worker = rig.worker.clone();
    worker.reconciler.options.namespace_per_team = true;
    worker.resync().await.unwrap();
    // The URL names the service in the team's namespace, and nothing is left in the platform one.
    assert_eq!(rig.config().await["agent_service_url"], TEAM_URL);
    for (plural, ns, name) in rig.fake.keys() {
        assert_ne!(ns, "incidentfox", "{plural}/{name} left behind");
    }
    assert!(rig.fake.get_in("deployments", TEAM_NS, NAME).is_some());
    // Converged: another resync changes nothing.
    let mutating = rig.fake.mutating_requests();
    let report = worker.resync().await.unwrap();
    assert_eq!((report.repaired, report.orphans), (0, 0), "{report:?}");
    assert_eq!(rig.fake.mutating_requests(), mutating);
}
