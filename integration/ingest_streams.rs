//! The stream files against a real nats-server: created at start-up, applied idempotently, updated
//! in place when a file changes, never recreated; and the `ifox streams` commands.

use crate::ingest_fixtures::Stack;
use crate::support::{NatsServer, eventually};
use async_nats::jetstream;
use ifox::bus::streams::{self, Action};
use ifox::bus::{StreamError, StreamSpec};
use std::path::Path;
use std::time::Duration;

async fn js(nats: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(nats.url()).await.expect("connect"))
}

/// A copy of the stream files of `streams/` to edit.
fn copy_of_streams() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("streams");
    for entry in std::fs::read_dir(src).expect("streams/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue; // e.g. streams/consumers/
        }
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

fn edit(dir: &Path, file: &str, key: &str, value: serde_json::Value) {
    let path = dir.join(file);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    config[key] = value;
    std::fs::write(path, serde_json::to_string_pretty(&config).expect("json")).expect("write");
}

#[tokio::test]
async fn start_up_creates_every_stream_of_the_design() {
    let stack = Stack::start().await;
    for (name, subject) in [
        ("EVENTS", "ifox.events.>"),
        ("AGENT_RUNS", "ifox.agent.>"),
        ("PROVISION", "ifox.provision.>"),
        ("DEADLETTER", "ifox.deadletter.>"),
        ("RUNS", "ifox.runs.>"),
    ] {
        // The app applies the files one after the other; EVENTS (which Stack waits for) is first.
        let mut stream = eventually(name, Duration::from_secs(10), || {
            let js = stack.js.clone();
            async move { js.get_stream(name).await.ok() }
        })
        .await;
        let info = stream.info().await.expect("info");
        assert_eq!(info.config.subjects, [subject], "{name}");
    }
}

#[tokio::test]
async fn applying_the_streams_twice_changes_nothing_the_second_time() {
    let nats = NatsServer::start().await;
    let js = js(&nats).await;
    let specs = StreamSpec::embedded().expect("specs");
    let first = streams::apply(&js, &specs).await.expect("first apply");
    assert!(
        first.iter().all(|o| o.action == Action::Create),
        "{first:?}"
    );
    let second = streams::apply(&js, &specs).await.expect("second apply");
    assert!(
        second.iter().all(|o| o.action == Action::None),
        "{second:?}"
    );
    let plan = streams::plan(&js, &specs).await.expect("plan");
    assert!(plan.iter().all(|o| !o.changed()), "{plan:?}");
}

#[tokio::test]
async fn a_changed_file_updates_its_stream_in_place_and_keeps_the_messages() {
    let nats = NatsServer::start().await;
    let js = js(&nats).await;
    let dir = copy_of_streams();
    streams::apply(&js, &StreamSpec::load_dir(dir.path()).expect("load"))
        .await
        .expect("apply");
    js.publish("ifox.events.test.kept", "kept".into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let three_days: u64 = 3 * 86_400 * 1_000_000_000;
    edit(dir.path(), "events.json", "max_age", three_days.into());
    let specs = StreamSpec::load_dir(dir.path()).expect("load");
    let plan = streams::plan(&js, &specs).await.expect("plan");
    let events = plan.iter().find(|o| o.stream == "EVENTS").expect("EVENTS");
    let Action::Update { changes } = &events.action else {
        panic!("drift not shown: {events}")
    };
    assert_eq!((changes.len(), changes[0].field.as_str()), (1, "max_age"));
    assert_eq!(
        plan.iter().filter(|o| o.changed()).count(),
        1,
        "the other streams are in sync"
    );

    let applied = streams::apply(&js, &specs).await.expect("apply the change");
    assert!(
        applied
            .iter()
            .any(|o| o.stream == "EVENTS" && matches!(o.action, Action::Update { .. }))
    );
    let mut stream = js.get_stream("EVENTS").await.expect("EVENTS");
    let info = stream.info().await.expect("info");
    assert_eq!(
        info.config.max_age,
        std::time::Duration::from_nanos(three_days)
    );
    assert_eq!(
        info.state.messages, 1,
        "an update keeps the stream's messages"
    );
}

#[tokio::test]
async fn a_change_nats_cannot_make_in_place_is_refused_and_the_stream_is_left_alone() {
    let nats = NatsServer::start().await;
    let js = js(&nats).await;
    let dir = copy_of_streams();
    streams::apply(&js, &StreamSpec::load_dir(dir.path()).expect("load"))
        .await
        .expect("apply");
    js.publish("ifox.events.test.kept", "kept".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    edit(dir.path(), "events.json", "storage", "memory".into());
    let err = streams::apply(&js, &StreamSpec::load_dir(dir.path()).expect("load"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamError::Refused { ref stream, .. } if stream == "EVENTS"),
        "{err}"
    );
    let mut stream = js.get_stream("EVENTS").await.expect("EVENTS still there");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
}

#[tokio::test]
async fn the_streams_commands_apply_then_report_no_drift_and_report_drift_with_exit_code_1() {
    let nats = NatsServer::start().await;
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ifox"));
        cmd.args(args)
            .env("IFOX__NATS__URL", nats.url())
            .env("IFOX_CONFIG", "/nonexistent/ifox.toml")
            .env("IFOX__LOG__LEVEL", "error");
        async move { cmd.output().await.expect("run ifox") }
    };
    let apply = run(&["streams", "apply"]).await;
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert!(String::from_utf8_lossy(&apply.stdout).contains("EVENTS: created"));
    let diff = run(&["streams", "diff"]).await;
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(String::from_utf8_lossy(&diff.stdout).contains("EVENTS: in sync"));

    let dir = copy_of_streams();
    edit(
        dir.path(),
        "runs.json",
        "max_age",
        86_400_000_000_000u64.into(),
    );
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let diff = run(&["streams", "diff", "--dir", dir_arg]).await;
    assert_eq!(diff.status.code(), Some(1));
    let out = String::from_utf8_lossy(&diff.stdout);
    assert!(
        out.contains("RUNS: differs") && out.contains("max_age"),
        "{out}"
    );
}
