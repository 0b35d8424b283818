//! `ifox status --json` against a real nats-server (streams applied, a consumer part-way through
//! EVENTS, dead letters of two stages) and a SQLite database with provisioning state: every number
//! in the output is the one the test set up.

use crate::support::{DbKind, NatsServer, TestDb};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use ifox::domain::runtime::Mode;
use ifox::domain::{NodeId, OrgId};
use ifox::store::Store;
use ifox::store::deployments::{self, DeploymentRow};
use ifox::store::provision_runs::{self, RunRow};
use serde_json::{Value, json};

async fn ifox(args: &[&str], nats: &str, db: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ifox"))
        .args(args)
        .env("IFOX__NATS__URL", nats)
        .env("IFOX__DATABASE__URL", db)
        .env("IFOX_CONFIG", "/nonexistent/ifox.toml")
        .env("IFOX__LOG__LEVEL", "error")
        .output()
        .await
        .expect("run ifox")
}

/// A team's deployment row and its current provisioning run.
async fn provisioned(store: &Store, team: &str, mode: Mode, run_status: &str, url_set: bool) {
    let mut conn = store.pool().acquire().await.unwrap();
    let run_id = format!("run-{team}");
    provision_runs::insert(
        &mut conn,
        &RunRow {
            run_id: run_id.clone(),
            org_id: "acme".into(),
            team_id: team.into(),
            kind: "provision".into(),
            status: run_status.into(),
            error: (run_status == "failed").then(|| "object_rejected: quota".to_owned()),
            created_by: "test".into(),
            created_at: 1,
            updated_at: 2,
        },
    )
    .await
    .unwrap();
    let spec = (mode == Mode::Dedicated).then(|| {
        serde_json::from_value(
            json!({"replicas": 2, "cpu_limit": "1", "memory_limit": "1Gi",
            "cpu_request": "100m", "memory_request": "128Mi"}),
        )
        .unwrap()
    });
    deployments::upsert(
        &mut conn,
        &DeploymentRow {
            org: OrgId::parse("acme").unwrap(),
            team: NodeId::parse(team).unwrap(),
            mode,
            spec,
            pipeline: None,
            runtime_token: None,
            run_id,
            generation: 1,
            url_set,
            updated_at: 2,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn status_json_reports_streams_consumers_dead_letters_and_provisioning_as_set_up() {
    let nats = NatsServer::start().await;
    let db = TestDb::new(DbKind::Sqlite).await;
    let apply = ifox(&["streams", "apply"], &nats.url(), &db.url).await;
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );

    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    for i in 0..3 {
        js.publish(format!("ifox.events.github.issues.{i}"), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    for (subject, n) in [
        ("ifox.deadletter.router.no_route", 2),
        ("ifox.deadletter.bridge.agent_refused", 1),
    ] {
        for _ in 0..n {
            js.publish(subject, "{}".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
    // A consumer that took one event and acknowledged it: two pending, ack floor at 1.
    let events = js.get_stream("EVENTS").await.unwrap();
    let router = events
        .create_consumer(consumer::pull::Config {
            durable_name: Some("router".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = router.fetch().max_messages(1).messages().await.unwrap();
    let msg = batch.next().await.unwrap().unwrap();
    msg.double_ack().await.unwrap();

    let store = Store::connect(&db.url, 1).await.unwrap();
    store.migrate().await.unwrap();
    provisioned(&store, "ok", Mode::Dedicated, "succeeded", true).await;
    provisioned(&store, "broken", Mode::Dedicated, "failed", false).await;
    provisioned(&store, "starting", Mode::Dedicated, "running", false).await;
    provisioned(&store, "plain", Mode::Shared, "succeeded", false).await;

    let out = ifox(&["status", "--json"], &nats.url(), &db.url).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");

    let stream = |name: &str| {
        s["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("stream {name} in {s}"))
            .clone()
    };
    let names: Vec<&str> = s["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 5, "every stream of streams/: {names:?}");
    assert_eq!(stream("EVENTS")["messages"], 3);
    assert_eq!(stream("EVENTS")["present"], true);
    assert_eq!(stream("EVENTS")["replicas"], 1);
    assert!(stream("EVENTS")["bytes"].as_u64().unwrap() > 0);
    assert_eq!(stream("DEADLETTER")["messages"], 3);
    assert_eq!(stream("RUNS")["messages"], 0);

    assert_eq!(
        s["consumers"],
        json!([{"stream": "EVENTS", "name": "router", "pending": 2, "ack_pending": 0,
            "redelivered": 0, "ack_floor_seq": 1, "ack_floor_lag": 2}])
    );
    assert_eq!(
        s["dead_letters"],
        json!([{"stage": "bridge", "reason": "agent_refused", "count": 1},
               {"stage": "router", "reason": "no_route", "count": 2}])
    );
    let runs: Vec<(&str, &str)> = s["provision_runs_not_succeeded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["team"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(runs, [("broken", "failed"), ("starting", "running")]);
    assert_eq!(
        s["provision_runs_not_succeeded"][0]["error"],
        "object_rejected: quota"
    );
    let teams: Vec<(&str, bool, i64)> = s["dedicated_teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["team"].as_str().unwrap(),
                t["available"].as_bool().unwrap(),
                t["replicas"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        teams,
        [
            ("broken", false, 2),
            ("ok", true, 2),
            ("starting", false, 2)
        ]
    );
    assert_eq!(s["healthy"], false);
    assert_eq!(
        s["problems"],
        json!(["provisioning of acme/broken failed (run run-broken)"])
    );
    assert_eq!(s["unavailable"], json!([]));

    // The text form says the same, for a person.
    let text = ifox(&["status"], &nats.url(), &db.url).await;
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("health: PROBLEMS"), "{text}");
    assert!(text.contains("dead letters: 3"), "{text}");
    assert!(text.contains("dedicated teams: 3 (1 available)"), "{text}");
}

#[tokio::test]
async fn status_with_nats_down_still_reports_the_database_and_names_what_was_unavailable() {
    let db = TestDb::new(DbKind::Sqlite).await;
    let store = Store::connect(&db.url, 1).await.unwrap();
    store.migrate().await.unwrap();
    provisioned(&store, "ok", Mode::Dedicated, "succeeded", true).await;
    let port = crate::support::nats::free_port();
    let out = ifox(
        &["status", "--json"],
        &format!("nats://127.0.0.1:{port}"),
        &db.url,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["healthy"], false);
    assert!(
        s["unavailable"][0].as_str().unwrap().starts_with("nats:"),
        "{s}"
    );
    assert_eq!(s["dedicated_teams"][0]["available"], true);
    assert_eq!(s["streams"], json!([]));
}
