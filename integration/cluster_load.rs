//! The real cluster test (issue 15): three nats-servers on loopback as one JetStream cluster, ifox's
//! streams applied with R3 (`ifox streams apply`, `nats.stream_replicas = 3`), two `ifox serve`
//! processes (admin, ingest, router, bridge each) on one PostgreSQL database, and `ifox agent-echo`
//! as the shared agent. 20,000 signed GitHub webhooks go to both processes as a provider with a
//! load balancer would send them; during the load the EVENTS stream's leader (a nats-server) and one
//! ifox are killed with SIGKILL, then restarted. Counted afterwards through public surfaces only
//! (the runs API, the agent's record, stream info): every event has exactly one run, every run
//! completed exactly once and reached the agent (a repeat only under the run's own
//! `Idempotency-Key`), nothing in DEADLETTER.
//!
//! About two and a half minutes (100 s of them the paced load), so `just test` runs it; `just
//! test-cluster` runs it alone and shows its progress. `IFOX_CLUSTER_EVENTS` and `IFOX_CLUSTER_RATE`
//! (webhooks per second) change the load; the logs of every process are kept when it fails.

use crate::cluster_fixtures::{
    ADMIN_TOKEN, GITHUB_SECRET, Load, Pipeline, Sent, agent_requests, all_runs, completions,
    delivery, tenancy,
};
use crate::support::cluster::NatsCluster;
use crate::support::nats::free_port;
use crate::support::process::{IfoxProcess, LogDir, run_once};
use crate::support::{DbKind, TestDb};
use async_nats::jetstream;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const TEAMS: u64 = 20;
const ROLES: &str = "admin,ingest,router,bridge,recorder";
const STREAMS: [&str; 5] = ["EVENTS", "AGENT_RUNS", "DEADLETTER", "RUNS", "PROVISION"];

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The settings of every ifox process of the test (and of `ifox streams apply`).
fn settings(db: &str, nats: &str, agent: &str, port: u16) -> Vec<(String, String)> {
    [
        ("IFOX__DATABASE__URL", db),
        ("IFOX__NATS__URL", nats),
        ("IFOX__NATS__STREAM_REPLICAS", "3"),
        ("IFOX__HTTP__LISTEN", &format!("127.0.0.1:{port}")),
        ("IFOX__ADMIN__TOKEN", ADMIN_TOKEN),
        ("IFOX__INGEST__SECRETS__GITHUB", GITHUB_SECRET),
        ("IFOX__BRIDGE__SHARED_URL", agent),
        ("IFOX__BRIDGE__ALLOWED_URL_PATTERNS", "http://127.0.0.1:*"),
        ("IFOX__LOG__FORMAT", "text"),
        ("IFOX__LOG__LEVEL", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Every stream, and the consumers of the roles running, have three replicas on three servers.
async fn replicated(js: &jetstream::Context) {
    for name in STREAMS {
        let mut stream = js.get_stream(name).await.expect("stream");
        let info = stream.info().await.expect("stream info");
        let peers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
        assert_eq!(info.config.num_replicas, 3, "{name} is R3");
        assert_eq!(peers, 2, "{name} has a leader and two followers");
    }
    for (stream, consumer) in [("EVENTS", "router"), ("AGENT_RUNS", "bridge")] {
        let stream = js.get_stream(stream).await.expect("stream");
        let mut c: jetstream::consumer::PullConsumer =
            stream.get_consumer(consumer).await.expect("consumer");
        let info = c.info().await.expect("consumer info");
        let peers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
        assert_eq!(
            peers, 2,
            "the {consumer} consumer is replicated on three servers"
        );
    }
}

async fn until(what: &str, deadline: Duration, check: impl Fn() -> bool) {
    crate::support::eventually(what, deadline, || {
        let done = check();
        async move { done.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_nats_server_and_an_ifox_mid_load_runs_every_event_exactly_once() {
    let events: u64 = knob("IFOX_CLUSTER_EVENTS", 20_000);
    let rate: f64 = knob("IFOX_CLUSTER_RATE", 200.0);
    let began = Instant::now();
    let t = move || format!("{:>6.1}s", began.elapsed().as_secs_f64());
    let logs = LogDir::new("ifox-cluster-");
    let mut cluster = NatsCluster::start(3).await;
    let js = cluster.jetstream().await;
    let db = TestDb::new(DbKind::Postgres).await;

    let agent_addr = format!("127.0.0.1:{}", free_port());
    let agent_url = format!("http://{agent_addr}");
    let echo = [
        "agent-echo",
        "--listen",
        &agent_addr,
        "--max-concurrent",
        "64",
    ];
    let mut agent = IfoxProcess::spawn("agent", &echo, &[], &logs);
    agent
        .ready(&format!("{agent_url}/healthz"), Duration::from_secs(30))
        .await;

    // The operator's step before any pod starts; the processes carry the same setting, so their own
    // apply at start-up finds the streams in sync.
    let env = settings(&db.url, &cluster.urls(), &agent_url, 0);
    run_once(&["streams", "apply"], &env).await;

    let ports = [free_port(), free_port()];
    let bases = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let serve = ["serve", "--roles", ROLES];
    let env = |i: usize| settings(&db.url, &cluster.urls(), &agent_url, ports[i]);
    let mut a = IfoxProcess::spawn("ifox-a", &serve, &env(0), &logs);
    a.ready(&format!("{}/readyz", bases[0]), Duration::from_secs(60))
        .await;
    tenancy(&bases[0], TEAMS).await;
    let mut b = IfoxProcess::spawn("ifox-b", &serve, &env(1), &logs);
    b.ready(&format!("{}/readyz", bases[1]), Duration::from_secs(60))
        .await;
    replicated(&js).await;
    println!(
        "{} cluster up: 3 nats-servers, R3 streams, ifox-a and ifox-b ready; sending {events} webhooks at {rate}/s",
        t()
    );

    let sent = Arc::new(Sent::default());
    let load = Load {
        targets: bases.to_vec(),
        events,
        teams: TEAMS,
        rate,
        concurrency: 64,
    };
    let load_began = Instant::now();
    let load = tokio::spawn(load.run(sent.clone()));
    let progress = {
        let (sent, js) = (sent.clone(), js.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let (status, connection) = sent.retries();
                let p = Pipeline::read(&js).await;
                println!(
                    "{} accepted {}/{events} (retries: {status} 5xx, {connection} refused) | {}",
                    t(),
                    sent.accepted(),
                    p.line()
                );
            }
        })
    };

    // The chaos: the EVENTS leader at 30 % of the load, ifox-b at 45 %, each back 15 s later.
    let load_deadline = Duration::from_secs_f64(events as f64 / rate * 3.0 + 120.0);
    until("30 % of the webhooks", load_deadline, || {
        sent.accepted() >= events * 3 / 10
    })
    .await;
    let mut events_stream = js.get_stream("EVENTS").await.expect("EVENTS");
    let info = events_stream.info().await.expect("EVENTS info");
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("EVENTS has a leader");
    let node = cluster
        .index_of(&leader)
        .expect("the leader is one of ours");
    cluster.kill(node);
    let nats_down = Instant::now();
    println!(
        "{} kill -9 nats-server {leader} (leader of EVENTS) at {} accepted",
        t(),
        sent.accepted()
    );
    until("45 % of the webhooks", load_deadline, || {
        sent.accepted() >= events * 45 / 100
    })
    .await;
    b.kill();
    let ifox_down = Instant::now();
    println!("{} kill -9 ifox-b at {} accepted", t(), sent.accepted());
    tokio::time::sleep_until(nats_down + Duration::from_secs(15)).await;
    cluster.restart(node).await;
    let nats_outage = nats_down.elapsed();
    println!("{} nats-server {leader} restarted", t());
    tokio::time::sleep_until(ifox_down + Duration::from_secs(15)).await;
    b.start();
    b.ready(&format!("{}/readyz", bases[1]), Duration::from_secs(120))
        .await;
    let ifox_outage = ifox_down.elapsed();
    println!("{} ifox-b restarted and ready", t());
    let load_secs = load.await.expect("every webhook accepted");
    let load_done = load_began + load_secs;

    // Drained: both consumers empty and a final run per event.
    let runs = crate::support::eventually(
        "every event's run to finish",
        Duration::from_secs(900),
        || {
            let js = js.clone();
            let base = bases[0].clone();
            async move {
                if !Pipeline::read(&js).await.drained() {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    return None;
                }
                let runs = all_runs(&base).await;
                let finished = runs.iter().all(|r| {
                    matches!(
                        r["status"].as_str(),
                        Some("completed" | "failed" | "timeout")
                    )
                });
                if runs.len() as u64 >= events && finished {
                    return Some(runs);
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                None
            }
        },
    )
    .await;
    let drained_after = load_done.elapsed();
    progress.abort();
    cluster.healthy(Duration::from_secs(120)).await;

    // One run per event, each completed, each completed once.
    let mut by_event: HashMap<&str, usize> = HashMap::new();
    for r in &runs {
        *by_event
            .entry(r["event_id"].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    let sent_ids: HashSet<String> = (0..events).map(delivery).collect();
    let missing = sent_ids
        .iter()
        .filter(|id| !by_event.contains_key(id.as_str()))
        .count();
    let twice: Vec<_> = by_event.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let stray: Vec<_> = by_event
        .keys()
        .filter(|id| !sent_ids.contains(**id))
        .take(5)
        .collect();
    assert_eq!(missing, 0, "events without a run");
    assert!(twice.is_empty(), "events with more than one run: {twice:?}");
    assert!(stray.is_empty(), "runs of events never sent: {stray:?}");
    let unfinished: Vec<_> = runs
        .iter()
        .filter(|r| r["status"] != "completed")
        .take(5)
        .map(|r| (r["run_id"].clone(), r["status"].clone(), r["error"].clone()))
        .collect();
    assert!(unfinished.is_empty(), "runs not completed: {unfinished:?}");
    let run_ids: Vec<String> = runs
        .iter()
        .filter_map(|r| r["run_id"].as_str().map(str::to_owned))
        .collect();
    let completed = completions(&bases[0], &run_ids).await;
    let not_once: Vec<_> = completed.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(
        not_once.is_empty(),
        "runs not completed exactly once: {not_once:?}"
    );

    // Every run reached the agent; a repeat carried the run's own Idempotency-Key.
    let known: HashSet<&str> = run_ids.iter().map(String::as_str).collect();
    let mut per_run: HashMap<String, (usize, usize)> = HashMap::new();
    let requests = agent_requests(&agent_url).await;
    for r in &requests {
        let key = r
            .idempotency_key
            .clone()
            .expect("every request has an Idempotency-Key");
        assert!(known.contains(key.as_str()), "{key} is not a run id");
        let entry = per_run.entry(key).or_default();
        entry.0 += 1;
        entry.1 += usize::from(r.status == 200);
    }
    assert_eq!(per_run.len(), run_ids.len(), "every run reached the agent");
    let unanswered = per_run.values().filter(|(_, ok)| *ok == 0).count();
    assert_eq!(unanswered, 0, "runs the agent never answered 200");
    let repeats: usize = per_run.values().map(|(n, _)| n - 1).sum();

    let p = Pipeline::read(&js).await;
    assert_eq!(p.deadletter, Some(0), "nothing in DEADLETTER");
    let (status, connection) = sent.retries();
    // What the processes logged about the failures, most frequent first.
    let warnings = |process: &IfoxProcess| {
        let grouped = process.warnings();
        for (what, n) in grouped.iter().take(5) {
            println!("  {}: {n} × {what}", process.name);
        }
        grouped.iter().map(|(_, n)| n).sum::<usize>()
    };
    let (warn_a, warn_b) = (warnings(&a), warnings(&b));
    println!(
        "cluster test: {events} webhooks accepted in {:.0} s ({status} retries after 5xx, {connection} after a refused connection); \
         {} runs, one per event, {} completed exactly once; agent requests {} ({repeats} repeats under the same key); \
         AGENT_RUNS {} messages, DEADLETTER 0; nats-server {leader} down {:.1} s, ifox-b down {:.1} s; \
         drained {:.0} s after the last webhook; total {:.0} s; warn/error log lines ifox-a {} ifox-b {}",
        load_secs.as_secs_f64(),
        runs.len(),
        completed.len(),
        requests.len(),
        p.agent_runs.unwrap_or(0),
        nats_outage.as_secs_f64(),
        ifox_outage.as_secs_f64(),
        drained_after.as_secs_f64(),
        began.elapsed().as_secs_f64(),
        warn_a,
        warn_b,
    );
    agent.kill();
}
