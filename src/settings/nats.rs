//! The `nats` section (`IFOX__NATS__…`): the seed servers, timeouts, stream replicas, and how a
//! process proves who it is to NATS (user and password, token, NKey seed or `.creds` file) over plain
//! TCP or TLS. Validation here names the bad key or URL; `bus` turns these into async-nats options.

use super::Secret;
use super::humantime_serde_compat as duration;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// Seed servers: a TOML list or one comma-separated string (`nats://a:4222,nats://b:4222`). The
    /// client tries them all (in random order, so replicas spread over the seeds) and learns the
    /// rest of the cluster from the one it reaches.
    #[serde(deserialize_with = "super::bridge::list")]
    pub url: Vec<String>,
    /// Bound on the TCP connect and handshake to the NATS server.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Bound on one publish, PubAck included; past it the webhook answers 503 with Retry-After.
    #[serde(with = "duration")]
    pub publish_timeout: Duration,
    /// When not 0, replaces `num_replicas` of every file in `streams/` (3 on a production cluster).
    pub stream_replicas: u8,
    /// The NATS user (docs/nats-permissions.md: one per role); needs `password`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    pub password: Option<Secret>,
    /// A server-wide authorization token (instead of a user).
    #[serde(default, deserialize_with = "secret")]
    pub token: Option<Secret>,
    /// An NKey user seed (`SU…`), for servers configured with NKey users.
    #[serde(default, deserialize_with = "secret")]
    pub nkey_seed: Option<Secret>,
    /// A `.creds` file (JWT and NKey seed) of a server in operator mode.
    #[serde(default)]
    pub creds_file: Option<PathBuf>,
    /// PEM CA certificates the server's certificate must chain to (instead of the system's roots).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// A PEM client certificate, for servers that verify clients (needs `tls_key_file`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Refuse a connection that is not TLS, whatever the URL's scheme (`tls://` implies it).
    #[serde(default)]
    pub tls_required: bool,
}

/// How this process authenticates, after validation: at most one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth<'a> {
    None,
    UserPassword { user: &'a str, password: &'a str },
    Token(&'a str),
    NKey(&'a str),
    CredsFile(&'a std::path::Path),
}

impl NatsSettings {
    /// The one authentication method configured (empty values count as unset); an error names
    /// the keys when more than one is.
    pub fn auth(&self) -> Result<NatsAuth<'_>, (&'static str, String)> {
        let password = non_empty(&self.password);
        let user = self.user.as_deref().filter(|u| !u.is_empty());
        let mut methods = Vec::new();
        if user.is_some() || password.is_some() {
            methods.push("user/password");
        }
        if non_empty(&self.token).is_some() {
            methods.push("token");
        }
        if non_empty(&self.nkey_seed).is_some() {
            methods.push("nkey_seed");
        }
        if self.creds_file.is_some() {
            methods.push("creds_file");
        }
        if methods.len() > 1 {
            return Err((
                "nats.user",
                format!(
                    "and the other NATS credentials: set at most one of user/password, token, nkey_seed, creds_file (found {})",
                    methods.join(", ")
                ),
            ));
        }
        Ok(match (user, password) {
            (Some(user), Some(password)) => NatsAuth::UserPassword { user, password },
            (Some(_), None) => return Err(("nats.password", "is required with nats.user".into())),
            (None, Some(_)) => return Err(("nats.user", "is required with nats.password".into())),
            (None, None) => match (
                non_empty(&self.token),
                non_empty(&self.nkey_seed),
                &self.creds_file,
            ) {
                (Some(token), _, _) => NatsAuth::Token(token),
                (_, Some(seed), _) => NatsAuth::NKey(seed),
                (_, _, Some(path)) => NatsAuth::CredsFile(path),
                _ => NatsAuth::None,
            },
        })
    }

    /// Checks every URL, the timeouts, the one auth method and the files it names.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.url.is_empty() {
            return Err(("nats.url", "needs at least one server".into()));
        }
        for entry in &self.url {
            check_url(entry).map_err(|problem| ("nats.url", format!("{entry:?}: {problem}")))?;
        }
        if self.publish_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err((
                "nats.publish_timeout",
                "timeouts must be more than zero".into(),
            ));
        }
        if let NatsAuth::NKey(seed) = self.auth()?
            && !seed.starts_with('S')
        {
            return Err((
                "nats.nkey_seed",
                "is not an NKey seed (a user seed starts with SU)".into(),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err((
                "nats.tls_cert_file",
                "and nats.tls_key_file go together".into(),
            ));
        }
        // Files are read when connecting; a missing one would otherwise only show as a connection
        // that never comes up, retried in the background.
        for (key, path) in [
            ("nats.creds_file", &self.creds_file),
            ("nats.tls_ca_file", &self.tls_ca_file),
            ("nats.tls_cert_file", &self.tls_cert_file),
            ("nats.tls_key_file", &self.tls_key_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err((key, format!("{} is not a readable file", path.display())));
            }
        }
        Ok(())
    }
}

/// One seed: `scheme://host[:port]` with scheme nats, tls, ws or wss, or `host:port` (nats). No
/// credentials in it: a URL is printed in errors and logs, so they belong in `nats.user` & co.
pub fn check_url(entry: &str) -> Result<(), String> {
    let full = if entry.contains("://") {
        entry.to_owned()
    } else {
        format!("nats://{entry}")
    };
    let url =
        url::Url::parse(&full).map_err(|e| format!("not a URL like nats://host:4222 ({e})"))?;
    if !matches!(url.scheme(), "nats" | "tls" | "ws" | "wss") {
        return Err(format!(
            "scheme {:?} is not one of nats, tls, ws, wss",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.port() == Some(0) {
        return Err("port 0 is not a server's port".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "carries credentials; set nats.user and nats.password (or token, nkey_seed, creds_file) instead".into(),
        );
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err("has a path or query; a NATS URL is scheme://host:port".into());
    }
    Ok(())
}

fn non_empty(secret: &Option<Secret>) -> Option<&str> {
    secret
        .as_ref()
        .map(Secret::expose)
        .filter(|s| !s.is_empty())
}

/// A secret from a string only: the environment parser turns `0123` into the number 123 and `true`
/// into a boolean, which would authenticate with a different value than the one configured.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    struct Visit;
    impl serde::de::Visitor<'_> for Visit {
        type Value = Option<Secret>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a secret string (not a bare number or boolean)")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Secret::new(v)))
        }
    }
    d.deserialize_any(Visit)
}
