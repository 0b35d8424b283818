//! `ifox_team_replicas_desired` and `ifox_team_replicas_ready`: the dedicated runtime of each team
//! (bounded labels, see `telemetry::teams`), read from the managed Deployments the resync lists.
//! Teams folded into `other` are summed, so the gauges still add up to the cluster's totals.

use super::build::{ORG_LABEL, TEAM_LABEL};
use super::objects::label;
use serde_json::Value;
use std::collections::BTreeMap;

pub const DESIRED: &str = "ifox_team_replicas_desired";
pub const READY: &str = "ifox_team_replicas_ready";

/// `(org, team) → (desired, ready)` of the given Deployments, labels already bounded by `labels`.
pub fn tally<'a>(
    deployments: impl IntoIterator<Item = &'a Value>,
    labels: impl Fn(&str, &str) -> (String, String),
) -> BTreeMap<(String, String), (f64, f64)> {
    let mut out: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for d in deployments {
        let (Some(org), Some(team)) = (label(d, ORG_LABEL), label(d, TEAM_LABEL)) else {
            continue;
        };
        let num = |p: &str| d.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
        // Kubernetes defaults `spec.replicas` to 1 when unset.
        let desired = d
            .pointer("/spec/replicas")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        let entry = out.entry(labels(org, team)).or_default();
        entry.0 += desired;
        entry.1 += num("/status/readyReplicas");
    }
    out
}

/// Sets the gauges from the managed Deployments.
pub fn record<'a>(deployments: impl IntoIterator<Item = &'a Value>) {
    for ((org, team), (desired, ready)) in tally(deployments, crate::telemetry::team_labels) {
        metrics::gauge!(DESIRED, "org" => org.clone(), "team" => team.clone()).set(desired);
        metrics::gauge!(READY, "org" => org, "team" => team).set(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(org: &str, team: &str, replicas: Option<i64>, ready: Option<i64>) -> Value {
        let mut d = json!({"metadata": {"labels": {ORG_LABEL: org, TEAM_LABEL: team}}, "spec": {}, "status": {}});
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        if let Some(r) = ready {
            d["status"]["readyReplicas"] = json!(r);
        }
        d
    }

    #[test]
    fn desired_and_ready_per_team_with_folded_teams_summed() {
        let ds = [
            deployment("acme", "sre", Some(3), Some(2)),
            deployment("acme", "db", None, None),
            deployment("beta", "x", Some(2), Some(2)),
            json!({"metadata": {"labels": {}}}),
        ];
        let bound = |o: &str, t: &str| {
            if o == "acme" {
                (o.to_owned(), t.to_owned())
            } else {
                ("other".to_owned(), "other".to_owned())
            }
        };
        let t = tally(&ds, bound);
        assert_eq!(t[&("acme".into(), "sre".into())], (3.0, 2.0));
        assert_eq!(t[&("acme".into(), "db".into())], (1.0, 0.0));
        assert_eq!(t[&("other".into(), "other".into())], (2.0, 2.0));
        assert_eq!(t.len(), 3, "an object without team labels is not counted");
    }
}
