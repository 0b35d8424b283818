//! `just bench-tenancy`: the tenancy figures of issue 2 on SQLite.
//!
//! Builds 10,000 teams under a 4-level tree (org → 10 divisions → 100 groups → 10,000 teams) whose
//! effective configs have ~200 keys (150 set at the org, 30 per division, 15 per group, 5 per team) and
//! 100,000 routing claims (10 per team), then measures:
//! - route lookup (in-memory index): median and p99 per lookup;
//! - effective config from the catalog's cache;
//! - effective config computed from the database (recursive query + merge), no cache.
//!
//! Sub-microsecond operations are timed in batches of 1,000 (one `Instant` pair per batch), so the clock
//! does not dominate; the database path is timed per call.

use ifox::domain::routing::{Identifier, IdentifierKind, RouteOutcome};
use ifox::domain::{NodeId, NodeType, OrgId};
use ifox::store::{Store, claims, nodes};
use ifox::tenancy::Tenancy;
use ifox::tenancy::scope::cli_scope;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::Instant;

const DIVISIONS: usize = 10;
const GROUPS_PER_DIVISION: usize = 10;
const TEAMS_PER_GROUP: usize = 100;

fn keys(prefix: &str, n: usize) -> Value {
    let mut m = Map::new();
    for i in 0..n {
        m.insert(
            format!("{prefix}_key_{i}"),
            json!({"value": i, "enabled": i % 2 == 0}),
        );
    }
    Value::Object(m)
}

fn row(org: &OrgId, id: &str, parent: Option<&str>, t: NodeType, config: Value) -> nodes::NodeRow {
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

fn team_claims(i: usize) -> BTreeSet<Identifier> {
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, unit: &str, mut samples: Vec<f64>, goal: &str) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<44} median {:>9.3} {unit}   p99 {:>9.3} {unit}   (goal {goal}; {} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len()
    );
}

fn rss_mib() -> f64 {
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

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let org = OrgId::parse("acme").unwrap();
    let started = Instant::now();
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
    println!(
        "setup: {} teams, 4 levels, written in {:.1?}",
        teams.len(),
        started.elapsed()
    );

    let loading = Instant::now();
    let tenancy = Tenancy::open(store.clone(), None).await.unwrap();
    println!(
        "catalog load: {:.1?}, {} claims indexed, RSS {:.0} MiB",
        loading.elapsed(),
        tenancy.catalog().claim_count(),
        rss_mib()
    );
    let scope = cli_scope(&org);
    let sample = tenancy.effective(&scope, &teams[0], false).unwrap().0;
    println!(
        "effective config of a team: {} top-level keys",
        sample.config.as_object().unwrap().len()
    );

    // Pseudo-random, fixed sequence (no rand dependency in the bench): an LCG over team indexes.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };

    let queries: Vec<Vec<Identifier>> = (0..100_000)
        .map(|_| {
            let i = next(teams.len());
            vec![Identifier::new(
                IdentifierKind::GithubRepos,
                &format!("ACME/Service-{i}-{}", next(5)),
            )]
        })
        .collect();
    let catalog = tenancy.catalog().clone();
    let mut found = 0usize;
    let mut samples = Vec::new();
    for batch in queries.chunks(1_000).cycle().take(500) {
        let t0 = Instant::now();
        for q in batch {
            if matches!(
                std::hint::black_box(catalog.route(q, &[])),
                RouteOutcome::Found { .. }
            ) {
                found += 1;
            }
        }
        samples.push(t0.elapsed().as_secs_f64() * 1e6 / batch.len() as f64);
    }
    assert_eq!(found, 500_000, "every query resolves");
    report(
        "route lookup (in-memory index)",
        "µs",
        samples,
        "median < 2 µs",
    );

    let picks: Vec<usize> = (0..1_000).map(|_| next(teams.len())).collect();
    for &i in &picks {
        catalog.effective(&org, &teams[i]).unwrap();
    }
    println!(
        "effective memo warm for {} teams, RSS {:.0} MiB",
        picks.len(),
        rss_mib()
    );
    let mut samples = Vec::new();
    for _ in 0..500 {
        let t0 = Instant::now();
        for &i in &picks {
            std::hint::black_box(catalog.effective(&org, &teams[i]).unwrap());
        }
        samples.push(t0.elapsed().as_secs_f64() * 1e6 / picks.len() as f64);
    }
    report(
        "effective config from cache",
        "µs",
        samples,
        "median < 5 µs",
    );

    let mut samples = Vec::new();
    for _ in 0..2_000 {
        let team = &teams[next(teams.len())];
        let t0 = Instant::now();
        let eff = tenancy.effective_from_db(&scope, team).await.unwrap();
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
        assert!(eff.config.as_object().unwrap().len() >= 200);
    }
    report(
        "effective config computed from SQLite",
        "ms",
        samples,
        "median < 2 ms",
    );
}
