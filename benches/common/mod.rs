//! Shared by the benchmarks: the 4-level tenancy fixture (10,000 teams, ~200-key effective configs,
//! 100,000 claims) written straight into a store, a throwaway nats-server, percentiles, and the CPU
//! time and memory of the processes.
#![allow(dead_code)]

use ifox::domain::routing::{Identifier, IdentifierKind};
use ifox::domain::{NodeId, NodeType, OrgId};
use ifox::store::{Store, claims, nodes};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const DIVISIONS: usize = 10;
const GROUPS_PER_DIVISION: usize = 10;
const TEAMS_PER_GROUP: usize = 100;

pub fn keys(prefix: &str, n: usize) -> Value {
    let mut m = Map::new();
    for i in 0..n {
        m.insert(
            format!("{prefix}_key_{i}"),
            json!({"value": i, "enabled": i % 2 == 0}),
        );
    }
    Value::Object(m)
}

pub fn row(
    org: &OrgId,
    id: &str,
    parent: Option<&str>,
    t: NodeType,
    config: Value,
) -> nodes::NodeRow {
    nodes::NodeRow {
        org_id: org.clone(),
        node_id: NodeId::parse(id).unwrap(),
        parent_id: parent.map(|p| NodeId::parse(p).unwrap()),
        node_type: t,
        name: id.to_owned(),
        config,
        locked_paths: vec![],
        version: 1,
        created_at: 0,
        updated_at: 0,
    }
}

pub fn team_claims(i: usize) -> BTreeSet<Identifier> {
    (0..5)
        .flat_map(|j| {
            [
                Identifier::new(IdentifierKind::SlackChannelIds, &format!("C{i:06}X{j}")),
                Identifier::new(
                    IdentifierKind::GithubRepos,
                    &format!("acme/service-{i}-{j}"),
                ),
            ]
        })
        .collect()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn report(name: &str, unit: &str, mut samples: Vec<f64>, goal: &str) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<44} median {:>9.3} {unit}   p99 {:>9.3} {unit}   (goal {goal}; {} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len()
    );
}

pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of this process (VmHWM), MiB.
pub fn peak_rss_mib() -> f64 {
    peak_rss_mib_of("self")
}

/// Peak resident memory (VmHWM) of process `pid` (or `self`), MiB; 0 when it is gone.
pub fn peak_rss_mib_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Writes org `acme` → 10 divisions → 100 groups → 10,000 teams (10 claims each) in one transaction.
pub async fn build_tree(store: &Store) -> (OrgId, Vec<NodeId>) {
    let org = OrgId::parse("acme").unwrap();
    let mut tx = store.begin().await.unwrap();
    nodes::insert(
        &mut tx,
        &row(&org, "acme", None, NodeType::Org, keys("org", 150)),
    )
    .await
    .unwrap();
    let mut teams = Vec::new();
    for d in 0..DIVISIONS {
        let div = format!("div-{d}");
        nodes::insert(
            &mut tx,
            &row(&org, &div, Some("acme"), NodeType::Unit, keys("div", 30)),
        )
        .await
        .unwrap();
        for g in 0..GROUPS_PER_DIVISION {
            let group = format!("grp-{d}-{g}");
            nodes::insert(
                &mut tx,
                &row(&org, &group, Some(&div), NodeType::Unit, keys("grp", 15)),
            )
            .await
            .unwrap();
            for _ in 0..TEAMS_PER_GROUP {
                let i = teams.len();
                let team = format!("team-{i}");
                let mut config = keys("team", 5);
                config["routing"] = json!({
                    "slack_channel_ids": team_claims(i).iter().filter(|c| c.kind == IdentifierKind::SlackChannelIds).map(|c| c.value.clone()).collect::<Vec<_>>(),
                    "github_repos": team_claims(i).iter().filter(|c| c.kind == IdentifierKind::GithubRepos).map(|c| c.value.clone()).collect::<Vec<_>>(),
                });
                nodes::insert(
                    &mut tx,
                    &row(&org, &team, Some(&group), NodeType::Team, config),
                )
                .await
                .unwrap();
                claims::replace_team(
                    &mut tx,
                    &org,
                    &NodeId::parse(&team).unwrap(),
                    &team_claims(i),
                )
                .await
                .unwrap();
                teams.push(NodeId::parse(team).unwrap());
            }
        }
    }
    tx.commit().await.unwrap();
    (org, teams)
}

/// A nats-server with JetStream on free ports and its own store; killed on drop.
pub struct Nats {
    pub url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// CPU seconds (user + system) the nats-server has used so far, its wrapper processes included.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of_tree(self.child.id())
    }
}

/// CPU seconds (user + system) used so far by this process, all threads; not its children (the
/// nats-server it started is measured on its own).
pub fn own_cpu_seconds() -> f64 {
    proc_stat(&std::process::id().to_string()).map_or(0.0, |(_, _, ticks)| ticks as f64 / 100.0)
}

/// The machine's idle and total CPU time so far, in clock ticks (first line of `/proc/stat`); the
/// idle share of an interval shows whether a run was bound by CPU or by waiting.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: idle is field 4.
    (f.get(3).copied().unwrap_or(0), f.iter().take(8).sum())
}

/// `(pid, parent, utime + stime in clock ticks)` from `/proc/<pid>/stat`.
fn proc_stat(pid: &str) -> Option<(u32, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((pid.parse().ok()?, f.get(1)?.parse().ok()?, utime + stime))
}

/// CPU seconds (user + system) of `root` and every process below it (clock ticks of 10 ms).
pub fn cpu_seconds_of_tree(root: u32) -> f64 {
    let all: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| proc_stat(e.ok()?.file_name().to_str()?))
                .collect()
        })
        .unwrap_or_default();
    let mut tree = vec![root];
    let mut ticks = 0;
    let mut i = 0;
    while i < tree.len() {
        for &(pid, parent, t) in &all {
            if pid == tree[i] {
                ticks += t;
            }
            if parent == tree[i] && !tree.contains(&pid) {
                tree.push(pid);
            }
        }
        i += 1;
    }
    ticks as f64 / 100.0
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_nats() -> Nats {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, monitor) = (free(), free());
    let dir = tempfile::tempdir().unwrap();
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    let child = std::process::Command::new(bin)
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &monitor.to_string(),
            "-sd",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server on PATH (just setup)");
    let health = format!("http://127.0.0.1:{monitor}/healthz?js-enabled-only=true");
    for _ in 0..250 {
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Nats {
        url: format!("nats://127.0.0.1:{port}"),
        child,
        _dir: dir,
    }
}

/// The event ingest would publish for GitHub `issues` delivery `id` of repo `repo` (subject and
/// CloudEvents headers), as a direct publisher following the contract sends it.
pub fn github_issue_envelope(id: String, repo: &str) -> ifox::ingest::event::Envelope {
    let signal = ifox::ingest::event::Signal {
        event_type: "issues".into(),
        id,
        content_type: "application/json",
        forward: vec![("x-github-event", "issues".into())],
        routes: vec![Identifier::new(IdentifierKind::GithubRepos, repo)],
    };
    let now = std::time::SystemTime::now();
    ifox::ingest::event::envelope("github", None, &signal, (None, None), now)
}
