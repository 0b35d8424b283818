//! JetStream: the connection, the streams of `streams/` ([`streams`]), the publisher
//! ([`publish`]), the consumer toolkit every role consumes with ([`consumer`]), the one dead-letter
//! format ([`deadletter`]) and what readiness needs to know ([`health`]).
//!
//! The connection never blocks start-up: when NATS is unreachable the process still serves (webhooks
//! answer 503 with Retry-After) and async-nats reconnects in the background. Every (re)connect
//! re-applies the streams, so a NATS server that came back with an empty store is repaired without a
//! restart. The gauge `ifox_nats_connected` (1 or 0) follows the connection. The client gets every
//! seed of `nats.url` and the credentials and TLS of `settings::nats`; bad settings or an unreadable
//! credentials file fail at once instead of being retried.

pub mod consumer;
pub mod deadletter;
pub mod delivery;
pub mod health;
pub mod publish;
pub mod streams;
pub mod watch;

pub use consumer::{ConsumerDef, Delivery, Disposition, LoopOptions, Settled, nak_delay};
pub use health::Health;
pub use publish::{PublishError, Published};
pub use streams::{StreamError, StreamOutcome, StreamSpec};

use crate::settings::{NatsAuth, NatsSettings};
use async_nats::jetstream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const CONNECTED_GAUGE: &str = "ifox_nats_connected";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("NATS server URL {url:?}: {source}")]
    Url {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the NATS credentials file {path}: {source}")]
    Credentials {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NATS settings: `{key}` {problem}")]
    Settings { key: &'static str, problem: String },
}

/// A NATS connection with its JetStream context. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    publish_timeout: Duration,
    /// Fired on every successful (re)connect.
    connected: Arc<Notify>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("state", &self.client.connection_state())
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Connects once and fails when NATS does not answer (the CLI's `streams` commands).
    pub async fn connect(settings: &NatsSettings) -> Result<Bus, BusError> {
        let connected = Arc::new(Notify::new());
        let client = options(settings, connected.clone())
            .await?
            .connect(servers(settings)?)
            .await
            .map_err(|source| connect_error(settings, source))?;
        Ok(Self::wrap(client, settings, connected))
    }

    /// Connects, or when NATS is unreachable returns at once with a client that keeps trying in
    /// the background (a serving process must not depend on NATS being up first).
    pub async fn connect_lazily(settings: &NatsSettings) -> Result<Bus, BusError> {
        match Self::connect(settings).await {
            Ok(bus) => Ok(bus),
            // Only an unreachable server is worth waiting for; bad settings or files are not.
            Err(
                e @ (BusError::Url { .. }
                | BusError::Credentials { .. }
                | BusError::Settings { .. }),
            ) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "NATS unreachable at start; connecting in the background");
                let connected = Arc::new(Notify::new());
                let client = options(settings, connected.clone())
                    .await?
                    .retry_on_initial_connect()
                    .connect(servers(settings)?)
                    .await
                    .map_err(|source| connect_error(settings, source))?;
                Ok(Self::wrap(client, settings, connected))
            }
        }
    }

    fn wrap(client: async_nats::Client, settings: &NatsSettings, connected: Arc<Notify>) -> Bus {
        let js = jetstream::ContextBuilder::new()
            .timeout(settings.publish_timeout)
            .build(client.clone());
        Bus {
            client,
            js,
            publish_timeout: settings.publish_timeout,
            connected,
        }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Applies `specs` once and logs each stream that changed.
    pub async fn apply_streams(&self, specs: &[StreamSpec]) -> Result<(), StreamError> {
        for o in streams::apply(&self.js, specs)
            .await?
            .iter()
            .filter(|o| o.changed())
        {
            tracing::info!(stream = %o.name(), outcome = %o, "stream applied");
        }
        Ok(())
    }

    /// Applies `specs` now and after every reconnect, until `shutdown`. A failure while connected is
    /// retried with a growing delay (capped at 30 s); a refused config is logged as an error and
    /// retried on the next reconnect, since only an operator can fix it.
    pub async fn keep_streams_applied(self, specs: Vec<StreamSpec>, shutdown: CancellationToken) {
        use backon::BackoffBuilder;
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(30))
            .without_max_times();
        let mut delays = policy.build();
        loop {
            if self.is_connected() {
                match self.apply_streams(&specs).await {
                    Ok(()) => delays = policy.build(),
                    Err(e) if e.is_transient() => {
                        let delay = delays.next().unwrap_or(Duration::from_secs(30));
                        tracing::warn!(error = %e, retry_in = ?delay, "applying streams failed; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(delay) => {}
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a stream file was refused by NATS; fix it and run `ifox streams apply`")
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.connected.notified() => {}
            }
        }
    }
}

/// Every seed server of `nats.url`, for the client to try in turn.
fn servers(settings: &NatsSettings) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    settings
        .url
        .iter()
        .map(|url| {
            url.parse().map_err(|source| BusError::Url {
                url: url.clone(),
                source,
            })
        })
        .collect()
}

fn connect_error(settings: &NatsSettings, source: async_nats::ConnectError) -> BusError {
    BusError::Connect {
        url: settings.url.join(","),
        source,
    }
}

/// The client options: identity, timeouts, credentials and TLS of `settings`, and the callback
/// that keeps the gauge and the reconnect notice.
async fn options(
    settings: &NatsSettings,
    connected: Arc<Notify>,
) -> Result<async_nats::ConnectOptions, BusError> {
    crate::telemetry::metrics(); // the recorder first, so the gauge is not set into nothing
    metrics::describe_gauge!(
        CONNECTED_GAUGE,
        "1 while the NATS connection is up, 0 otherwise"
    );
    metrics::gauge!(CONNECTED_GAUGE).set(0.0);
    let opts = async_nats::ConnectOptions::new();
    let mut opts = match settings
        .auth()
        .map_err(|(key, problem)| BusError::Settings { key, problem })?
    {
        NatsAuth::None => opts,
        NatsAuth::UserPassword { user, password } => {
            opts.user_and_password(user.to_owned(), password.to_owned())
        }
        NatsAuth::Token(token) => opts.token(token.to_owned()),
        NatsAuth::NKey(seed) => opts.nkey(seed.to_owned()),
        NatsAuth::CredsFile(path) => {
            opts.credentials_file(path)
                .await
                .map_err(|source| BusError::Credentials {
                    path: path.display().to_string(),
                    source,
                })?
        }
    };
    if let Some(ca) = &settings.tls_ca_file {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert_file, &settings.tls_key_file) {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    if settings.tls_required {
        opts = opts.require_tls(true);
    }
    Ok(opts
        .name("ifox")
        .connection_timeout(settings.connect_timeout)
        .request_timeout(Some(settings.publish_timeout.max(Duration::from_secs(5))))
        .event_callback(move |event| {
            let connected = connected.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        metrics::gauge!(CONNECTED_GAUGE).set(1.0);
                        connected.notify_one();
                    }
                    async_nats::Event::Disconnected | async_nats::Event::Closed => {
                        metrics::gauge!(CONNECTED_GAUGE).set(0.0);
                        tracing::warn!("NATS connection lost; reconnecting");
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            }
        }))
}
