//! Cluster-test fixtures: signed GitHub webhooks sent as a provider would (paced, retried on another
//! ifox on 5xx or a refused connection, with the same delivery id so a retry collapses), the
//! tenancy written through the admin API, and the counts read back through public surfaces only:
//! the runs API, the echo agent's `/_echo/requests`, and stream and consumer info.

use async_nats::jetstream;
use ifox::bridge::echo::Recorded;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub const ADMIN_TOKEN: &str = "cluster-admin-token";
pub const GITHUB_SECRET: &str = "cluster-github-secret";
pub const ORG: &str = "acme";

/// The delivery id (and so the event id) of webhook `i`.
pub fn delivery(i: u64) -> String {
    format!("cl-{i}")
}

fn team(i: u64, teams: u64) -> String {
    format!("svc-{}", i % teams)
}

/// Org `acme` and `teams` teams `svc-<i>`, each claiming GitHub repo `acme/svc-<i>`.
pub async fn tenancy(base: &str, teams: u64) {
    let client = reqwest::Client::new();
    let call = |path: String, method: reqwest::Method, body: Value| {
        let request = client
            .request(method, format!("{base}/api/v1/admin/orgs{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        async move {
            let res = request.send().await.expect("admin API");
            let status = res.status();
            assert!(
                status.is_success(),
                "{path}: {status} {:?}",
                res.text().await
            );
        }
    };
    call(
        String::new(),
        reqwest::Method::POST,
        json!({"org_id": ORG, "name": ORG}),
    )
    .await;
    for t in 0..teams {
        let name = team(t, teams);
        let node = json!({"node_id": name, "parent_id": null, "node_type": "team", "name": name});
        call(format!("/{ORG}/nodes"), reqwest::Method::POST, node).await;
        let config = json!({"routing": {"github_repos": [format!("{ORG}/{name}")]}});
        let path = format!("/{ORG}/nodes/{name}/config");
        call(path, reqwest::Method::PUT, config).await;
    }
}

/// What the senders did so far.
#[derive(Default)]
pub struct Sent {
    pub accepted: AtomicU64,
    /// Retries after a 5xx or 429 (ingest could not publish in time, or was stopping).
    pub retried_status: AtomicU64,
    /// Retries after a connection error (the ifox was down).
    pub retried_connection: AtomicU64,
}

impl Sent {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    pub fn retries(&self) -> (u64, u64) {
        (
            self.retried_status.load(Ordering::Relaxed),
            self.retried_connection.load(Ordering::Relaxed),
        )
    }
}

/// The load: `events` webhooks at `rate` per second over `teams` teams, `concurrency` in flight,
/// alternating over `targets` (ifox base URLs).
pub struct Load {
    pub targets: Vec<String>,
    pub events: u64,
    pub teams: u64,
    pub rate: f64,
    pub concurrency: usize,
}

impl Load {
    /// Sends every webhook until it is accepted (200); panics when one is refused (4xx) or not
    /// accepted within two minutes of retries. Returns how long that took.
    pub async fn run(self, sent: Arc<Sent>) -> Duration {
        use futures::StreamExt;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let start = Instant::now();
        let this = Arc::new(self);
        futures::stream::iter(0..this.events)
            .for_each_concurrent(this.concurrency, |i| {
                let (this, client, sent) = (this.clone(), client.clone(), sent.clone());
                async move {
                    let due = start + Duration::from_secs_f64(i as f64 / this.rate);
                    tokio::time::sleep_until(due).await;
                    this.send(&client, i, &sent).await;
                }
            })
            .await;
        start.elapsed()
    }

    async fn send(&self, client: &reqwest::Client, i: u64, sent: &Sent) {
        let team = team(i, self.teams);
        let body = json!({"action": "opened", "repository": {"full_name": format!("{ORG}/{team}"),
            "owner": {"login": ORG}}, "issue": {"number": i, "title": "checkout is down"},
            "sender": {"login": "dev"}});
        let body = serde_json::to_vec(&body).expect("JSON");
        let signature = ifox::ingest::verify::sign_github(GITHUB_SECRET, &body);
        let first = Instant::now();
        let mut target = (i as usize) % self.targets.len();
        let mut pause = Duration::from_millis(50);
        loop {
            let res = client
                .post(format!("{}/webhooks/github", self.targets[target]))
                .header("content-type", "application/json")
                .header("x-github-event", "issues")
                .header("x-github-delivery", delivery(i))
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    sent.accepted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(r) if r.status().is_server_error() || r.status() == 429 => {
                    sent.retried_status.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => panic!("webhook {i} refused: {} {:?}", r.status(), r.text().await),
                Err(_) => {
                    sent.retried_connection.fetch_add(1, Ordering::Relaxed);
                }
            }
            assert!(
                first.elapsed() < Duration::from_secs(120),
                "webhook {i} not accepted within two minutes"
            );
            // A provider retries later; a load balancer would pick another replica.
            target = (target + 1) % self.targets.len();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// Stream and consumer figures of the pipeline; `None` where the cluster did not answer (a node
/// is down, a leader is being elected).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pipeline {
    pub events: Option<u64>,
    pub agent_runs: Option<u64>,
    pub deadletter: Option<u64>,
    /// (pending, ack pending) of the router's and the bridge's consumers.
    pub router: Option<(u64, usize)>,
    pub bridge: Option<(u64, usize)>,
}

impl Pipeline {
    pub async fn read(js: &jetstream::Context) -> Pipeline {
        let messages = |name: &'static str| async move {
            let mut stream = js.get_stream(name).await.ok()?;
            Some(stream.info().await.ok()?.state.messages)
        };
        let consumer = |stream: &'static str, name: &'static str| async move {
            let stream = js.get_stream(stream).await.ok()?;
            let mut c: jetstream::consumer::PullConsumer = stream.get_consumer(name).await.ok()?;
            let info = c.info().await.ok()?;
            Some((info.num_pending, info.num_ack_pending))
        };
        Pipeline {
            events: bounded(messages("EVENTS")).await,
            agent_runs: bounded(messages("AGENT_RUNS")).await,
            deadletter: bounded(messages("DEADLETTER")).await,
            router: bounded(consumer("EVENTS", "router")).await,
            bridge: bounded(consumer("AGENT_RUNS", "bridge")).await,
        }
    }

    /// Both consumers hold nothing (pending or unacknowledged).
    pub fn drained(&self) -> bool {
        self.router == Some((0, 0)) && self.bridge == Some((0, 0))
    }

    pub fn line(&self) -> String {
        let n = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        let c = |v: Option<(u64, usize)>| v.map_or("?".to_owned(), |(p, a)| format!("{p}/{a}"));
        format!(
            "EVENTS {} router pending/acks {} | AGENT_RUNS {} bridge pending/acks {} | DEADLETTER {}",
            n(self.events),
            c(self.router),
            n(self.agent_runs),
            c(self.bridge),
            n(self.deadletter)
        )
    }
}

/// `f`'s answer, or `None` when it takes more than 3 s (a request stuck on a dead server).
async fn bounded<T>(f: impl Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(3), f)
        .await
        .ok()
        .flatten()
}

/// Every run record of org `acme`, from the runs API (pages of 500).
pub async fn all_runs(base: &str) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/admin/orgs/{ORG}/runs?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("runs API")
            .json()
            .await
            .expect("runs page");
        runs.extend(page["runs"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return runs,
        }
    }
}

/// How many `completed` transitions each run went through, from the runs API (16 at a time).
pub async fn completions(base: &str, run_ids: &[String]) -> HashMap<String, usize> {
    use futures::StreamExt;
    let client = reqwest::Client::new();
    futures::stream::iter(run_ids.iter().cloned())
        .map(|id| {
            let request = client
                .get(format!("{base}/api/v1/admin/orgs/{ORG}/runs/{id}"))
                .bearer_auth(ADMIN_TOKEN)
                .send();
            async move {
                let run: Value = request.await.expect("run").json().await.expect("run JSON");
                let completed = run["transitions"]
                    .as_array()
                    .map(|t| t.iter().filter(|t| t["status"] == "completed").count())
                    .unwrap_or(0);
                (id, completed)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Every request the echo agent recorded.
pub async fn agent_requests(agent: &str) -> Vec<Recorded> {
    reqwest::get(format!("{agent}/_echo/requests"))
        .await
        .expect("echo agent")
        .json()
        .await
        .expect("echo record")
}
