//! Typed settings: built-in defaults < optional file `ifox.toml` (or `--config`) < environment
//! `IFOX__<SECTION>__<KEY>` (lists comma-separated). Validated once at start; an error names the key.
//! Secrets are [`Secret`]s (from `domain`): their `Debug` prints `[redacted]` and they have no
//! `Display`. The settings of every role live here ([`provision`] for `kube` and `provision`), so
//! settings never imports a role.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub mod bridge;
pub mod http;
pub mod nats;
pub mod provision;
mod secret_list;
pub mod telemetry;
pub use crate::domain::Secret;
pub use crate::domain::limits::Limits;
pub use bridge::BridgeSettings;
pub use http::HttpSettings;
pub use nats::{NatsAuth, NatsSettings};
pub use secret_list::SecretList;
pub use telemetry::TelemetrySettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub nats: NatsSettings,
    pub http: HttpSettings,
    pub admin: AdminSettings,
    pub log: LogSettings,
    pub tenancy: TenancySettings,
    pub ingest: IngestSettings,
    #[serde(default)]
    pub router: RouterSettings,
    /// `IFOX__KUBE__…`: the cluster the provisioner writes to.
    #[serde(default)]
    pub kube: provision::KubeSettings,
    /// `IFOX__PROVISION__…`: grace, timers, prices.
    #[serde(default)]
    pub provision: provision::ProvisionSettings,
    /// `IFOX__BRIDGE__…`: agent delivery.
    #[serde(default)]
    pub bridge: BridgeSettings,
    /// `IFOX__TELEMETRY__…`: OTLP export, per-team metric labels.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// `IFOX__LIMITS__…`: bounds on everything a caller controls (tree depth, nodes per org, claims
    /// per team, config size and nesting, tokens per team and their lifetime, route explain
    /// requests, replay ranges). The type is the domain's, so tenancy applies it without depending
    /// on settings.
    #[serde(default)]
    pub limits: Limits,
}

/// The `router` role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSettings {
    /// Events processed at once by one process (the consumer pulls twice that per batch).
    pub concurrency: usize,
    /// Overrides `max_deliver` of `streams/consumers/EVENTS.router.json` (0 = keep the file's).
    pub max_deliver: i64,
    /// The key replay headers are signed with (`ifox replay` signs, the router checks); empty:
    /// derived from `admin.token`. Lets router pods hold no admin token.
    pub replay_key: Secret,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            concurrency: 64,
            max_deliver: 0,
            replay_key: Secret::default(),
        }
    }
}

impl RouterSettings {
    /// The key of replay signatures ([`crate::domain::replay_sig::key`] of `router.replay_key`, or
    /// of `admin.token`).
    pub fn replay_key(&self, admin_token: &str) -> Vec<u8> {
        let secret = self.replay_key.expose();
        crate::domain::replay_sig::key(if secret.is_empty() {
            admin_token
        } else {
            secret
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://user:pass@host/db`. Secret: URLs carry passwords.
    pub url: Secret,
    pub max_connections: u32,
    /// How long start-up waits for an unreachable database (retrying with a growing pause, a
    /// warning per attempt) before the process gives up: a pod restarted during a database outage
    /// waits for it instead of crash-looping.
    #[serde(with = "humantime_serde_compat", default = "default_startup_wait")]
    pub startup_wait: Duration,
}

fn default_startup_wait() -> Duration {
    Duration::from_secs(3600)
}

/// Webhook ingest (the `ingest` role). Secrets are lists so they can be rotated: every one is tried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Largest webhook body, bytes (413 above). It must fit NATS `max_payload` (1 MiB by default)
    /// together with the headers, so it is capped at 960 KiB.
    pub body_limit: usize,
    #[serde(default)]
    pub secrets: IngestSecrets,
    /// How long an org's webhook secrets (or their absence) are kept in memory. Writes through this
    /// process apply at once; writes through another replica within this.
    #[serde(with = "humantime_serde_compat")]
    pub org_secrets_ttl: Duration,
    /// Orgs whose webhook secrets are kept in memory at once (past it the oldest entry goes).
    pub org_secrets_cache_size: usize,
}

/// `ingest.secrets.<provider>`; env `IFOX__INGEST__SECRETS__SLACK=a,b` and
/// `IFOX__INGEST__SECRETS__GENERIC__<SOURCE>=whsec_…`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSecrets {
    #[serde(default)]
    pub slack: SecretList,
    #[serde(default)]
    pub github: SecretList,
    #[serde(default)]
    pub pagerduty: SecretList,
    #[serde(default)]
    pub incidentio: SecretList,
    /// Standard Webhooks senders by source name (`/webhooks/generic/{source}`).
    #[serde(default)]
    pub generic: std::collections::BTreeMap<String, SecretList>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// The global admin token; empty disables global admin access.
    pub token: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info,ifox=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenancySettings {
    /// How often the in-memory catalog (route index, configs) reloads from the database as a safety
    /// net; writes through this process refresh it at once.
    #[serde(with = "humantime_serde_compat")]
    pub reload_interval: Duration,
}

/// `"30s"`, `"24h"` … via the `humantime-serde` crate; every duration key of every section uses it
/// (the sections import it as `duration`).
pub(crate) use ::humantime_serde as humantime_serde_compat;

const DEFAULTS: &str = r#"
[database]
url = "sqlite://ifox.db?mode=rwc"
max_connections = 10
startup_wait = "1h"
[nats]
url = "nats://127.0.0.1:4222"
connect_timeout = "2s"
publish_timeout = "2s"
stream_replicas = 0
[http]
listen = "127.0.0.1:8080"
admin_body_limit = 1048576
metrics_listen = ""
header_read_timeout = "30s"
body_timeout = "30s"
max_connections = 1024
max_requests_per_connection = 1000
[admin]
token = ""
[log]
format = "auto"
level = "info"
[tenancy]
reload_interval = "30s"
[ingest]
body_limit = 524288
org_secrets_ttl = "30s"
org_secrets_cache_size = 10000
[router]
concurrency = 64
max_deliver = 0
"#;

/// NATS `max_payload` defaults to 1 MiB and must hold the body and the CloudEvents headers.
pub const MAX_INGEST_BODY: usize = 960 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("settings: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// Refuses to start roles whose signing key would come from an empty secret, i.e. be a key
    /// anyone can compute from the source: run tokens (minted by `bridge`, checked by `admin`)
    /// need `bridge.run_token_key` or `admin.token`; replay signatures (checked by `router`) need
    /// `router.replay_key` or `admin.token`.
    pub fn check_signing_keys(
        &self,
        bridge_or_admin: bool,
        router: bool,
    ) -> Result<(), SettingsError> {
        let admin = !self.admin.token.expose().is_empty();
        if bridge_or_admin && !admin && self.bridge.run_token_key.expose().is_empty() {
            return Err(SettingsError::Invalid {
                key: "bridge.run_token_key",
                problem: "is empty and so is admin.token: run tokens would be signed with a key \
                          anyone can compute; set IFOX__BRIDGE__RUN_TOKEN_KEY (the same value in \
                          the bridge and admin pods)"
                    .to_owned(),
            });
        }
        if router && !admin && self.router.replay_key.expose().is_empty() {
            return Err(SettingsError::Invalid {
                key: "router.replay_key",
                problem: "is empty and so is admin.token: replay signatures would be checked \
                          with a key anyone can compute; set IFOX__ROUTER__REPLAY_KEY (the same \
                          value where `ifox replay` runs)"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// Defaults < `file` (when it exists) < `IFOX__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, env)
    }

    /// As [`Settings::load`] with an explicit environment (tests use this; no global state).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        let file = file.unwrap_or(Path::new("ifox.toml"));
        builder = builder.add_source(
            config::File::from(file)
                .format(config::FileFormat::Toml)
                .required(false),
        );
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("IFOX__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("IFOX")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: String| Err(SettingsError::Invalid { key, problem });
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return invalid(
                "database.url",
                "must start with sqlite: or postgres://".into(),
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1".into());
        }
        if let Err((key, problem)) = self.http.validate() {
            return invalid(key, problem);
        }
        if let Err((key, problem)) = self.telemetry.validate() {
            return invalid(key, problem);
        }
        if let Err((key, problem)) = self.nats.validate() {
            return invalid(key, problem);
        }
        // Intervals drive `tokio::time::interval`, which panics on zero: refused here, not at run time.
        for (key, every) in [
            ("tenancy.reload_interval", self.tenancy.reload_interval),
            ("bridge.sweep_interval", self.bridge.sweep_interval),
            ("provision.tick", self.provision.tick),
            ("provision.resync_interval", self.provision.resync_interval),
        ] {
            if every.is_zero() {
                return invalid(key, "must be more than zero".into());
            }
        }
        if !(1..=4096).contains(&self.router.concurrency) {
            return invalid("router.concurrency", "must be between 1 and 4096".into());
        }
        if !(1024..=MAX_INGEST_BODY).contains(&self.ingest.body_limit) {
            return invalid(
                "ingest.body_limit",
                format!("must be between 1024 and {MAX_INGEST_BODY} bytes"),
            );
        }
        if self.ingest.org_secrets_ttl.is_zero() {
            return invalid("ingest.org_secrets_ttl", "must be more than zero".into());
        }
        if self.ingest.org_secrets_cache_size == 0 {
            return invalid("ingest.org_secrets_cache_size", "must be at least 1".into());
        }
        if self.bridge.concurrency == 0 || self.bridge.max_concurrent_agents == 0 {
            return invalid(
                "bridge.concurrency",
                "bridge.concurrency and bridge.max_concurrent_agents must be at least 1".into(),
            );
        }
        if self.bridge.max_attempts == 0 {
            return invalid("bridge.max_attempts", "must be at least 1".into());
        }
        if let Err((key, problem)) = self.limits.validate() {
            return invalid(key, problem);
        }
        for source in self.ingest.secrets.generic.keys() {
            if let Err(problem) = crate::domain::subject::check_generic_source(source) {
                return invalid("ingest.secrets.generic", problem);
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // Invariant, not input: `validate` refused any `http.listen` that does not parse, and
        // `Settings` is only made by `load_from`.
        self.http.listen.parse().expect("validated at load")
    }
}

#[cfg(test)]
mod tests;
