//! The `provisioner` role: a durable JetStream consumer on PROVISION plus two timers.
//!
//! - Nudges (`ifox.provision.<org>.<team>`) only say which team to look at; the pass reads the
//!   database. Ack after the pass converged; NAK with a delay while a Deployment becomes available
//!   or when the cluster or database is unavailable (the delay grows with each delivery); on a
//!   permanent failure, dead-letter on `ifox.deadletter.provisioner.<reason>`, then TERM.
//! - The tick (`provision.tick`, 1 s): deletes objects whose grace has passed (so a deletion is at
//!   most a tick late, not a resync late) and notices teams whose `agent_service_url` someone removed
//!   through the config API (dedicated → shared: the deletion is scheduled).
//! - The resync (at start and every `provision.resync_interval`): reconciles every team whose nudge
//!   may have been lost, repairs drift of converged ones, and schedules the deletion of orphans
//!   (managed objects no team wants), which the tick deletes after the grace.

use super::backend::{AnyBackend, Backend};
use super::build::{ORG_LABEL, TEAM_LABEL};
use super::db;
use super::objects::{self, Kind};
use super::reconcile::{DRIFT, MANAGED, Outcome, Reconciler};
use super::request::Mode;
use super::{ProvisionError, admit};
use crate::bus::Bus;
use crate::domain::{NodeId, OrgId, now_ms};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const STREAM: &str = "PROVISION";
pub const CONSUMER: &str = "provisioner";
/// A run still pending this long after admission lost its nudge.
const STALE_PENDING_MS: i64 = 3_000;

/// The subject of a team's nudge.
pub fn subject(org: &OrgId, team: &NodeId) -> String {
    format!("ifox.provision.{org}.{team}")
}

fn parse_subject(subject: &str) -> Option<(OrgId, NodeId)> {
    let mut parts = subject.strip_prefix("ifox.provision.")?.split('.');
    let org = OrgId::parse(parts.next()?).ok()?;
    let team = NodeId::parse(parts.next()?).ok()?;
    parts.next().is_none().then_some((org, team))
}

/// The role's timers and consumer, sharing one reconciler.
#[derive(Clone)]
pub struct Worker {
    pub reconciler: Reconciler<AnyBackend>,
    pub grace: Duration,
    pub tick: Duration,
    pub resync_interval: Duration,
    /// Where dead letters go (set by [`Worker::run`]).
    pub bus: Option<Bus>,
}

impl Worker {
    /// The role from settings: the backend of `kube.backend` (a `kube` backend connects here, so
    /// a bad kubeconfig stops start-up) and the timers of `provision.*`.
    pub async fn from_settings(
        settings: &crate::settings::Settings,
        tenancy: crate::tenancy::Tenancy,
    ) -> Result<Worker, super::backend::BackendError> {
        use super::settings::BackendKind;
        let kube = &settings.kube;
        let backend = match kube.backend {
            BackendKind::Manifests => {
                AnyBackend::Manifests(super::manifests::ManifestsBackend::new(&kube.manifests_dir))
            }
            BackendKind::Kube => AnyBackend::Kube(
                super::kube_backend::KubeBackend::connect(
                    kube.url.as_deref(),
                    &kube.namespace,
                    kube.timeout,
                )
                .await?,
            ),
        };
        let p = &settings.provision;
        Ok(Worker {
            reconciler: Reconciler {
                tenancy,
                backend,
                options: super::reconcile::Options {
                    namespace: kube.namespace.clone(),
                    image: p.image.clone(),
                    availability_timeout: p.availability_timeout,
                    wait_delay: Duration::from_secs(2),
                    retries: 4,
                },
            },
            grace: p.grace,
            tick: p.tick,
            resync_interval: p.resync_interval,
            bus: None,
        })
    }

    /// Runs until `shutdown`: the consumer (when `bus` is given), the tick and the resync.
    pub async fn run(mut self, bus: Option<Bus>, shutdown: CancellationToken) {
        self.bus = bus.clone();
        let tick = tokio::spawn(self.clone().tick_loop(shutdown.clone()));
        let resync = tokio::spawn(self.clone().resync_loop(shutdown.clone()));
        if let Some(bus) = bus {
            self.consume(bus, shutdown.clone()).await;
        }
        shutdown.cancelled().await;
        let _ = tick.await;
        let _ = resync.await;
    }

    async fn tick_loop(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(e) = self.tick_once().await {
                tracing::warn!(error = %e, "provisioner tick failed; retrying on the next one");
            }
        }
    }

    async fn resync_loop(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.resync_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            match self.resync().await {
                Ok(r) => tracing::info!(
                    managed = r.managed,
                    repaired = r.repaired,
                    orphans = r.orphans,
                    "provisioner resync done"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "provisioner resync failed; retrying at the next one")
                }
            }
        }
    }

    /// Due deletions, and URLs removed behind the provisioner's back.
    pub async fn tick_once(&self) -> Result<(), ProvisionError> {
        let tenancy = &self.reconciler.tenancy;
        let rows = {
            let mut conn = tenancy
                .store()
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            db::list_deployments(&mut conn).await?
        };
        for row in rows
            .iter()
            .filter(|r| r.mode == Mode::Dedicated && r.url_set)
        {
            let mut conn = tenancy
                .store()
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            let node = crate::store::nodes::get(&mut conn, &row.org, &row.team).await?;
            drop(conn);
            if node.is_none_or(|n| n.config.get("agent_service_url").is_none()) {
                tracing::info!(org = %row.org, team = %row.team, "agent_service_url removed: back to shared, deletion scheduled");
                admit::url_removed(tenancy, row, self.grace).await?;
                self.pass(&row.org, &row.team).await?;
            }
        }
        // A run whose nudge never arrived (NATS down at admission, stream not there yet) is taken
        // up here rather than at the next resync.
        let stale = now_ms() - STALE_PENDING_MS;
        for row in rows
            .iter()
            .filter(|r| r.mode == Mode::Dedicated && r.updated_at < stale)
        {
            let mut conn = tenancy
                .store()
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            let run = db::get_run(&mut conn, &row.run_id).await?;
            drop(conn);
            if run.is_some_and(|r| r.status == "pending") {
                self.pass(&row.org, &row.team).await?;
            }
        }
        self.reconciler.delete_due().await?;
        Ok(())
    }

    /// One resync pass.
    pub async fn resync(&self) -> Result<ResyncReport, ProvisionError> {
        let r = &self.reconciler;
        let mut report = ResyncReport::default();
        let rows = {
            let mut conn = r
                .tenancy
                .store()
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            db::list_deployments(&mut conn).await?
        };
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for row in &rows {
            if row.mode != Mode::Dedicated {
                continue;
            }
            wanted.insert((row.org.to_string(), row.team.to_string()));
            let status = {
                let mut conn = r
                    .tenancy
                    .store()
                    .pool()
                    .acquire()
                    .await
                    .map_err(crate::store::StoreError::from)?;
                db::get_run(&mut conn, &row.run_id)
                    .await?
                    .map(|run| run.status)
            };
            match status.as_deref() {
                Some("succeeded") => {
                    let changed = r
                        .apply_objects(&row.org, &row.team, &r.desired(row))
                        .await?;
                    if changed > 0 {
                        tracing::info!(org = %row.org, team = %row.team, changed, "drift repaired");
                        metrics::counter!(DRIFT).increment(changed as u64);
                        report.repaired += changed;
                    }
                }
                Some("failed") | None => {}
                // A run whose nudge may have been lost (NATS down at admission): do it now.
                Some(_) => {
                    self.pass(&row.org, &row.team).await?;
                }
            }
        }
        let scheduled: BTreeSet<(String, String)> = {
            let mut conn = r
                .tenancy
                .store()
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            db::deletions(&mut conn)
                .await?
                .into_iter()
                .map(|(o, t, _, _)| (o.to_string(), t.to_string()))
                .collect()
        };
        for kind in Kind::ALL {
            for obj in r.backend.list_managed(kind).await? {
                report.managed += 1;
                let (Some(org), Some(team)) = (
                    objects::label(&obj, ORG_LABEL),
                    objects::label(&obj, TEAM_LABEL),
                ) else {
                    continue;
                };
                let key = (org.to_owned(), team.to_owned());
                if wanted.contains(&key) || scheduled.contains(&key) {
                    continue;
                }
                let (Ok(org), Ok(team)) = (OrgId::parse(org), NodeId::parse(team)) else {
                    continue;
                };
                let after = now_ms() + self.grace.as_millis() as i64;
                let mut conn = r
                    .tenancy
                    .store()
                    .pool()
                    .acquire()
                    .await
                    .map_err(crate::store::StoreError::from)?;
                db::schedule_deletion(&mut conn, &org, &team, "resync", after).await?;
                tracing::info!(%org, %team, kind = kind.name(), "orphan found: deletion scheduled after the grace");
                report.orphans += 1;
            }
        }
        metrics::gauge!(MANAGED).set(report.managed as f64);
        r.delete_due().await?;
        Ok(report)
    }

    async fn consume(&self, bus: Bus, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(500);
        loop {
            match self.consume_once(&bus, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "provisioner consumer unavailable")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    async fn consume_once(&self, bus: &Bus, shutdown: &CancellationToken) -> Result<(), String> {
        let stream = bus
            .jetstream()
            .get_stream(STREAM)
            .await
            .map_err(|e| e.to_string())?;
        let consumer: pull::Stream = stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.to_owned()),
                    filter_subject: "ifox.provision.>".to_owned(),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(120),
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = Box::pin(consumer.take_until(shutdown.clone().cancelled_owned()));
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| e.to_string())?;
            let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
            let ack = match parse_subject(&msg.subject) {
                None => {
                    self.dead_letter(
                        bus,
                        &msg.subject,
                        "bad_subject",
                        "not ifox.provision.<org>.<team>",
                    )
                    .await;
                    AckKind::Term
                }
                Some((org, team)) => match self.reconciler.reconcile_team(&org, &team).await {
                    Ok(Outcome::Done) => AckKind::Ack,
                    Ok(Outcome::Wait(d)) => AckKind::Nak(Some(d)),
                    Ok(Outcome::Failed(e)) => {
                        self.dead_letter(bus, &msg.subject, e.reason(), &e.to_string())
                            .await;
                        AckKind::Term
                    }
                    Err(e) => {
                        let backoff = Duration::from_millis(500)
                            * 2u32.saturating_pow(delivered.min(7) as u32);
                        tracing::warn!(%org, %team, error = %e, retry_in = ?backoff, "provisioning pass failed; will retry");
                        AckKind::Nak(Some(backoff.min(Duration::from_secs(60))))
                    }
                },
            };
            if let Err(e) = msg.ack_with(ack).await {
                tracing::warn!(error = %e, "cannot ack a provisioning nudge; it will be redelivered");
            }
        }
        Ok(())
    }

    /// One pass outside the consumer (tick, resync): a permanent failure is dead-lettered here too.
    async fn pass(&self, org: &OrgId, team: &NodeId) -> Result<(), ProvisionError> {
        if let Outcome::Failed(e) = self.reconciler.reconcile_team(org, team).await?
            && let Some(bus) = &self.bus
        {
            self.dead_letter(bus, &subject(org, team), e.reason(), &e.to_string())
                .await;
        }
        Ok(())
    }

    async fn dead_letter(&self, bus: &Bus, subject: &str, reason: &str, error: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("ifox-original-subject", subject);
        headers.insert("ifox-reason", reason);
        let body = serde_json::json!({"stage": "provisioner", "reason": reason, "subject": subject, "error": error});
        let to = format!("ifox.deadletter.provisioner.{reason}");
        if let Err(e) = bus.publish(to, headers, body.to_string().into()).await {
            tracing::error!(error = %e, %subject, "cannot dead-letter a failed provisioning run");
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResyncReport {
    pub managed: usize,
    pub repaired: usize,
    pub orphans: usize,
}

/// Publishes a nudge for a team (the API after admission). `Nats-Msg-Id` is the run id, so a retried
/// publish is one message.
pub async fn nudge(
    bus: &Bus,
    org: &OrgId,
    team: &NodeId,
    run_id: &str,
) -> Result<(), crate::bus::PublishError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", run_id);
    let body = serde_json::json!({"org_id": org, "team_id": team, "run_id": run_id});
    bus.publish(subject(org, team), headers, body.to_string().into())
        .await
        .map(|_| ())
}
