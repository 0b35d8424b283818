//! One reconcile pass for one team, from the database's desired state (never a message body), so
//! any number of nudges, replays or crashes converge on the same result.
//!
//! Dedicated: `apply` (each object is compared with the live one and applied only when something
//! differs, so a second pass issues no mutation; transient API errors are retried with a growing
//! delay, a refusal fails the run) → `wait_available` (when the Deployment is not available yet the
//! pass returns [`Outcome::Wait`]: the worker redelivers later, nothing blocks) → `set_url` (only now
//! is `agent_service_url` pointed at the service). Shared: the URL is gone (admission removed it) and
//! the deletion is scheduled; [`Reconciler::delete_due`] deletes within a tick of the deadline.
//!
//! Tenant isolation: an existing object is applied over only when its `ifox.dev/org` and
//! `ifox.dev/team` labels name this team; otherwise the run fails with
//! `object_owned_by_another_tenant` and the object is left as it is. Deletions only ever select
//! objects by this team's labels.

use super::ProvisionError;
use super::backend::{Backend, BackendError};
use super::build::{self, ORG_LABEL, TEAM_LABEL};
use super::objects::{self, Desired, Kind};
use super::request::Mode;
use crate::domain::{NodeId, OrgId, now_ms, rfc3339};
use crate::store::StoreError;
use crate::store::deployments::{self, DeploymentRow};
use crate::store::provision_runs;
use crate::tenancy::{ConfigWrite, Tenancy, scope::provisioner_scope};
use backon::{ExponentialBuilder, Retryable};
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
    pub namespace: String,
    pub image: String,
    pub availability_timeout: Duration,
    /// How often the availability is looked at again.
    pub wait_delay: Duration,
    /// In-pass retries of a transient API error before the pass gives up (the nudge is redelivered).
    pub retries: usize,
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

    /// The desired objects of a dedicated team.
    pub fn desired(&self, row: &DeploymentRow) -> Vec<Desired> {
        let Some(spec) = &row.spec else { return vec![] };
        build::build(&build::Input {
            org: &row.org,
            team: &row.team,
            namespace: &self.options.namespace,
            default_image: &self.options.image,
            spec,
            pipeline: row.pipeline.as_ref(),
            token: row.runtime_token.as_deref().unwrap_or_default(),
        })
    }

    fn retry_policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(self.options.retries)
    }

    /// Applies each object whose live state differs from the desired one, and deletes the team's
    /// managed objects that are no longer desired. Returns how many objects were changed.
    pub async fn apply_objects(
        &self,
        org: &OrgId,
        team: &NodeId,
        wanted: &[Desired],
    ) -> Result<usize, BackendError> {
        let mut changed = 0;
        for obj in wanted {
            let live = (|| self.backend.get(obj.kind, &obj.name))
                .retry(self.retry_policy())
                .when(BackendError::is_transient)
                .await?;
            if let Some(l) = &live {
                objects::refuse_foreign(obj, l, org, team)?;
                if objects::contains(l, &obj.body) {
                    continue;
                }
            }
            (|| self.backend.apply(obj))
                .retry(self.retry_policy())
                .when(BackendError::is_transient)
                .await?;
            metrics::counter!(APPLIED, "kind" => obj.kind.name()).increment(1);
            changed += 1;
        }
        for kind in Kind::ALL {
            for live in self.team_objects(kind, org, team).await? {
                let name = objects::name_of(&live).unwrap_or_default().to_owned();
                if !wanted.iter().any(|w| w.kind == kind && w.name == name) {
                    self.delete_one(kind, &name).await?;
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    /// The live objects of one kind labelled for exactly this team (never another tenant's).
    async fn team_objects(
        &self,
        kind: Kind,
        org: &OrgId,
        team: &NodeId,
    ) -> Result<Vec<serde_json::Value>, BackendError> {
        let all = (|| self.backend.list_managed(kind))
            .retry(self.retry_policy())
            .when(BackendError::is_transient)
            .await?;
        Ok(all
            .into_iter()
            .filter(|o| {
                objects::label(o, ORG_LABEL) == Some(org.as_str())
                    && objects::label(o, TEAM_LABEL) == Some(team.as_str())
            })
            .collect())
    }

    async fn delete_one(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        let deleted = (|| self.backend.delete(kind, name))
            .retry(self.retry_policy())
            .when(BackendError::is_transient)
            .await?;
        if deleted {
            metrics::counter!(DELETED, "kind" => kind.name()).increment(1);
        }
        Ok(())
    }

    /// Deletes every managed object of a team; returns how many there were.
    pub async fn delete_team_objects(
        &self,
        org: &OrgId,
        team: &NodeId,
    ) -> Result<usize, BackendError> {
        let mut n = 0;
        for kind in Kind::ALL.into_iter().rev() {
            for live in self.team_objects(kind, org, team).await? {
                self.delete_one(kind, objects::name_of(&live).unwrap_or_default())
                    .await?;
                n += 1;
            }
        }
        Ok(n)
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
        match self.apply_objects(&row.org, &row.team, &wanted).await {
            Ok(changed) => {
                let detail = format!("{} objects, {changed} changed", wanted.len());
                self.step(run, "apply", "succeeded", Some(&detail), None)
                    .await?;
            }
            Err(e) if e.is_transient() => {
                self.step(run, "apply", "retrying", None, Some(&e.to_string()))
                    .await?;
                return Err(e.into());
            }
            Err(e) => return self.fail(run, "apply", e.into()).await,
        }
        let name = build::object_name(&row.org, &row.team);
        if self.backend.observes_status() {
            let live = self.backend.get(Kind::Deployment, &name).await?;
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
        let url = build::service_url(&row.org, &row.team, &self.options.namespace);
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
        if status.status != "succeeded" {
            self.run_status(run, "succeeded", None).await?;
        }
        Ok(Outcome::Done)
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
