//! Crate-wide test (beside `layering_tests`): the README's metrics table is the catalog: every metric the code registers is in it (and nothing
//! else is), types follow the name suffixes, and the Grafana dashboard queries only metrics in it.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `ifox_…` names in `text` (letters, digits, underscores after the prefix).
fn names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("ifox_") {
        let boundary = at == 0 || {
            let c = rest.as_bytes()[at - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if boundary {
            out.push(tail[..len].to_owned());
        }
        rest = &tail[len..];
    }
    out
}

/// Metric names in the code: `"ifox_…"` string literals in files that use the `metrics` macros
/// (names are literals at the call site or in a `const`), less the unit tests' own.
fn code_metrics() -> BTreeSet<String> {
    let mut files = Vec::new();
    crate::layering_tests::rust_files(&root().join("src"), &mut files);
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read source");
        if !text.contains("metrics::") || f.ends_with("metrics_catalog_tests.rs") {
            continue;
        }
        for quoted in text.split('"').skip(1).step_by(2) {
            if quoted.starts_with("ifox_")
                && !quoted.starts_with("ifox_test_")
                && names_in(quoted) == [quoted.to_owned()]
            {
                out.insert(quoted.to_owned());
            }
        }
    }
    out
}

/// `(name, type)` of each row of the README's `### Metrics` table.
fn readme_table() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let section = readme
        .split("\n### Metrics\n")
        .nth(1)
        .expect("README has a ### Metrics section");
    let section = section.split("\n#").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn every_metric_in_the_code_is_in_the_readme_table_and_only_those() {
    let code = code_metrics();
    assert!(
        code.len() >= 30,
        "the scan finds the code's metrics: {code:?}"
    );
    let table: BTreeSet<String> = readme_table().into_iter().map(|(n, _)| n).collect();
    let missing: Vec<_> = code.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "metrics missing from the README table: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&code).collect();
    assert!(
        stale.is_empty(),
        "README rows without a metric in the code: {stale:?}"
    );
}

#[test]
fn readme_types_follow_the_name_suffixes() {
    for (name, kind) in readme_table() {
        assert!(
            ["counter", "gauge", "histogram"].contains(&kind.as_str()),
            "{name}: type {kind:?}"
        );
        if name.ends_with("_total") {
            assert_eq!(kind, "counter", "{name}");
        } else if name.ends_with("_seconds") {
            assert_eq!(kind, "histogram", "{name}");
        } else {
            assert_eq!(kind, "gauge", "{name}");
        }
    }
}

#[test]
fn the_dashboard_queries_only_metrics_of_the_readme_table() {
    let text = std::fs::read_to_string(root().join("deploy/grafana/ifox.json")).expect("dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(
        exprs.len() >= 10,
        "the dashboard has its queries: {}",
        exprs.len()
    );
    let table: BTreeSet<String> = readme_table().into_iter().map(|(n, _)| n).collect();
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = names_in(expr);
        assert!(!names.is_empty(), "query without an ifox metric: {expr}");
        for n in names {
            // A histogram's series are `<name>_bucket`, `_sum` and `_count`.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s).filter(|b| table.contains(*b)))
                .unwrap_or(&n)
                .to_owned();
            assert!(
                table.contains(&base),
                "dashboard uses {n}, not in the README table ({expr})"
            );
            used.insert(base);
        }
    }
    // The operator questions each have a panel.
    for needed in [
        "ifox_consumer_pending",
        "ifox_router_events_total",
        "ifox_bridge_deliveries_total",
        "ifox_bridge_delivery_seconds",
        "ifox_team_replicas_desired",
        "ifox_team_replicas_ready",
        "ifox_dead_letters_total",
        "ifox_build_info",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard has no panel on {needed}"
        );
    }
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn names_are_found_whole() {
    assert_eq!(
        names_in("sum(rate(ifox_a_total[5m])) / x_ifox_b + ifox_c_bucket{le=\"1\"}"),
        ["ifox_a_total", "ifox_c_bucket"]
    );
}
