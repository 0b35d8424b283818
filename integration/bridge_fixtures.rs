//! Bridge fixtures: echo agents on loopback ports (the reference agent, in-process, counting what
//! it receives), the whole stack (ingest, router, bridge, admin) pointed at them, and reads of run
//! records.

use crate::ingest_fixtures::{Stack, Webhook};
use crate::support::app::ADMIN_TOKEN;
use crate::support::{DbKind, eventually};
use ifox::bridge::echo::{EchoAgent, EchoOptions, Recorded};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An echo agent served on `ip`:0 until dropped.
pub struct Agent {
    pub agent: EchoAgent,
    pub url: String,
    shutdown: CancellationToken,
}

impl Agent {
    pub async fn start(options: EchoOptions) -> Agent {
        Self::start_on("127.0.0.1", options).await
    }

    pub async fn start_on(ip: &str, options: EchoOptions) -> Agent {
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .expect("bind the echo agent");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let agent = EchoAgent::new(options);
        let shutdown = CancellationToken::new();
        tokio::spawn(agent.clone().serve(listener, shutdown.clone()));
        Agent {
            agent,
            url,
            shutdown,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.agent.requests()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The settings that point a stack's bridge at `shared` and allow loopback agents.
pub fn bridge_env(shared: &Agent) -> Vec<(String, String)> {
    vec![
        ("IFOX__BRIDGE__SHARED_URL".into(), shared.url.clone()),
        (
            "IFOX__BRIDGE__ALLOWED_URL_PATTERNS".into(),
            "http://127.0.0.1:*".into(),
        ),
        ("IFOX__BRIDGE__SWEEP_INTERVAL".into(), "200ms".into()),
    ]
}

/// A stack on `db` whose bridge delivers to `shared`, with `extra` settings.
pub async fn stack(db: DbKind, shared: &Agent, extra: &[(&str, &str)]) -> Stack {
    let env = bridge_env(shared);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    Stack::start_on(db, &all).await
}

/// Org `acme` and a team `team` claiming GitHub repo `acme/<team>`, with `config` merged in.
pub async fn team(stack: &Stack, team: &str, config: Value) {
    let app = &stack.app;
    if app.get("/api/v1/admin/orgs/acme", ADMIN_TOKEN).await.status != 200 {
        app.org("acme").await;
    }
    app.node("acme", team, None, "team").await;
    let mut body = json!({"routing": {"github_repos": [format!("acme/{team}")]}});
    if let (Some(b), Some(c)) = (body.as_object_mut(), config.as_object()) {
        b.extend(c.clone());
    }
    let a = app
        .put(
            &format!("/api/v1/admin/orgs/acme/nodes/{team}/config"),
            ADMIN_TOKEN,
            body,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A signed GitHub `issues` webhook for repo `acme/<team>`.
pub fn issue(team: &str, delivery: &str) -> Webhook {
    let body = json!({"action": "opened", "repository": {"full_name": format!("acme/{team}"), "owner": {"login": "acme"}},
        "issue": {"number": 7, "title": "checkout is down"}, "sender": {"login": "dev"}});
    Webhook::github_body("issues", delivery, serde_json::to_vec(&body).unwrap())
}

/// Sends [`issue`] for `team` with GitHub delivery id `delivery`; it must be accepted.
pub async fn send(stack: &Stack, team: &str, delivery: &str) {
    let a = stack.send(&issue(team, delivery)).await;
    assert_eq!(a.status, reqwest::StatusCode::OK, "{}", a.body);
}

/// The runs of event `event_id` (the API's view).
pub async fn runs_of(stack: &Stack, event_id: &str) -> Vec<Value> {
    let a = stack
        .app
        .get(
            &format!("/api/v1/admin/orgs/acme/runs/by-event/{event_id}"),
            ADMIN_TOKEN,
        )
        .await;
    a.body["runs"].as_array().cloned().unwrap_or_default()
}

/// Waits until event `event_id`'s run reaches a final status; returns the run with its
/// transitions.
pub async fn finished(stack: &Stack, event_id: &str, deadline: Duration) -> Value {
    let run = eventually(
        &format!("the run of {event_id} to finish"),
        deadline,
        || async {
            let runs = runs_of(stack, event_id).await;
            let run = runs.first()?.clone();
            matches!(
                run["status"].as_str(),
                Some("completed" | "failed" | "timeout")
            )
            .then_some(run)
        },
    )
    .await;
    let id = run["run_id"].as_str().unwrap().to_owned();
    stack
        .app
        .get(&format!("/api/v1/admin/orgs/acme/runs/{id}"), ADMIN_TOKEN)
        .await
        .body
}

/// The statuses a run went through, in order.
pub fn statuses(run: &Value) -> Vec<String> {
    run["transitions"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|x| x["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
