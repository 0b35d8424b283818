//! End to end on the `manifests` backend with a real nats-server: the API admits, the provisioner
//! role (in the same process, consuming PROVISION) writes one YAML file per object, then routes the
//! team to its service; going back to shared removes the URL at once and the files after the grace.

use crate::support::{DbKind, NatsServer, TestApp, TestDb, app::ADMIN_TOKEN, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const URL: &str = "http://agent-dedicated-acme-web.incidentfox.svc.cluster.local:8080";
const GRACE: Duration = Duration::from_secs(2);

async fn app(nats: &NatsServer, dir: &Path) -> TestApp {
    let db = TestDb::new(DbKind::Sqlite).await;
    let dir = dir.to_str().unwrap().to_owned();
    let app = TestApp::spawn_on(
        db,
        &[
            ("IFOX__NATS__URL", &nats.url()),
            ("IFOX__KUBE__BACKEND", "manifests"),
            ("IFOX__KUBE__MANIFESTS_DIR", &dir),
            ("IFOX__PROVISION__GRACE", "2s"),
            ("IFOX__PROVISION__TICK", "200ms"),
        ],
    )
    .await;
    app.org("acme").await;
    app
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn url(app: &TestApp) -> Option<String> {
    let a = app
        .get("/api/v1/admin/orgs/acme/nodes/web/config", ADMIN_TOKEN)
        .await;
    a.body["config"]["agent_service_url"]
        .as_str()
        .map(str::to_owned)
}

async fn provision_dedicated(app: &TestApp, dir: &Path) -> Value {
    let body = json!({"org_id": "acme", "team_node_id": "web", "deployment_mode": "dedicated",
        "dedicated_config": {"replicas": 1, "autoscaling": false, "resources": {"cpu": "500m", "memory": "1Gi"}}});
    let a = app
        .post("/api/v1/admin/provision/team", ADMIN_TOKEN, body)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let expected = [
        "agent-dedicated-acme-web.deployment.yaml",
        "agent-dedicated-acme-web.secret.yaml",
        "agent-dedicated-acme-web.service.yaml",
    ];
    eventually("the manifest files", Duration::from_secs(20), || async {
        (files(dir) == expected).then_some(())
    })
    .await;
    eventually("agent_service_url set", Duration::from_secs(10), || async {
        (url(app).await.as_deref() == Some(URL)).then_some(())
    })
    .await;
    let path = format!(
        "/api/v1/admin/provision/runs/{}",
        a.body["run_id"].as_str().unwrap()
    );
    eventually("the run succeeded", Duration::from_secs(10), || async {
        (app.get(&path, ADMIN_TOKEN).await.body["status"] == "succeeded").then_some(())
    })
    .await;
    a.body
}

#[tokio::test]
async fn a_team_provisioned_dedicated_gets_its_files_then_its_url_and_deprovisioning_removes_the_url_at_once_and_the_files_after_the_grace()
 {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&nats, dir.path()).await;
    let admitted = provision_dedicated(&app, dir.path()).await;
    assert!(
        admitted["team_token"]["token"]
            .as_str()
            .unwrap()
            .starts_with("acme.web.")
    );
    let deployment =
        std::fs::read_to_string(dir.path().join("agent-dedicated-acme-web.deployment.yaml"))
            .unwrap();
    assert!(
        deployment.contains("app.kubernetes.io/managed-by: ifox"),
        "{deployment}"
    );

    let a = app
        .post(
            "/api/v1/admin/provision/team/acme/web/deprovision",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let switched = Instant::now();
    assert_eq!(url(&app).await, None, "routing did not switch at once");
    assert_eq!(files(dir.path()).len(), 3, "files removed before the grace");
    eventually("the files removed", Duration::from_secs(15), || async {
        files(dir.path()).is_empty().then_some(())
    })
    .await;
    let waited = switched.elapsed();
    assert!(
        waited >= GRACE - Duration::from_millis(100),
        "removed after {waited:?}"
    );
    assert!(
        waited < GRACE + Duration::from_secs(3),
        "removed {waited:?} after the switch"
    );
}

#[tokio::test]
async fn removing_the_url_through_the_config_api_schedules_the_deletion_after_the_grace() {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&nats, dir.path()).await;
    provision_dedicated(&app, dir.path()).await;
    let a = app
        .put(
            "/api/v1/admin/orgs/acme/nodes/web/config",
            ADMIN_TOKEN,
            json!({"agent_service_url": null}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let switched = Instant::now();
    eventually("the files removed", Duration::from_secs(15), || async {
        files(dir.path()).is_empty().then_some(())
    })
    .await;
    assert!(
        switched.elapsed() >= GRACE - Duration::from_millis(100),
        "{:?}",
        switched.elapsed()
    );
    assert_eq!(url(&app).await, None, "the provisioner put the URL back");
}

#[tokio::test]
async fn an_object_the_cluster_rejects_fails_the_run_and_leaves_a_dead_letter_with_the_apis_message()
 {
    let nats = NatsServer::start().await;
    let fake = crate::support::fake_kube::FakeKube::start().await;
    fake.reject_kind("deployments", "spec.replicas: Invalid value: 100000");
    let db = TestDb::new(DbKind::Sqlite).await;
    let app = TestApp::spawn_on(
        db,
        &[
            ("IFOX__NATS__URL", &nats.url()),
            ("IFOX__KUBE__BACKEND", "kube"),
            ("IFOX__KUBE__URL", &fake.url),
        ],
    )
    .await;
    app.org("acme").await;
    let body = json!({"org_id": "acme", "team_node_id": "web", "deployment_mode": "dedicated",
        "dedicated_config": {"replicas": 1}});
    let a = app
        .post("/api/v1/admin/provision/team", ADMIN_TOKEN, body)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let path = format!(
        "/api/v1/admin/provision/runs/{}",
        a.body["run_id"].as_str().unwrap()
    );
    let shown = eventually("the run failed", Duration::from_secs(20), || async {
        let shown = app.get(&path, ADMIN_TOKEN).await.body;
        (shown["status"] == "failed").then_some(shown)
    })
    .await;
    assert!(
        shown["error"].as_str().unwrap().contains("Invalid value"),
        "{shown}"
    );
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let letter = eventually("the dead letter", Duration::from_secs(10), || async {
        let stream = js.get_stream("DEADLETTER").await.ok()?;
        stream
            .get_last_raw_message_by_subject("ifox.deadletter.provisioner.object_rejected")
            .await
            .ok()
    })
    .await;
    // The router's dead-letter format: the reason, detail, stage and original subject in
    // `Ifox-DL-*` headers, a `Nats-Msg-Id` of its own.
    let header = |name: &str| {
        letter
            .headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("Ifox-DL-Reason"), "object_rejected");
    assert_eq!(header("Ifox-DL-Stage"), "provisioner");
    assert_eq!(header("Ifox-DL-Subject"), "ifox.provision.acme.web");
    assert!(
        header("Ifox-DL-Detail").contains("Invalid value"),
        "{}",
        header("Ifox-DL-Detail")
    );
    assert!(
        header("Nats-Msg-Id").starts_with("dl:provisioner:"),
        "{}",
        header("Nats-Msg-Id")
    );
    let body: Value = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(body["org_id"], "acme", "the original nudge is kept: {body}");
    assert_eq!(url(&app).await, None);
}
