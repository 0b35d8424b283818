//! The `http` section (`IFOX__HTTP__…`): the public listener, its limits against slow or greedy
//! clients, and the optional separate `/metrics` listener. Every limit key has a default.

use super::humantime_serde_compat as duration;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: String,
    /// Largest admin request body, bytes.
    pub admin_body_limit: usize,
    /// `IFOX__HTTP__METRICS_LISTEN`: where `/metrics` is served on its own (then the main listener
    /// no longer serves it). Empty: on the main listener.
    #[serde(default)]
    pub metrics_listen: String,
    /// `IFOX__HTTP__HEADER_READ_TIMEOUT`: a request's headers must arrive within this (slowloris).
    /// hyper counts the wait for the *next* request of a keep-alive connection too, so this is also
    /// how long an idle keep-alive connection is kept.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// `IFOX__HTTP__BODY_TIMEOUT`: the whole body must arrive within this after the headers (408).
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// `IFOX__HTTP__MAX_CONNECTIONS`: connections served at once per listener; past it, new ones
    /// wait in the kernel's accept queue until one closes.
    pub max_connections: usize,
    /// `IFOX__HTTP__MAX_REQUESTS_PER_CONNECTION`: the answer to the last one carries
    /// `Connection: close`, so a client cannot keep one connection (and its slot) forever.
    pub max_requests_per_connection: u64,
}

impl HttpSettings {
    /// The first bad key and what is wrong with it.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        let listen = address("http.listen", &self.listen)?;
        if !self.metrics_listen.is_empty() {
            let metrics = address("http.metrics_listen", &self.metrics_listen)?;
            if metrics == listen && listen.port() != 0 {
                return Err((
                    "http.metrics_listen",
                    "must differ from http.listen (leave it empty to serve /metrics there)".into(),
                ));
            }
        }
        for (key, value) in [
            ("http.header_read_timeout", self.header_read_timeout),
            ("http.body_timeout", self.body_timeout),
        ] {
            if value.is_zero() {
                return Err((key, "must be more than zero".into()));
            }
        }
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(("http.max_connections", "must be between 1 and 65536".into()));
        }
        if self.max_requests_per_connection == 0 {
            return Err((
                "http.max_requests_per_connection",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// `http.metrics_listen` as an address, when set (validated at load).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listen.parse().ok()
    }
}

fn address(key: &'static str, value: &str) -> Result<SocketAddr, (&'static str, String)> {
    value.parse::<SocketAddr>().map_err(|e| {
        (
            key,
            format!("{value:?} is not an address like 0.0.0.0:8080 ({e})"),
        )
    })
}
