//! The `provisioner` role: a durable JetStream consumer on PROVISION plus two timers.
//!
//! - Nudges (`ifox.provision.<org>.<team>`) only say which team to look at; the pass reads the
//!   database ([`super::consumer`]: acks, delayed NAKs, dead letters).
//! - The tick (`provision.tick`, 1 s): deletes objects whose grace has passed (so a deletion is at
//!   most a tick late, not a resync late) and notices teams whose `agent_service_url` someone removed
//!   through the config API (dedicated → shared: the deletion is scheduled).
//! - The resync (at start and every `provision.resync_interval`): reconciles every team whose nudge
//!   may have been lost, repairs drift of converged ones, and schedules the deletion of orphans
//!   (managed objects no team wants), which the tick deletes after the grace.

use super::backend::{AnyBackend, Backend};
use super::build::{ORG_LABEL, TEAM_LABEL};
use super::objects::{self, Kind};
use super::reconcile::{DRIFT, ERRORS, MANAGED, Outcome, Reconciler};
use super::request::Mode;
use super::{ProvisionError, admit};
use crate::bus::Bus;
use crate::domain::{NodeId, OrgId, now_ms};
use crate::store::{deployments, provision_runs};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A run still pending this long after admission lost its nudge.
const STALE_PENDING_MS: i64 = 3_000;

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
        use crate::settings::provision::BackendKind;
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
    pub async fn run(
        mut self,
        bus: Option<Bus>,
        health: crate::bus::Health,
        shutdown: CancellationToken,
    ) {
        self.bus = bus.clone();
        let tick = tokio::spawn(self.clone().tick_loop(shutdown.clone()));
        let resync = tokio::spawn(self.clone().resync_loop(shutdown.clone()));
        if let Some(bus) = bus {
            self.consume(bus, health, shutdown.clone()).await;
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
            deployments::list(&mut conn).await?
        };
        for row in rows
            .iter()
            .filter(|r| r.mode == Mode::Dedicated && r.url_set)
        {
            // The in-memory catalog is the cheap filter (no query per team per tick); it may lag
            // behind another replica's write, so the database confirms before anything changes.
            let gone_in_catalog = tenancy
                .catalog()
                .raw_chain(&row.org, &row.team)
                .and_then(|chain| {
                    chain
                        .last()
                        .map(|(_, _, raw, _)| raw.get("agent_service_url").is_none())
                })
                .unwrap_or(true);
            if !gone_in_catalog {
                continue;
            }
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
        let stale = {
            let mut conn = tenancy
                .store()
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            provision_runs::stale_pending(&mut conn, now_ms() - STALE_PENDING_MS).await?
        };
        for (org, team) in stale {
            self.pass(&org, &team).await?;
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
            deployments::list(&mut conn).await?
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
                provision_runs::get(&mut conn, &row.run_id)
                    .await?
                    .map(|run| run.status)
            };
            match status.as_deref() {
                Some("succeeded") => {
                    let changed = match r.apply_objects(&row.org, &row.team, &r.desired(row)).await
                    {
                        Ok(changed) => changed,
                        Err(e) if e.is_transient() => return Err(e.into()),
                        // One team's refused object (e.g. a name now held by another tenant) must
                        // not stop the resync of every other team.
                        Err(e) => {
                            tracing::error!(org = %row.org, team = %row.team, error = %e, "resync could not repair the team");
                            metrics::counter!(ERRORS, "reason" => e.reason()).increment(1);
                            continue;
                        }
                    };
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
            deployments::deletions(&mut conn)
                .await?
                .into_iter()
                .map(|(o, t, _, _)| (o.to_string(), t.to_string()))
                .collect()
        };
        for kind in Kind::ALL {
            let objs = r.backend.list_managed(kind).await?;
            if kind == Kind::Deployment && r.backend.observes_status() {
                super::replica_gauges::record(&objs);
            }
            for obj in objs {
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
                deployments::schedule_deletion(&mut conn, &org, &team, "resync", after).await?;
                tracing::info!(%org, %team, kind = kind.name(), "orphan found: deletion scheduled after the grace");
                report.orphans += 1;
            }
        }
        metrics::gauge!(MANAGED).set(report.managed as f64);
        r.delete_due().await?;
        Ok(report)
    }

    /// One pass outside the consumer (tick, resync): a permanent failure is dead-lettered here too.
    async fn pass(&self, org: &OrgId, team: &NodeId) -> Result<(), ProvisionError> {
        if let Outcome::Failed(e) = self.reconciler.reconcile_team(org, team).await?
            && let Some(bus) = &self.bus
        {
            self.dead_letter_pass(bus, org, team, e.reason(), &e.to_string())
                .await;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResyncReport {
    pub managed: usize,
    pub repaired: usize,
    pub orphans: usize,
}
