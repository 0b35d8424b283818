//! Bounded per-team metric labels: a team gets its own `org`/`team` label values when it is on the
//! allow-list (`telemetry.team_labels`) or among the first `telemetry.max_team_labels` other teams
//! this process has seen; every other team is counted under `org="other", team="other"`. So 10,000
//! teams add at most `allow + max` series per metric and label set, never 10,000.

use crate::settings::TelemetrySettings;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// The label value shared by teams beyond the bound.
pub const OTHER: &str = "other";

/// Teams by org, so a lookup borrows the ids (no allocation on the router's hot path).
type Teams = HashMap<String, HashSet<String>>;

fn contains(teams: &Teams, org: &str, team: &str) -> bool {
    teams.get(org).is_some_and(|t| t.contains(team))
}

#[derive(Debug)]
pub struct TeamLabels {
    allowed: Teams,
    max: usize,
    admitted: Mutex<(Teams, usize)>,
}

impl TeamLabels {
    /// `allowed`: `org/team` entries (validated by the settings; others are ignored).
    pub fn new(allowed: impl IntoIterator<Item = String>, max: usize) -> TeamLabels {
        let mut teams = Teams::new();
        for entry in allowed {
            if let Some((org, team)) = entry.split_once('/') {
                teams
                    .entry(org.to_owned())
                    .or_default()
                    .insert(team.to_owned());
            }
        }
        TeamLabels {
            allowed: teams,
            max,
            admitted: Mutex::new((Teams::new(), 0)),
        }
    }

    pub fn from_settings(s: &TelemetrySettings) -> TeamLabels {
        Self::new(s.team_labels.iter().cloned(), s.max_team_labels)
    }

    /// The `(org, team)` label values for this team.
    pub fn labels(&self, org: &str, team: &str) -> (String, String) {
        if self.admits(org, team) {
            (org.to_owned(), team.to_owned())
        } else {
            (OTHER.to_owned(), OTHER.to_owned())
        }
    }

    fn admits(&self, org: &str, team: &str) -> bool {
        if contains(&self.allowed, org, team) {
            return true;
        }
        // A poisoned lock only means another thread panicked mid-insert; the set is still valid.
        let mut guard = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let (admitted, count) = &mut *guard;
        if contains(admitted, org, team) {
            return true;
        }
        if *count < self.max {
            admitted
                .entry(org.to_owned())
                .or_default()
                .insert(team.to_owned());
            *count += 1;
            return true;
        }
        false
    }
}

static GLOBAL: OnceLock<TeamLabels> = OnceLock::new();

/// Sets the process's bound from the settings (first call wins; later calls, e.g. several apps
/// in one test process, keep the first).
pub fn install(s: &TelemetrySettings) {
    let _ = GLOBAL.set(TeamLabels::from_settings(s));
}

/// The `(org, team)` label values of a per-team metric, bounded as the settings say (the defaults
/// when [`install`] was not called).
pub fn team_labels(org: &str, team: &str) -> (String, String) {
    GLOBAL
        .get_or_init(|| TeamLabels::from_settings(&TelemetrySettings::default()))
        .labels(org, team)
}

/// Whether this team has its own label values (else it is counted under [`OTHER`]): the router's
/// per-chunk counting borrows the ids instead of copying them per event.
pub fn team_labelled(org: &str, team: &str) -> bool {
    GLOBAL
        .get_or_init(|| TeamLabels::from_settings(&TelemetrySettings::default()))
        .admits(org, team)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_listed_teams_always_get_labels_and_others_share_one_bucket_past_the_bound() {
        let t = TeamLabels::new(["acme/sre".to_owned()], 2);
        assert_eq!(t.labels("a", "1"), ("a".into(), "1".into()));
        assert_eq!(t.labels("a", "2"), ("a".into(), "2".into()));
        // The bound is reached: the third team seen is `other`, the first two keep their labels.
        assert_eq!(t.labels("a", "3"), (OTHER.into(), OTHER.into()));
        assert_eq!(t.labels("a", "1"), ("a".into(), "1".into()));
        // The allow-list is outside the bound.
        assert_eq!(t.labels("acme", "sre"), ("acme".into(), "sre".into()));
    }

    #[test]
    fn ten_thousand_teams_yield_at_most_the_bound_plus_other() {
        let t = TeamLabels::new([], 50);
        let distinct: HashSet<(String, String)> = (0..10_000)
            .map(|i| t.labels(&format!("org{}", i % 100), &format!("team{i}")))
            .collect();
        assert_eq!(distinct.len(), 51);
        assert!(distinct.contains(&(OTHER.into(), OTHER.into())));
    }

    #[test]
    fn zero_bound_and_no_allow_list_puts_every_team_in_other() {
        let t = TeamLabels::new([], 0);
        assert_eq!(t.labels("a", "b"), (OTHER.into(), OTHER.into()));
    }
}
