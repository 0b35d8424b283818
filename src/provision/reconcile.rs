//! One reconcile pass for one team, from the database's desired state (never a message body), so
//! any number of nudges, replays or crashes converge on the same result.
//!
//! Dedicated: `apply` (each object is compared with the live one and applied only when something
//! differs, so a second pass issues no mutation; transient API errors are retried with a growing
//! delay, a refusal fails the run) → `wait_available` (when the Deployment is not available yet the
//! pass returns [`Outcome::Wait`]: the worker redelivers later, nothing blocks) → `set_url` (only now
//! is `agent_service_url` pointed at the service; objects no longer wanted, e.g. those left in the
//! previous namespace when `provision.namespace_per_team` changed, are removed after that). Shared:
//! the URL is gone (admission removed it), the pipeline's objects are applied when the team has a
//! pipeline, and the deletion of the rest is scheduled; [`Reconciler::delete_due`] deletes within a
//! tick of the deadline.
//!
//! Tenant isolation: an existing object (the team's Namespace included) is applied over only when
//! its `ifox.dev/org` and `ifox.dev/team` labels name this team; otherwise the run fails with
//! `object_owned_by_another_tenant` and the object is left as it is. Deletions only ever select
//! objects by this team's labels ([`super::apply`]).

use super::ProvisionError;
use super::backend::Backend;
use super::build;
use super::objects::{self, Kind};
use super::request::{DedicatedSpec, Mode};
use crate::domain::{NodeId, OrgId, now_ms, rfc3339};
use crate::store::StoreError;
use crate::store::deployments::{self, DeploymentRow};
use crate::store::provision_runs;
use crate::tenancy::{ConfigWrite, Tenancy, scope::provisioner_scope};
use serde_json::json;
use std::time::{Duration, Instant};

pub const DEDICATED_STEPS: &[&str] = &["apply", "wait_available", "set_url"];
pub const SHARED_STEPS: &[&str] = &["switch_to_shared", "schedule_deletion"];

pub const APPLIED: &str = "ifox_provision_applied_objects_total";
pub const DRIFT: &str = "ifox_provision_drift_repaired_total";
pub const ERRORS: &str = "ifox_provision_reconcile_errors_total";
pub const DURATION: &str = "ifox_provision_reconcile_duration_seconds";
pub const DELETED: &str = "ifox_provision_deleted_objects_total";
pub const MANAGED: &str = "ifox_provision_managed_objects";

/// What the worker does with the nudge after a pass.
#[derive(Debug)]
pub enum Outcome {
    /// Converged (or nothing to do): ack.
    Done,
    /// Not there yet (Deployment not available): redeliver after the delay.
    Wait(Duration),
    /// The run failed for good: dead-letter with this error, then ack.
    Failed(ProvisionError),
}

/// Settings a pass needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The platform namespace (`kube.namespace`): where team objects live, or the prefix of the
    /// team namespaces.
    pub namespace: String,
    pub image: String,
    pub availability_timeout: Duration,
    /// How often the availability is looked at again.
    pub wait_delay: Duration,
    /// In-pass retries of a transient API error before the pass gives up (the nudge is redelivered).
    pub retries: usize,
    /// `provision.namespace_per_team`.
    pub namespace_per_team: bool,
    /// `provision.service_account`: named by each team namespace's RoleBinding.
    pub service_account: String,
    /// The runtime of a shared team's pipeline pods (the platform's defaults).
    pub shared_pipeline: DedicatedSpec,
}

impl Default for Options {
    /// The options of the default settings.
    fn default() -> Self {
        let kube = crate::settings::provision::KubeSettings::default();
        let p = crate::settings::provision::ProvisionSettings::default();
        let policy = super::policy::Policy::from_settings(&p);
        Options {
            namespace: kube.namespace,
            image: p.image,
            availability_timeout: p.availability_timeout,
            wait_delay: Duration::from_secs(2),
            retries: 4,
            namespace_per_team: p.namespace_per_team,
            service_account: p.service_account,
            shared_pipeline: super::request::default_spec(&policy)
                .expect("the built-in provisioning defaults are valid quantities"),
        }
    }
}

#[derive(Clone)]
pub struct Reconciler<B> {
    pub tenancy: Tenancy,
    pub backend: B,
    pub options: Options,
}

impl<B: Backend + Clone> Reconciler<B> {
    /// Reconciles one team. `Err` is transient (retry later); permanent failures are `Ok(Failed)`
    /// and already recorded on the run.
    pub async fn reconcile_team(
        &self,
        org: &OrgId,
        team: &NodeId,
    ) -> Result<Outcome, ProvisionError> {
        let started = Instant::now();
        let row = {
            let mut conn = self.conn().await?;
            deployments::get(&mut conn, org, team).await?
        };
        let result = match row {
            None => Ok(Outcome::Done),
            Some(row) if row.mode == Mode::Dedicated => self.dedicated(&row).await,
            Some(row) => self.shared(&row).await,
        };
        metrics::histogram!(DURATION).record(started.elapsed().as_secs_f64());
        match &result {
            Err(e) => metrics::counter!(ERRORS, "reason" => e.reason()).increment(1),
            Ok(Outcome::Failed(e)) => {
                metrics::counter!(ERRORS, "reason" => e.reason()).increment(1)
            }
            _ => {}
        }
        result
    }

    pub(super) async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.tenancy.store().pool().acquire().await?)
    }

    pub(super) async fn step(
        &self,
        run: &str,
        step: &str,
        status: &str,
        detail: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let position = DEDICATED_STEPS
            .iter()
            .chain(SHARED_STEPS)
            .chain(&["delete_objects"])
            .position(|s| *s == step)
            .unwrap_or(9) as i64;
        let attempt = status != "pending";
        let mut conn = self.conn().await?;
        provision_runs::put_step(
            &mut conn,
            run,
            step,
            position,
            status,
            attempt,
            detail,
            error,
            now_ms(),
        )
        .await
    }

    async fn run_status(
        &self,
        run: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        provision_runs::set_status(&mut conn, run, status, error, now_ms()).await
    }

    async fn fail(
        &self,
        run: &str,
        step: &str,
        e: ProvisionError,
    ) -> Result<Outcome, ProvisionError> {
        let msg = e.to_string();
        self.step(run, step, "failed", None, Some(&msg)).await?;
        self.run_status(run, "failed", Some(&msg)).await?;
        tracing::error!(run_id = run, step, error = %msg, "provisioning run failed");
        Ok(Outcome::Failed(e))
    }

    async fn dedicated(&self, row: &DeploymentRow) -> Result<Outcome, ProvisionError> {
        let run = row.run_id.as_str();
        let status = {
            let mut conn = self.conn().await?;
            provision_runs::get(&mut conn, run).await?
        };
        let Some(status) = status else {
            return Ok(Outcome::Done);
        };
        if status.status == "failed" {
            return Ok(Outcome::Done);
        }
        if status.status == "pending" {
            self.run_status(run, "running", None).await?;
        }
        let wanted = self.desired(row);
        if let Some(failed) = self.apply_step(run, row, &wanted).await? {
            return Ok(failed);
        }
        let name = build::object_name(&row.org, &row.team);
        let namespace = self.team_namespace(row);
        if self.backend.observes_status() {
            let live = self
                .backend
                .get(Kind::Deployment, &namespace, &name)
                .await?;
            if !live.as_ref().is_some_and(objects::deployment_available) {
                let waited = now_ms().saturating_sub(status.created_at).max(0) as u64;
                if waited > self.options.availability_timeout.as_millis() as u64 {
                    let e = ProvisionError::NotAvailable {
                        name,
                        waited_s: waited / 1000,
                    };
                    return self.fail(run, "wait_available", e).await;
                }
                self.step(run, "wait_available", "waiting", None, None)
                    .await?;
                return Ok(Outcome::Wait(self.options.wait_delay));
            }
        }
        self.step(run, "wait_available", "succeeded", None, None)
            .await?;
        let url = build::service_url(&row.org, &row.team, &namespace);
        let scope = provisioner_scope(&row.org);
        let current = self.tenancy.get_config(&scope, &row.team).await;
        let needs = match &current {
            Ok((config, _)) => {
                config.get("agent_service_url").and_then(|v| v.as_str()) != Some(url.as_str())
            }
            Err(crate::tenancy::TenancyError::NotFound { .. }) => {
                let e = ProvisionError::NotFound(format!("team {}", row.team));
                return self.fail(run, "set_url", e).await;
            }
            Err(_) => true,
        };
        if needs {
            let patch = ConfigWrite::Patch(json!({ "agent_service_url": url }));
            match self
                .tenancy
                .write_config(&scope, &row.team, patch, None)
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    let e = ProvisionError::from(e);
                    if e.is_transient() {
                        return Err(e);
                    }
                    return self.fail(run, "set_url", e).await;
                }
            }
        }
        {
            let mut conn = self.conn().await?;
            deployments::set_url_set(&mut conn, &row.org, &row.team, row.generation, true).await?;
        }
        self.step(run, "set_url", "succeeded", Some(&url), None)
            .await?;
        // Only now that the URL names the wanted service may an object it replaced go (objects of
        // the previous namespace, an optional object turned off).
        match self.prune(&row.org, &row.team, &wanted).await {
            Ok(_) => {}
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => return self.fail(run, "set_url", e.into()).await,
        }
        if status.status != "succeeded" {
            self.run_status(run, "succeeded", None).await?;
        }
        Ok(Outcome::Done)
    }

    /// The `apply` step: `Some(Failed)` when the cluster refused an object (the run is failed),
    /// `Err` when it is unavailable (the pass is retried).
    async fn apply_step(
        &self,
        run: &str,
        row: &DeploymentRow,
        wanted: &[super::objects::Desired],
    ) -> Result<Option<Outcome>, ProvisionError> {
        match self.apply_objects(&row.org, &row.team, wanted).await {
            Ok(changed) => {
                let detail = format!("{} objects, {changed} changed", wanted.len());
                self.step(run, "apply", "succeeded", Some(&detail), None)
                    .await?;
                Ok(None)
            }
            Err(e) if e.is_transient() => {
                self.step(run, "apply", "retrying", None, Some(&e.to_string()))
                    .await?;
                Err(e.into())
            }
            Err(e) => Ok(Some(self.fail(run, "apply", e.into()).await?)),
        }
    }

    async fn shared(&self, row: &DeploymentRow) -> Result<Outcome, ProvisionError> {
        let run = row.run_id.as_str();
        let scope = provisioner_scope(&row.org);
        match self.tenancy.get_config(&scope, &row.team).await {
            Ok((config, _)) if config.get("agent_service_url").is_some() => {
                let patch = ConfigWrite::Patch(json!({ "agent_service_url": null }));
                self.tenancy
                    .write_config(&scope, &row.team, patch, None)
                    .await?;
            }
            Ok(_) | Err(crate::tenancy::TenancyError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.step(run, "switch_to_shared", "succeeded", None, None)
            .await?;
        // A shared team's pipeline (its CronJob, Secret and, per team, namespace) is applied now;
        // what only the dedicated runtime needed goes with the scheduled deletion.
        if row.pipeline.is_some()
            && let Some(failed) = self.apply_step(run, row, &self.desired(row)).await?
        {
            return Ok(failed);
        }
        let deadline = {
            let mut conn = self.conn().await?;
            deployments::deletions(&mut conn)
                .await?
                .into_iter()
                .find(|(o, t, _, _)| *o == row.org && *t == row.team)
                .map(|(_, _, _, at)| at)
        };
        let detail = match deadline {
            Some(at) => format!("objects deleted after {}", rfc3339(at)),
            None => "no dedicated objects to delete".to_owned(),
        };
        self.step(run, "schedule_deletion", "succeeded", Some(&detail), None)
            .await?;
        self.run_status(run, "succeeded", None).await?;
        Ok(Outcome::Done)
    }
}
