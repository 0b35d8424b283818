//! The monthly cost estimate per team (pure): a dedicated team pays for what it asked for (its
//! replicas × its cpu and memory limits × the prices × hours a month); a shared team pays its share
//! of the shared runtime, in proportion to its share of the shared runs of the last 30 days across
//! all orgs. Defaults from the design: $0.031 per vCPU-hour, $0.0035 per GiB-hour, 730 h a month, a
//! shared runtime of $220 a month (≈ $22 per team-month for 10 teams); the design's dedicated example
//! (2 × 4 vCPU / 8 GiB) comes to ≈ $222.

use super::request::{self, DedicatedSpec};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub vcpu_hour_usd: f64,
    pub gib_hour_usd: f64,
    pub hours_per_month: f64,
    pub shared_monthly_usd: f64,
}

impl From<&crate::settings::provision::ProvisionSettings> for Prices {
    fn from(s: &crate::settings::provision::ProvisionSettings) -> Self {
        Prices {
            vcpu_hour_usd: s.vcpu_hour_usd,
            gib_hour_usd: s.gib_hour_usd,
            hours_per_month: s.hours_per_month,
            shared_monthly_usd: s.shared_monthly_usd,
        }
    }
}

/// What the estimate of one team needs.
#[derive(Debug, Clone)]
pub struct TeamInput<'a> {
    pub team: String,
    pub spec: Option<&'a DedicatedSpec>,
    pub shared_runs: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamCost {
    pub team_id: String,
    pub deployment_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    pub shared_runs_30d: i64,
    pub dedicated_monthly_usd: f64,
    pub shared_monthly_usd: f64,
    pub total_monthly_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub currency: &'static str,
    pub vcpu_hour_usd: f64,
    pub gib_hour_usd: f64,
    pub hours_per_month: f64,
    pub shared_runtime_monthly_usd: f64,
    pub shared_runs_30d_all_orgs: i64,
    pub teams: Vec<TeamCost>,
    pub total_monthly_usd: f64,
}

/// Rounded to cents; `+ 0.0` turns the `-0.0` of an empty sum into `0.0`.
fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0 + 0.0
}

/// Dollars a month for one dedicated team. Autoscaled teams are priced at their minimum.
pub fn dedicated_monthly(spec: &DedicatedSpec, p: &Prices) -> f64 {
    let cores = request::cpu(&spec.cpu_limit, "cpu").map_or(0.0, |c| c.0 as f64 / 1000.0);
    let gib = request::memory(&spec.memory_limit, "memory")
        .map_or(0.0, |m| m.0 as f64 / (1u64 << 30) as f64);
    let replicas = spec.autoscaling.map_or(spec.replicas, |a| a.min) as f64;
    replicas * (cores * p.vcpu_hour_usd + gib * p.gib_hour_usd) * p.hours_per_month
}

/// The report for one org's teams; `all_shared_runs` counts every org's shared runs.
pub fn report(prices: &Prices, teams: &[TeamInput<'_>], all_shared_runs: i64) -> CostReport {
    let rows: Vec<TeamCost> = teams
        .iter()
        .map(|t| {
            let dedicated = t.spec.map_or(0.0, |s| dedicated_monthly(s, prices));
            let shared = if all_shared_runs > 0 {
                prices.shared_monthly_usd * t.shared_runs as f64 / all_shared_runs as f64
            } else {
                0.0
            };
            TeamCost {
                team_id: t.team.clone(),
                deployment_mode: if t.spec.is_some() {
                    "dedicated"
                } else {
                    "shared"
                },
                replicas: t.spec.map(|s| s.replicas),
                cpu: t.spec.map(|s| s.cpu_limit.clone()),
                memory: t.spec.map(|s| s.memory_limit.clone()),
                shared_runs_30d: t.shared_runs,
                dedicated_monthly_usd: cents(dedicated),
                shared_monthly_usd: cents(shared),
                total_monthly_usd: cents(dedicated + shared),
            }
        })
        .collect();
    CostReport {
        currency: "USD",
        vcpu_hour_usd: prices.vcpu_hour_usd,
        gib_hour_usd: prices.gib_hour_usd,
        hours_per_month: prices.hours_per_month,
        shared_runtime_monthly_usd: prices.shared_monthly_usd,
        shared_runs_30d_all_orgs: all_shared_runs,
        total_monthly_usd: cents(rows.iter().map(|r| r.total_monthly_usd).sum()),
        teams: rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> Prices {
        Prices {
            vcpu_hour_usd: 0.031,
            gib_hour_usd: 0.0035,
            hours_per_month: 730.0,
            shared_monthly_usd: 220.0,
        }
    }

    fn spec(replicas: i32, cpu: &str, memory: &str) -> DedicatedSpec {
        let body = serde_json::json!({"org_id": "acme", "team_node_id": "t", "deployment_mode": "dedicated",
            "dedicated_config": {"replicas": replicas, "autoscaling": false, "resources": {"cpu": cpu, "memory": memory}}});
        request::parse(body).unwrap().spec.unwrap()
    }

    #[test]
    fn the_designs_dedicated_example_costs_about_222_dollars_a_month() {
        let s = spec(2, "4", "8Gi");
        let cost = dedicated_monthly(&s, &prices());
        assert!((cost - 221.92).abs() < 0.01, "{cost}");
    }

    #[test]
    fn ten_shared_teams_with_equal_runs_pay_22_dollars_each() {
        let teams: Vec<_> = (0..10)
            .map(|i| TeamInput {
                team: format!("t{i}"),
                spec: None,
                shared_runs: 5,
            })
            .collect();
        let r = report(&prices(), &teams, 50);
        assert!(r.teams.iter().all(|t| t.total_monthly_usd == 22.0), "{r:?}");
        assert_eq!(r.total_monthly_usd, 220.0);
    }

    #[test]
    fn the_shared_cost_follows_each_teams_share_of_runs_and_no_runs_cost_nothing() {
        let s = spec(1, "500m", "1Gi");
        let teams = vec![
            TeamInput {
                team: "busy".into(),
                spec: None,
                shared_runs: 30,
            },
            TeamInput {
                team: "quiet".into(),
                spec: None,
                shared_runs: 0,
            },
            TeamInput {
                team: "own".into(),
                spec: Some(&s),
                shared_runs: 0,
            },
        ];
        let r = report(&prices(), &teams, 100);
        assert_eq!(r.teams[0].shared_monthly_usd, 66.0);
        assert_eq!(r.teams[1].total_monthly_usd, 0.0);
        assert_eq!(r.teams[2].deployment_mode, "dedicated");
        assert_eq!(r.teams[2].dedicated_monthly_usd, 13.87);
        assert_eq!(
            report(&prices(), &teams, 0).teams[0].shared_monthly_usd,
            0.0
        );
    }
}
