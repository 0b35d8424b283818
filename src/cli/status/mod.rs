//! `ifox status [--json]`: the health of a running installation, read from NATS (streams and their
//! replicas, consumers, dead letters by stage and reason) and the database (provisioning runs not
//! succeeded, dedicated teams and their availability). Gathering is in [`collect`]; what counts as
//! a problem and the text rendering are pure functions here.

mod collect;
#[cfg(test)]
mod tests;

use serde::Serialize;
use std::fmt::Write;

pub use collect::gather;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// No problem found.
    pub healthy: bool,
    /// What needs an operator, one line each.
    pub problems: Vec<String>,
    pub streams: Vec<StreamStatus>,
    pub consumers: Vec<ConsumerStatus>,
    pub dead_letters: Vec<DeadLetterCount>,
    pub provision_runs_not_succeeded: Vec<ProvisionRun>,
    pub dedicated_teams: Vec<DedicatedTeam>,
    /// Sources that could not be read (NATS or the database down), with why.
    pub unavailable: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamStatus {
    pub name: String,
    /// `false`: the stream file exists but the server has no such stream.
    pub present: bool,
    pub messages: u64,
    pub bytes: u64,
    pub last_seq: u64,
    /// Configured replicas.
    pub replicas: usize,
    /// The RAFT leader (clustered JetStream), if any.
    pub leader: Option<String>,
    /// The other replicas as the leader sees them.
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Peer {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Operations behind the leader.
    pub lag: u64,
    /// Milliseconds since the leader last heard from it.
    pub active_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumerStatus {
    pub stream: String,
    pub name: String,
    /// Messages not yet delivered (queue depth).
    pub pending: u64,
    pub ack_pending: u64,
    pub redelivered: u64,
    pub ack_floor_seq: u64,
    /// Stream messages past the ack floor (`last_seq - ack_floor_seq`): how far acknowledgements
    /// trail the stream's head (for a filtered consumer this includes other subjects).
    pub ack_floor_lag: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadLetterCount {
    pub stage: String,
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProvisionRun {
    pub run_id: String,
    pub org: String,
    pub team: String,
    pub kind: String,
    pub status: String,
    pub error: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DedicatedTeam {
    pub org: String,
    pub team: String,
    pub replicas: i64,
    /// Status of the team's current provisioning run.
    pub run_status: String,
    /// The team's `agent_service_url` was set (the runtime answered available once).
    pub url_set: bool,
    /// Run succeeded and URL set: deliveries go to the dedicated runtime.
    pub available: bool,
}

/// `ifox.deadletter.<stage>.<reason>` → `(stage, reason)`.
pub fn dead_letter_key(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("ifox.deadletter.")?;
    let (stage, reason) = rest.split_once('.')?;
    (!stage.is_empty() && !reason.is_empty() && !reason.contains('.')).then_some((stage, reason))
}

/// The problems of a gathered status (pure), and `healthy` set from them.
pub fn assess(mut s: Status) -> Status {
    let mut problems: Vec<String> = s
        .unavailable
        .iter()
        .map(|u| format!("unavailable: {u}"))
        .collect();
    for st in &s.streams {
        if !st.present {
            problems.push(format!(
                "stream {} is missing (ifox streams apply)",
                st.name
            ));
            continue;
        }
        if st.replicas > 1 {
            match &st.leader {
                None => problems.push(format!("stream {}: no leader", st.name)),
                Some(_) => {
                    let members = 1 + st.peers.len();
                    if members < st.replicas {
                        problems.push(format!(
                            "stream {}: {members} of {} replicas",
                            st.name, st.replicas
                        ));
                    }
                }
            }
            for p in &st.peers {
                if p.offline {
                    problems.push(format!("stream {}: replica {} offline", st.name, p.name));
                } else if !p.current {
                    problems.push(format!(
                        "stream {}: replica {} lagging by {} operations",
                        st.name, p.name, p.lag
                    ));
                }
            }
        }
    }
    for r in &s.provision_runs_not_succeeded {
        if r.status == "failed" {
            problems.push(format!(
                "provisioning of {}/{} failed (run {})",
                r.org, r.team, r.run_id
            ));
        }
    }
    for t in &s.dedicated_teams {
        if !t.available && t.run_status == "succeeded" {
            problems.push(format!(
                "dedicated team {}/{} has no runtime URL",
                t.org, t.team
            ));
        }
    }
    s.healthy = problems.is_empty();
    s.problems = problems;
    s
}

/// The human form of a status.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "health: {}", if s.healthy { "ok" } else { "PROBLEMS" });
    for p in &s.problems {
        let _ = writeln!(out, "  ! {p}");
    }
    let _ = writeln!(out, "\nstreams:");
    for st in &s.streams {
        if !st.present {
            let _ = writeln!(out, "  {:<12} missing", st.name);
            continue;
        }
        let peers: Vec<String> = st
            .peers
            .iter()
            .map(|p| match (p.offline, p.current) {
                (true, _) => format!("{} offline", p.name),
                (false, true) => format!("{} current", p.name),
                (false, false) => format!("{} lag {}", p.name, p.lag),
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:<12} {:>9} msgs {:>12} bytes  R{}  leader {}{}",
            st.name,
            st.messages,
            st.bytes,
            st.replicas,
            st.leader.as_deref().unwrap_or("-"),
            if peers.is_empty() {
                String::new()
            } else {
                format!("  peers: {}", peers.join(", "))
            }
        );
    }
    let _ = writeln!(out, "\nconsumers:");
    for c in &s.consumers {
        let _ = writeln!(
            out,
            "  {}/{:<12} pending {:>7}  ack pending {:>5}  redelivered {:>5}  ack floor lag {:>7}",
            c.stream, c.name, c.pending, c.ack_pending, c.redelivered, c.ack_floor_lag
        );
    }
    let total: u64 = s.dead_letters.iter().map(|d| d.count).sum();
    let _ = writeln!(out, "\ndead letters: {total}");
    for d in &s.dead_letters {
        let _ = writeln!(out, "  {:<12} {:<32} {}", d.stage, d.reason, d.count);
    }
    let _ = writeln!(
        out,
        "\nprovisioning runs not succeeded: {}",
        s.provision_runs_not_succeeded.len()
    );
    for r in &s.provision_runs_not_succeeded {
        let _ = writeln!(
            out,
            "  {}/{}  {}  {}  {}{}",
            r.org,
            r.team,
            r.kind,
            r.status,
            r.run_id,
            r.error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        );
    }
    let available = s.dedicated_teams.iter().filter(|t| t.available).count();
    let _ = writeln!(
        out,
        "\ndedicated teams: {} ({available} available)",
        s.dedicated_teams.len()
    );
    for t in s.dedicated_teams.iter().filter(|t| !t.available) {
        let _ = writeln!(
            out,
            "  {}/{}  not available (run {}, url set: {})",
            t.org, t.team, t.run_status, t.url_set
        );
    }
    out
}
