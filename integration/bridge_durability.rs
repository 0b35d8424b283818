//! The bridge under load and failure: a team that floods the shared pool does not hold up another
//! team's run by more than one slot, and a bridge process killed (`kill -9`) mid-flood loses no run
//! and completes none twice.

use crate::both_databases;
use crate::bridge_fixtures::Agent;
use crate::router_fixtures::{publish_event, stream_count, tenants};
use crate::support::app::ADMIN_TOKEN;
use crate::support::{DbKind, NatsServer, TestApp, TestDb, eventually};
use async_nats::jetstream;
use ifox::app::Role;
use ifox::bridge::echo::EchoOptions;
use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Every role on SQLite, the bridge delivering to `agent` with two deliveries at once in all.
async fn two_slot_bridge(agent: &Agent) -> (NatsServer, TestApp) {
    let nats = NatsServer::start().await;
    let url = nats.url();
    let app = TestApp::spawn_with(
        DbKind::Sqlite,
        &[
            ("IFOX__NATS__URL", &url),
            ("IFOX__BRIDGE__SHARED_URL", &agent.url),
            ("IFOX__BRIDGE__ALLOWED_URL_PATTERNS", "http://127.0.0.1:*"),
            ("IFOX__BRIDGE__CONCURRENCY", "2"),
        ],
    )
    .await;
    (nats, app)
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(app.state.tenancy.store().pool())
        .await
        .expect("count");
    n
}

/// Publishes `n` GitHub events for `acme/<team>` with ids `<prefix>-<i>`, PubAcks awaited per 500.
async fn flood(js: &jetstream::Context, team: &str, prefix: &str, n: usize) {
    let repo = format!("acme/{team}");
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut acks = Vec::new();
        for &i in chunk {
            let mut h = async_nats::HeaderMap::new();
            h.insert("ce-id", format!("{prefix}-{i}").as_str());
            h.insert("ce-source", "github");
            h.insert("ce-type", "issues");
            h.insert("Nats-Msg-Id", format!("github:{prefix}-{i}").as_str());
            h.insert("ifox-route-github_repos", repo.as_str());
            acks.push(
                js.publish_with_headers("ifox.events.github.issues", h, "{}".into())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_flooding_team_delays_another_teams_run_by_at_most_one_slot() {
    // Two deliveries at once in the whole bridge, each taking two seconds at the agent (so a slot
    // frees about once a second: the lone run's routing has that long to reach the queue).
    let agent = Agent::start(EchoOptions {
        delay: Duration::from_secs(2),
        max_concurrent: 16,
        ..EchoOptions::default()
    })
    .await;
    let (nats, app) = two_slot_bridge(&agent).await;
    let url = nats.url();
    tenants(
        &app,
        &[
            ("flood", "github_repos", "acme/flood"),
            ("lone", "github_repos", "acme/lone"),
        ],
    )
    .await;
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    flood(&js, "flood", "f", 1_000).await;
    // The flood is routed and held by the bridge (its first deliveries are at the agent).
    eventually("the flood routed", Duration::from_secs(60), || async {
        (count(&app, "SELECT COUNT(*) FROM runs").await == 1_000).then_some(())
    })
    .await;
    eventually(
        "the flood at the agent",
        Duration::from_secs(10),
        || async { (agent.requests().len() >= 2).then_some(()) },
    )
    .await;
    let before = agent.requests().len();
    publish_event(
        &js,
        "github",
        "issues",
        Some("lone-1"),
        &[("github_repos", "acme/lone")],
        &[],
        b"{}",
    )
    .await;
    let seen = eventually(
        "the lone run at the agent",
        Duration::from_secs(20),
        || async {
            let seen = agent.requests();
            seen.iter()
                .any(|r| r.team_id.as_deref() == Some("lone"))
                .then_some(seen)
        },
    )
    .await;
    let lone_at = seen
        .iter()
        .position(|r| r.team_id.as_deref() == Some("lone"))
        .unwrap();
    // Of the flood's 998 waiting runs, at most one took a slot between the lone run's arrival
    // and its delivery (the slot that freed while it was being routed).
    let overtaken = lone_at - before;
    assert!(
        overtaken <= 1,
        "{overtaken} flood deliveries started before the lone run: {:?}",
        seen[before..=lone_at]
            .iter()
            .map(|r| r.team_id.clone())
            .collect::<Vec<_>>()
    );
    // The global bound held: never more than two requests started within a delivery's time of
    // each other at the agent (each takes two seconds).
    let starts: Vec<u64> = seen.iter().map(|r| r.at_us).collect();
    for (i, s) in starts.iter().enumerate() {
        let overlapping = starts[i..]
            .iter()
            .take_while(|t| **t < s + 1_900_000)
            .count();
        assert!(overlapping <= 2, "{overlapping} deliveries at once");
    }
}

/// A bridge process, killed when dropped (also when a test fails half-way). Its log goes to the
/// file named by `IFOX_TEST_BRIDGE_LOG` when set.
struct BridgeProcess(Child);

impl BridgeProcess {
    fn start(db_url: &str, nats_url: &str, agent: &str) -> BridgeProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_ifox"))
            .args(["serve", "--roles", "bridge,recorder"])
            .env("IFOX__DATABASE__URL", db_url)
            .env("IFOX__NATS__URL", nats_url)
            .env("IFOX__HTTP__LISTEN", "127.0.0.1:0")
            .env("IFOX__ADMIN__TOKEN", ADMIN_TOKEN)
            .env("IFOX__BRIDGE__SHARED_URL", agent)
            .env("IFOX__BRIDGE__ALLOWED_URL_PATTERNS", "http://127.0.0.1:*")
            .env("IFOX__LOG__LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(match std::env::var("IFOX_TEST_BRIDGE_LOG") {
                Ok(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                Err(_) => Stdio::null(),
            })
            .spawn()
            .expect("start the bridge process");
        BridgeProcess(child)
    }

    /// SIGKILL: no shutdown, no acks, no flush.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Played as a hostile org admin: its team sets `max_concurrent_agents` 1000 and its agent holds
/// every request. It gets at most half of the bridge's slots (here 1 of 2); another team's run still
/// reaches the agent at once.
#[tokio::test]
async fn a_team_that_raises_its_own_concurrency_gets_at_most_half_the_slots() {
    let agent = Agent::start(EchoOptions {
        fail: ifox::bridge::echo::FailMode::Hang,
        max_concurrent: 16,
        ..EchoOptions::default()
    })
    .await;
    let (nats, app) = two_slot_bridge(&agent).await;
    let url = nats.url();
    tenants(
        &app,
        &[
            ("greedy", "github_repos", "acme/greedy"),
            ("other", "github_repos", "acme/other"),
        ],
    )
    .await;
    let a = app
        .patch(
            "/api/v1/admin/orgs/acme/nodes/greedy/config",
            ADMIN_TOKEN,
            serde_json::json!({"max_concurrent_agents": 1000}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    flood(&js, "greedy", "g", 5).await;
    eventually(
        "the greedy team's runs recorded",
        Duration::from_secs(30),
        || async { (count(&app, "SELECT COUNT(*) FROM runs").await == 5).then_some(()) },
    )
    .await;
    eventually(
        "a greedy run at the agent",
        Duration::from_secs(10),
        || async { (!agent.requests().is_empty()).then_some(()) },
    )
    .await;
    // Time for a second greedy delivery to start, if the cap let it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let greedy = |team: &str| {
        agent
            .requests()
            .iter()
            .filter(|r| r.team_id.as_deref() == Some(team))
            .count()
    };
    assert_eq!(greedy("greedy"), 1, "one slot of two for the greedy team");
    flood(&js, "other", "o", 1).await;
    eventually(
        "the other team's run at the agent",
        Duration::from_secs(10),
        || async { (greedy("other") == 1).then_some(()) },
    )
    .await;
    assert_eq!(greedy("greedy"), 1);
}

async fn killing_the_bridge_mid_flood_completes_every_run_exactly_once(kind: DbKind) {
    const N: usize = 2_000;
    const TEAMS: usize = 10;
    let agent = Agent::start(EchoOptions {
        delay: Duration::from_millis(40),
        max_concurrent: 64,
        ..EchoOptions::default()
    })
    .await;
    let nats = NatsServer::start().await;
    let url = nats.url();
    let db = TestDb::new(kind).await;
    let app = TestApp::spawn_roles(
        db,
        &[("IFOX__NATS__URL", &url)],
        &[Role::Admin, Role::Router],
    )
    .await;
    let claims: Vec<(String, String)> = (0..TEAMS)
        .map(|i| (format!("svc-{i}"), format!("acme/svc-{i}")))
        .collect();
    let claims: Vec<(&str, &str, &str)> = claims
        .iter()
        .map(|(t, r)| (t.as_str(), "github_repos", r.as_str()))
        .collect();
    tenants(&app, &claims).await;
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    for t in 0..TEAMS {
        flood(&js, &format!("svc-{t}"), &format!("k{t}"), N / TEAMS).await;
    }
    let mut bridge = BridgeProcess::start(&app.db.url, &url, &agent.url);
    eventually(
        "the bridge part-way through",
        Duration::from_secs(60),
        || async {
            (count(&app, "SELECT COUNT(*) FROM runs WHERE status = 'completed'").await >= 300)
                .then_some(())
        },
    )
    .await;
    bridge.kill();
    let at_kill = count(&app, "SELECT COUNT(*) FROM runs WHERE status = 'completed'").await;
    assert!(at_kill < N as i64, "killed mid-flood ({at_kill} of {N})");

    let _bridge = BridgeProcess::start(&app.db.url, &url, &agent.url);
    // What the killed process held comes back after the consumer's ack_wait (30 s); its run
    // transitions too, behind newer ones. 30-40 s alone; the budget is for a loaded machine.
    eventually("every run completed", Duration::from_secs(240), || async {
        (count(&app, "SELECT COUNT(*) FROM runs WHERE status = 'completed'").await == N as i64)
            .then_some(())
    })
    .await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM runs").await, N as i64);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM run_transitions WHERE status = 'completed'"
        )
        .await,
        N as i64,
        "each run completed once"
    );
    // The agent saw every run, and a run it saw twice carried the same Idempotency-Key.
    let run_ids: BTreeSet<String> = sqlx::query_as::<_, (String,)>("SELECT run_id FROM runs")
        .fetch_all(app.state.tenancy.store().pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(id,)| id)
        .collect();
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in agent.requests() {
        let key = r
            .idempotency_key
            .expect("every delivery has an Idempotency-Key");
        assert!(run_ids.contains(&key), "the key is the run id");
        *per_key.entry(key).or_default() += 1;
    }
    assert_eq!(per_key.len(), N, "every run reached the agent");
    let twice = per_key.values().filter(|n| **n > 1).count();
    assert!(twice < N, "{twice} runs delivered more than once");
    assert_eq!(stream_count(&js, "DEADLETTER").await, 0);
}

both_databases!(killing_the_bridge_mid_flood_completes_every_run_exactly_once);
