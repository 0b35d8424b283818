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

mod common;

use common::{report, rss_mib};
use ifox::domain::routing::{Identifier, IdentifierKind, RouteOutcome};
use ifox::store::Store;
use ifox::tenancy::Tenancy;
use ifox::tenancy::scope::cli_scope;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let (org, teams) = common::build_tree(&store).await;
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
