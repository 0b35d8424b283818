//! The `bridge` section (`IFOX__BRIDGE__…`): where agent runs are delivered and how. Every key has a
//! default, so a process that does not run the bridge needs none of them.

use super::Secret;
use super::humantime_serde_compat as duration;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The agent protocols a team's agent service may speak (effective config key `agent_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The original's `POST /investigate`, answered with server-sent events.
    Investigate,
    /// `POST /v1/runs` answered 202; the agent reports the outcome to ifox.
    Ifox,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Investigate => "investigate",
            Protocol::Ifox => "ifox",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim() {
            "investigate" => Some(Protocol::Investigate),
            "ifox" => Some(Protocol::Ifox),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// `IFOX__BRIDGE__SHARED_URL`: the shared agent service.
    pub shared_url: String,
    /// `IFOX__BRIDGE__DEFAULT_PROTOCOL`: `investigate` or `ifox`, when a team's config names none.
    pub default_protocol: Protocol,
    /// `IFOX__BRIDGE__ALLOWED_URL_PATTERNS`: the only agent URLs the bridge calls (comma-separated;
    /// `*` matches within one DNS label, or any port). Empty: the shared URL and the dedicated
    /// services of `kube.namespace` (and, with `provision.namespace_per_team`, of the team
    /// namespaces `{kube.namespace}-*`).
    #[serde(deserialize_with = "list")]
    pub allowed_url_patterns: Vec<String>,
    /// `IFOX__BRIDGE__MAX_CONCURRENT_AGENTS`: deliveries in flight per team, when its config says
    /// nothing (effective config key `max_concurrent_agents`).
    pub max_concurrent_agents: usize,
    /// `IFOX__BRIDGE__CONCURRENCY`: deliveries in flight in this process, across teams.
    pub concurrency: usize,
    /// `IFOX__BRIDGE__MAX_WAITING`: runs held un-acked while they wait for a slot (the consumer's
    /// pull stops above it; JetStream keeps the rest).
    pub max_waiting: usize,
    /// `IFOX__BRIDGE__MAX_ATTEMPTS`: deliveries of one run before it fails (connection errors,
    /// 429 and 5xx are retried with a growing delay that honours `Retry-After`).
    pub max_attempts: u64,
    /// `IFOX__BRIDGE__PUBLIC_URL`: where agents reach ifox's API (status reports, effective config).
    /// Empty: this process's own listener (`http.listen`; fine on one machine, set it on Kubernetes,
    /// e.g. `http://ifox.incidentfox.svc.cluster.local:8080`).
    pub public_url: String,
    /// `IFOX__BRIDGE__SERVICE_TOKEN`: sent as `Authorization: Bearer` to agents that require one.
    pub service_token: Option<Secret>,
    /// `IFOX__BRIDGE__RUN_TOKEN_KEY`: signs run tokens; every replica needs the same. Empty: derived
    /// from `admin.token`.
    pub run_token_key: Secret,
    /// `IFOX__BRIDGE__CONNECT_TIMEOUT`: bound on connecting to an agent.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// `IFOX__BRIDGE__SWEEP_INTERVAL`: how often runs past their deadline are moved to `timeout`.
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// `IFOX__BRIDGE__RESULT_LIMIT`: bytes of an agent's result text kept in the run record.
    pub result_limit: usize,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            shared_url: "http://incidentfox-agent.incidentfox.svc.cluster.local:8080".to_owned(),
            default_protocol: Protocol::Investigate,
            allowed_url_patterns: Vec::new(),
            max_concurrent_agents: 5,
            concurrency: 256,
            max_waiting: 10_000,
            max_attempts: 8,
            public_url: String::new(),
            service_token: None,
            run_token_key: Secret::default(),
            connect_timeout: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(5),
            result_limit: 64 * 1024,
        }
    }
}

impl BridgeSettings {
    /// The allowed patterns in force: the setting, or by default the shared URL and the dedicated
    /// services of `namespace`, plus those of the team namespaces `{namespace}-*` when
    /// `namespace_per_team` (`provision.namespace_per_team`) is on.
    pub fn allowed_patterns(&self, namespace: &str, namespace_per_team: bool) -> Vec<String> {
        if !self.allowed_url_patterns.is_empty() {
            return self.allowed_url_patterns.clone();
        }
        let mut patterns = vec![
            self.shared_url.clone(),
            format!("http://agent-dedicated-*.{namespace}.svc.cluster.local:8080"),
        ];
        if namespace_per_team {
            patterns.push(format!(
                "http://agent-dedicated-*.{namespace}-*.svc.cluster.local:8080"
            ));
        }
        patterns
    }

    /// The key run tokens are signed with.
    pub fn token_key(&self, admin_token: &str) -> Vec<u8> {
        if !self.run_token_key.expose().is_empty() {
            return self.run_token_key.expose().as_bytes().to_vec();
        }
        crate::domain::secret::derived_key(admin_token, b"ifox run tokens v1")
    }
}

/// A TOML list, or one comma-separated string (the environment's form).
pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}
