//! A team's objects against the cluster: what it should have ([`Reconciler::desired`], in which
//! namespace), applying what differs, and removing what is no longer wanted. Every removal selects
//! objects by this team's `ifox.dev/org`/`ifox.dev/team` labels, never by name alone, so another
//! tenant's object is never deleted; an apply over a live object labelled for someone else is
//! refused ([`objects::refuse_foreign`]).
//!
//! Where a team's objects are: in the platform namespace, or with `provision.namespace_per_team` in
//! its own namespace (whose Namespace object is the team's too). The removal looks in both while
//! the option is on, so a team moved into its namespace leaves nothing behind in the platform one;
//! with the option off, the provisioner has no rights outside the platform namespace and looks
//! only there.

use super::backend::{Backend, BackendError};
use super::build::{self, ORG_LABEL, OwnNamespace, TEAM_LABEL};
use super::objects::{self, Desired, Kind};
use super::reconcile::{APPLIED, DELETED, Reconciler};
use super::request::Mode;
use crate::domain::{NodeId, OrgId};
use crate::store::deployments::DeploymentRow;
use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;
use std::time::Duration;

impl<B: Backend + Clone> Reconciler<B> {
    /// The namespace of a team's objects.
    pub fn namespace_of(&self, org: &OrgId, team: &NodeId) -> String {
        if self.options.namespace_per_team {
            build::team_namespace(&self.options.namespace, org, team)
        } else {
            self.options.namespace.clone()
        }
    }

    pub(super) fn team_namespace(&self, row: &DeploymentRow) -> String {
        self.namespace_of(&row.org, &row.team)
    }

    /// The desired objects of a team: a dedicated one's runtime, a shared one's pipeline (nothing
    /// for a shared team without one).
    pub fn desired(&self, row: &DeploymentRow) -> Vec<Desired> {
        let spec = match (row.mode, &row.spec) {
            (Mode::Dedicated, Some(spec)) => spec,
            (Mode::Dedicated, None) => return vec![],
            (Mode::Shared, _) => &self.options.shared_pipeline,
        };
        let namespace = self.team_namespace(row);
        build::build(&build::Input {
            org: &row.org,
            team: &row.team,
            namespace: &namespace,
            own_namespace: self.options.namespace_per_team.then_some(OwnNamespace {
                platform_namespace: &self.options.namespace,
                provisioner_account: &self.options.service_account,
            }),
            default_image: &self.options.image,
            mode: row.mode,
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

    /// Applies each object whose live state differs from the desired one (never over another
    /// tenant's). Returns how many objects were changed.
    pub async fn apply_objects(
        &self,
        org: &OrgId,
        team: &NodeId,
        wanted: &[Desired],
    ) -> Result<usize, BackendError> {
        let mut changed = 0;
        for obj in wanted {
            let live = (|| self.backend.get(obj.kind, &obj.namespace, &obj.name))
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
        Ok(changed)
    }

    /// Deletes the team's managed objects that are not in `wanted` (its Namespace last, with what
    /// is left in it). Returns how many were deleted.
    pub async fn prune(
        &self,
        org: &OrgId,
        team: &NodeId,
        wanted: &[Desired],
    ) -> Result<usize, BackendError> {
        let mut n = 0;
        for kind in Kind::ALL.into_iter().rev() {
            for live in self.team_objects(kind, org, team).await? {
                let name = objects::name_of(&live).unwrap_or_default();
                let ns = objects::namespace_of(&live).unwrap_or_default();
                let keep = wanted
                    .iter()
                    .any(|w| w.kind == kind && w.name == name && w.namespace == ns);
                if !keep {
                    self.delete_one(kind, ns, name).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Deletes every managed object of a team; returns how many there were.
    pub async fn delete_team_objects(
        &self,
        org: &OrgId,
        team: &NodeId,
    ) -> Result<usize, BackendError> {
        self.prune(org, team, &[]).await
    }

    /// The namespaces the provisioner looks into for objects of `kind` (`""` for the cluster, for a
    /// `Namespace`). With the option off, only the platform namespace, and only the kinds it
    /// builds there (it holds no rights on Namespaces or RoleBindings then).
    pub(super) fn namespaces_for(&self, kind: Kind, org: &OrgId, team: &NodeId) -> Vec<String> {
        let per_team_only = matches!(kind, Kind::Namespace | Kind::RoleBinding);
        match (self.options.namespace_per_team, kind.namespaced()) {
            (false, _) if per_team_only => vec![],
            (false, _) => vec![self.options.namespace.clone()],
            (true, false) => vec![String::new()],
            (true, true) if per_team_only => vec![self.namespace_of(org, team)],
            (true, true) => vec![self.options.namespace.clone(), self.namespace_of(org, team)],
        }
    }

    /// Every managed object of `kind` in `namespace`, with transient errors retried.
    pub(super) async fn list_managed(
        &self,
        kind: Kind,
        namespace: &str,
    ) -> Result<Vec<Value>, BackendError> {
        (|| self.backend.list_managed(kind, namespace))
            .retry(self.retry_policy())
            .when(BackendError::is_transient)
            .await
    }

    /// The live objects of one kind labelled for exactly this team (never another tenant's).
    async fn team_objects(
        &self,
        kind: Kind,
        org: &OrgId,
        team: &NodeId,
    ) -> Result<Vec<Value>, BackendError> {
        let mut out = Vec::new();
        for ns in self.namespaces_for(kind, org, team) {
            out.extend(self.list_managed(kind, &ns).await?.into_iter().filter(|o| {
                objects::label(o, ORG_LABEL) == Some(org.as_str())
                    && objects::label(o, TEAM_LABEL) == Some(team.as_str())
            }));
        }
        Ok(out)
    }

    async fn delete_one(&self, kind: Kind, ns: &str, name: &str) -> Result<(), BackendError> {
        let deleted = (|| self.backend.delete(kind, ns, name))
            .retry(self.retry_policy())
            .when(BackendError::is_transient)
            .await?;
        if deleted {
            metrics::counter!(DELETED, "kind" => kind.name()).increment(1);
        }
        Ok(())
    }
}
