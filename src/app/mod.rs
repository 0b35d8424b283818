//! The assembled process: settings in, roles running as supervised tasks ([`supervisor`]), until
//! the shutdown token fires or a role task ends.
//!
//! `App::build` connects and migrates the database, loads the catalog and binds the listeners (port 0
//! works, and [`App::port`] / [`App::metrics_port`] tell which ports were taken), so tests run the real
//! app in-process. Both listeners are served by [`http::serve`] with the `http.*` limits.

mod role;
pub mod supervisor;

pub use role::Role;

use crate::bus::{Bus, Health, StreamSpec};
use crate::http::{self, AppState};
use crate::ingest::Ingest;
use crate::ingest::secret_cache::SecretCache;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::tenancy::{Tenancy, TenancyError};
use std::collections::BTreeSet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    #[error(transparent)]
    Streams(#[from] crate::bus::StreamError),
    #[error(transparent)]
    Cluster(#[from] crate::provision::backend::BackendError),
    #[error(transparent)]
    Supervisor(#[from] supervisor::SupervisorError),
    #[error(transparent)]
    Bridge(#[from] crate::bridge::worker::BridgeError),
}

pub struct App {
    settings: Settings,
    roles: BTreeSet<Role>,
    listener: TcpListener,
    /// `http.metrics_listen`, when `/metrics` has a listener of its own.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    /// Present when a role that uses NATS runs.
    bus: Option<(Bus, Vec<StreamSpec>)>,
    ingest: Option<Ingest>,
    /// Org webhook secrets in memory: read by ingest, invalidated by the admin routes.
    org_secrets: SecretCache,
    provisioner: Option<crate::provision::worker::Worker>,
    bridge: Option<crate::bridge::worker::Bridge>,
}

impl App {
    pub async fn build(settings: Settings, roles: BTreeSet<Role>) -> Result<App, AppError> {
        settings.check_signing_keys(
            roles.contains(&Role::Bridge)
                || roles.contains(&Role::Admin)
                || roles.contains(&Role::Recorder),
            roles.contains(&Role::Router),
        )?;
        let store = connect_store(&settings.database).await?;
        let tenancy = Tenancy::open(store, Some(settings.admin.token.clone()))
            .await?
            .with_limits(settings.limits);
        let addr = settings.listen_addr();
        let listener = bind(addr).await?;
        let metrics_listener = match settings.http.metrics_addr() {
            Some(metrics_addr) => Some(bind(metrics_addr).await?),
            None => None,
        };
        // Every role uses NATS: ingest and router for streams, admin for change notices.
        // Streams are checked before NATS is needed, so a bad file stops start-up at once.
        let specs: Vec<StreamSpec> = StreamSpec::embedded()?
            .into_iter()
            .map(|s| s.with_replicas(settings.nats.stream_replicas))
            .collect();
        let connected = Bus::connect_lazily(&settings.nats).await?;
        tenancy.attach_notifier(connected.client().clone());
        let health = Health::default();
        health.watch_connection(connected.client().clone());
        let org_secrets = SecretCache::new(&settings.ingest);
        let ingest = roles.contains(&Role::Ingest).then(|| {
            Ingest::new(
                &settings.ingest,
                connected.clone(),
                tenancy.clone(),
                org_secrets.clone(),
            )
        });
        let mut settings = settings;
        if settings.bridge.public_url.is_empty() {
            let mut addr = listener.local_addr().map_err(|source| AppError::Bind {
                addr: addr.to_string(),
                source,
            })?;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                if roles.contains(&Role::Bridge) {
                    tracing::warn!(%addr, "bridge.public_url is not set: agents are told to report to this machine's loopback address");
                }
            }
            settings.bridge.public_url = format!("http://{addr}");
        }
        let bridge = match roles.contains(&Role::Bridge) {
            true => Some(crate::bridge::worker::Bridge::new(
                &settings,
                tenancy.clone(),
                connected.clone(),
            )?),
            false => None,
        };
        let runs_bus = connected.clone();
        let bus = Some((connected, specs));
        let provisioner = match roles.contains(&Role::Provisioner) {
            true => Some(
                crate::provision::worker::Worker::from_settings(&settings, tenancy.clone()).await?,
            ),
            false => None,
        };
        let state = AppState {
            tenancy,
            metrics: crate::telemetry::metrics(),
            health,
            runs_bus: Some(runs_bus),
            run_token_key: std::sync::Arc::new(
                settings.bridge.token_key(settings.admin.token.expose()),
            ),
            result_limit: settings.bridge.result_limit,
        };
        Ok(App {
            settings,
            roles,
            listener,
            metrics_listener,
            state,
            bus,
            ingest,
            org_secrets,
            provisioner,
            bridge,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port of the `/metrics` listener, when `http.metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        let listener = self.metrics_listener.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` fires, then stops accepting and lets in-flight work finish. Every
    /// role runs as a supervised task: one that ends on its own stops the others and makes this
    /// return an error (the process exits non-zero and is restarted).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        use supervisor::{Supervisor, until_shutdown, until_shutdown_ok};
        let App {
            settings,
            roles,
            listener,
            metrics_listener,
            state,
            bus,
            ingest,
            org_secrets,
            provisioner,
            bridge,
        } = self;
        let nudges = bus.as_ref().map(|(bus, _)| bus.clone());
        let roles_list: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), roles = ?roles_list, "ifox serving");
        let mut tasks = Supervisor::default();
        tasks.spawn(
            "catalog-reload",
            until_shutdown(
                reload_loop(
                    state.tenancy.clone(),
                    settings.tenancy.reload_interval,
                    shutdown.clone(),
                ),
                shutdown.clone(),
            ),
        );
        // Start-up of a role that uses NATS applies the streams, and again after every reconnect.
        // Once before any consumer starts, so none of them begins by failing on a missing stream.
        // A failure here is left to `keep_streams_applied`, which retries and logs it.
        if let Some((bus, specs)) = &bus
            && bus.is_connected()
        {
            let _ = bus.apply_streams(specs).await;
        }
        if let Some(worker) = provisioner {
            let run = worker.run(nudges.clone(), state.health.clone(), shutdown.clone());
            tasks.spawn("provisioner", until_shutdown(run, shutdown.clone()));
        }
        if let Some((bus, specs)) = bus {
            let streams = bus.clone().keep_streams_applied(specs, shutdown.clone());
            tasks.spawn("streams", until_shutdown(streams, shutdown.clone()));
            let notices = crate::router::notice::listen(
                bus.client().clone(),
                state.tenancy.clone(),
                shutdown.clone(),
            );
            tasks.spawn("config-notices", until_shutdown(notices, shutdown.clone()));
            if roles.contains(&Role::Router) {
                let replay_key = settings.router.replay_key(settings.admin.token.expose());
                let worker = crate::router::worker::Worker::new(
                    state.tenancy.clone(),
                    bus.clone(),
                    replay_key,
                );
                let run = crate::router::consumer::run(
                    worker,
                    bus.clone(),
                    settings.router.clone(),
                    state.health.clone(),
                    shutdown.clone(),
                );
                tasks.spawn("router", until_shutdown_ok(run, shutdown.clone()));
            }
            if let Some(bridge) = bridge {
                let run = bridge.run(state.health.clone(), shutdown.clone());
                tasks.spawn("bridge", until_shutdown_ok(run, shutdown.clone()));
            }
            if roles.contains(&Role::Recorder) {
                let recorder = crate::bridge::recorder::Recorder::new(
                    state.tenancy.store().clone(),
                    bus,
                    crate::bridge::lifecycle::record_key(&state.run_token_key),
                );
                let run = recorder.run(state.health.clone(), shutdown.clone());
                tasks.spawn("recorder", until_shutdown_ok(run, shutdown.clone()));
            }
        }
        let admin = roles.contains(&Role::Admin);
        let mut router = http::router(state.clone(), metrics_listener.is_none());
        let limits = http::serve::Limits::from_settings(&settings.http);
        if let Some(metrics_listener) = metrics_listener {
            tracing::info!(listen = %metrics_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "/metrics served on its own listener");
            let serve = http::serve::serve(
                metrics_listener,
                http::metrics_router(state.clone()),
                limits.clone(),
                "metrics",
                shutdown.clone(),
            );
            tasks.spawn("metrics-http", until_shutdown(serve, shutdown.clone()));
        }
        if admin {
            let admin_api = crate::admin::routes().layer(axum::extract::DefaultBodyLimit::max(
                settings.http.admin_body_limit,
            ));
            router = router.merge(admin_api.with_state(state.clone()));
            let secrets = crate::ingest::org_secrets::routes(org_secrets).layer(
                axum::extract::DefaultBodyLimit::max(settings.http.admin_body_limit),
            );
            let provision = crate::provision::api::routes(crate::provision::api::ProvisionApi {
                bus: nudges,
                settings: settings.provision.clone(),
            })
            .layer(axum::extract::DefaultBodyLimit::max(
                settings.http.admin_body_limit,
            ));
            router = router.merge(provision.with_state(state.clone()));
            router = router.merge(secrets.with_state(state));
        }
        if let Some(ingest) = ingest {
            router = router.merge(ingest.routes());
        }
        // Request tracing (a span per request, and its status and latency at debug level) by
        // tower-http rather than by hand.
        let router = router
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                http::panic_answer,
            ))
            .layer(
                // Failed answers are logged by the handlers themselves, with their reason: the
                // layer's own failure line stays at debug (it would log every expected 503).
                tower_http::trace::TraceLayer::new_for_http().on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                ),
            );
        let serve = http::serve::serve(listener, router, limits, "main", shutdown.clone());
        tasks.spawn("http", until_shutdown(serve, shutdown.clone()));
        // The router finishes (and acks) the events it holds before the process exits.
        let outcome = tasks.wait(shutdown).await;
        tracing::info!("ifox stopped");
        outcome.map_err(AppError::from)
    }
}

/// Connects and migrates the database, waiting up to `startup_wait` for one that is unreachable.
async fn connect_store(db: &crate::settings::DatabaseSettings) -> Result<Store, AppError> {
    use backon::{ExponentialBuilder, Retryable};
    let started = std::time::Instant::now();
    let attempt = || async {
        let store = Store::connect(db.url.expose(), db.max_connections).await?;
        store.migrate().await?;
        Ok::<_, crate::store::StoreError>(store)
    };
    let pauses = ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(500))
        .with_max_delay(std::time::Duration::from_secs(10))
        .without_max_times()
        .with_jitter();
    Ok(attempt
        .retry(pauses)
        .when(|e| {
            // A URL that does not parse or a migration the database refuses will not heal.
            let permanent = matches!(
                e,
                crate::store::StoreError::Connect(sqlx::Error::Configuration(_))
                    | crate::store::StoreError::Migrate(
                        sqlx::migrate::MigrateError::VersionMismatch(_)
                            | sqlx::migrate::MigrateError::VersionMissing(_)
                    )
            );
            !permanent && started.elapsed() < db.startup_wait
        })
        .notify(|e, pause| {
            tracing::warn!(error = %e, retry_in = ?pause, waited = ?started.elapsed(), gives_up_after = ?db.startup_wait, "database unreachable at start-up; waiting for it");
        })
        .await?)
}

/// Binds a listener.
async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// The catalog's safety net: a full reload every `interval` (writes through this process refresh
/// their own node at once).
async fn reload_loop(tenancy: Tenancy, interval: std::time::Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = tenancy.catalog().reload_all(tenancy.store()).await {
                    tracing::warn!(error = %e, "catalog reload failed; keeping the previous one");
                }
            }
        }
    }
}
