//! The roles of an `ifox` process and their names on the command line (`--roles admin,router`).

use std::str::FromStr;

/// The roles one `ifox` process can run; `serve` runs all of them unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The admin and team HTTP API.
    Admin,
    /// Provider webhooks into the EVENTS stream.
    Ingest,
    /// EVENTS → route → AGENT_RUNS (or DEADLETTER).
    Router,
    /// PROVISION → dedicated teams' Kubernetes objects → `agent_service_url`.
    Provisioner,
    /// AGENT_RUNS → the team's agent service; run lifecycle published on RUNS.
    Bridge,
    /// AGENT_RUNS and RUNS → the runs table (the run records).
    Recorder,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Ingest,
        Role::Router,
        Role::Provisioner,
        Role::Bridge,
        Role::Recorder,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Router => "router",
            Role::Provisioner => "provisioner",
            Role::Bridge => "bridge",
            Role::Recorder => "recorder",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                let known: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {s:?}; roles: {}", known.join(", "))
            })
    }
}
