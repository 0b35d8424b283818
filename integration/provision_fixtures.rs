//! The provisioner test rig: an app with the admin API, a nats-server, a fake Kubernetes API server
//! and a provisioner worker whose passes the tests drive one at a time.

use crate::support::fake_kube::FakeKube;
use crate::support::{DbKind, NatsServer, TestApp, TestDb, app::ADMIN_TOKEN};
use ifox::app::Role;
use ifox::domain::{NodeId, OrgId};
use ifox::provision::backend::AnyBackend;
use ifox::provision::kube_backend::KubeBackend;
use ifox::provision::reconcile::{Options, Outcome, Reconciler};
use ifox::provision::worker::Worker;
use ifox::store::deployments;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) const NAME: &str = "agent-dedicated-acme-enterprise-team";
pub(crate) const URL: &str =
    "http://agent-dedicated-acme-enterprise-team.incidentfox.svc.cluster.local:8080";

pub(crate) struct Rig {
    pub(crate) app: TestApp,
    pub(crate) _nats: NatsServer,
    pub(crate) fake: FakeKube,
    pub(crate) worker: Worker,
}

impl Rig {
    pub(crate) fn rec(&self) -> &Reconciler<AnyBackend> {
        &self.worker.reconciler
    }
    pub(crate) async fn pass(&self) -> Outcome {
        let (org, team) = ids();
        self.rec()
            .reconcile_team(&org, &team)
            .await
            .expect("a pass without transient errors")
    }
    pub(crate) async fn config(&self) -> Value {
        let a = self
            .app
            .get(
                "/api/v1/admin/orgs/acme/nodes/enterprise-team/config",
                ADMIN_TOKEN,
            )
            .await;
        a.body["config"].clone()
    }
    pub(crate) async fn run(&self, id: &str) -> Value {
        self.app
            .get(&format!("/api/v1/admin/provision/runs/{id}"), ADMIN_TOKEN)
            .await
            .body
    }
    pub(crate) async fn conn(&self) -> sqlx::pool::PoolConnection<sqlx::Any> {
        let pool = self.app.state.tenancy.store().pool();
        pool.acquire().await.unwrap()
    }
    pub(crate) async fn row(&self) -> deployments::DeploymentRow {
        let (org, team) = ids();
        let mut conn = self.conn().await;
        deployments::get(&mut conn, &org, &team)
            .await
            .unwrap()
            .unwrap()
    }
}

pub(crate) fn ids() -> (OrgId, NodeId) {
    (
        OrgId::parse("acme").unwrap(),
        NodeId::parse("enterprise-team").unwrap(),
    )
}

/// The design's example with the HPA turned off: these tests watch the Deployment's replicas.
pub(crate) fn design_example() -> Value {
    json!({"org_id":"acme","team_node_id":"enterprise-team","deployment_mode":"dedicated",
        "dedicated_config":{"replicas":2,"autoscaling":false,"resources":{"cpu":"4","memory":"8Gi"},"node_selector":{"node-type":"high-memory"}},
        "routing":{"slack_channel_ids":["C0A4967KRBM"]}})
}

pub(crate) async fn rig(grace: Duration) -> Rig {
    rig_with(grace, DbKind::Sqlite, false).await
}

/// A rig on `kind`, with `provision.namespace_per_team` set as `per_team` (for the API's policy and
/// the provisioner alike).
pub(crate) async fn rig_with(grace: Duration, kind: DbKind, per_team: bool) -> Rig {
    let nats = NatsServer::start().await;
    let db = TestDb::new(kind).await;
    let per_team_env = if per_team { "true" } else { "false" };
    let env = [
        ("IFOX__NATS__URL", nats.url()),
        (
            "IFOX__PROVISION__NAMESPACE_PER_TEAM",
            per_team_env.to_owned(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_roles(db, &env, &[Role::Admin]).await;
    app.org("acme").await;
    let fake = FakeKube::start().await;
    let backend = KubeBackend::connect(Some(&fake.url), "incidentfox", Duration::from_secs(2))
        .await
        .unwrap();
    let worker = Worker {
        reconciler: Reconciler {
            tenancy: app.state.tenancy.clone(),
            backend: AnyBackend::Kube(backend),
            options: Options {
                namespace: "incidentfox".into(),
                image: "ghcr.io/incidentfox/agent:test".into(),
                availability_timeout: Duration::from_secs(60),
                wait_delay: Duration::from_millis(100),
                retries: 4,
                namespace_per_team: per_team,
                ..Options::default()
            },
        },
        grace,
        tick: Duration::from_millis(100),
        resync_interval: Duration::from_secs(300),
        bus: None,
    };
    Rig {
        app,
        _nats: nats,
        fake,
        worker,
    }
}

pub(crate) async fn provision(rig: &Rig, body: Value) -> String {
    let a = rig
        .app
        .post("/api/v1/admin/provision/team", ADMIN_TOKEN, body)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    a.body["run_id"].as_str().unwrap().to_owned()
}

pub(crate) async fn converged(grace: Duration) -> (Rig, String) {
    let rig = rig(grace).await;
    let run = provision(&rig, design_example()).await;
    assert!(matches!(rig.pass().await, Outcome::Done));
    (rig, run)
}

/// Deprovisions `acme`/`enterprise-team` through the API.
pub(crate) async fn deprovision(rig: &Rig) {
    let a = rig
        .app
        .post(
            "/api/v1/admin/provision/team/acme/enterprise-team/deprovision",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
}

/// The team's pending deletion made due now, as the clock would after the grace.
pub(crate) async fn grace_over(rig: &Rig) {
    let (org, team) = ids();
    let run = rig.row().await.run_id;
    let mut conn = rig.conn().await;
    deployments::cancel_deletion(&mut conn, &org, &team)
        .await
        .unwrap();
    deployments::schedule_deletion(&mut conn, &org, &team, &run, 0)
        .await
        .unwrap();
}

/// The run failed for good because an object of its name is labelled for another tenant (or none):
/// its error, which says so with 409.
pub(crate) async fn failed_as_foreign(rig: &Rig, run: &str, outcome: Outcome) -> String {
    let Outcome::Failed(e) = outcome else {
        panic!("the run should fail: {outcome:?}")
    };
    assert_eq!(e.reason(), "object_owned_by_another_tenant");
    let shown = rig.run(run).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    let error = shown["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("object_owned_by_another_tenant") && error.contains("409"),
        "{error}"
    );
    error
}
