//! Provisioning: teams moved between the shared runtime and a dedicated one, their Kubernetes
//! objects reconciled idempotently by server-side apply.
//!
//! The pipeline (after stackable's operators): the API *admits* a request into the database in one
//! transaction ([`admit`]) and nudges `ifox.provision.<org>.<team>`; the `provisioner` role
//! ([`worker`]) *dereferences* the desired state from the database (never the message), *builds* the
//! objects in pure code ([`build`]), *applies* them through a [`backend::Backend`], waits for
//! availability (as a delayed redelivery, not a blocked task) and only then points the team's
//! `agent_service_url` at its service ([`reconcile`]). Going back to shared removes the URL at once and
//! deletes the objects after a grace period.
//!
//! # Layout
//! - [`request`]: the API body, validated with field names ([`units`]: quantities, labels;
//!   the stored desired runtime is `domain::runtime`; [`policy`]: what the platform allows of a
//!   pod spec, and the defaults). [`names`]: object and namespace names, unique across tenants.
//!   [`build`]: desired objects (pure); [`team_namespace`]: a team's own namespace, its RBAC and
//!   quota.
//! - [`objects`]: kinds and the untyped object shape at the IO seam. [`backend`], [`kube_backend`],
//!   [`manifests`]: the cluster. The tables of migration 0004 are `store::{deployments,
//!   provision_runs}`.
//! - [`admit`]: the API's transaction (team-level writes through tenancy's `*_in` functions). [`reconcile`]: one team, one pass ([`apply`]: a team's objects applied and removed); [`deletion`]: due deletions. [`worker`]: the role ([`consumer`]: its
//!   NATS side).
//! - [`api`]: HTTP handlers. [`cost`]: the monthly estimate (pure). The settings types are in
//!   [`crate::settings::provision`].

pub mod admit;
pub mod api;
pub mod apply;
pub mod backend;
pub mod build;
pub mod consumer;
pub mod cost;
pub mod deletion;
pub mod kube_backend;
pub mod manifests;
pub use crate::domain::kube_names as names;
pub mod objects;
pub mod policy;
pub mod reconcile;
pub mod replica_gauges;
pub mod request;
pub mod team_namespace;
pub mod units;
pub mod worker;

use crate::store::StoreError;
use crate::tenancy::TenancyError;

/// Every way provisioning can refuse or fail, each with its HTTP answer or its disposition.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Request(#[from] request::RequestError),
    #[error("idempotency key {key:?} was used with a different request")]
    IdempotencyMismatch { key: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error("deployment {name} did not become available within {waited_s} s")]
    NotAvailable { name: String, waited_s: u64 },
}

impl ProvisionError {
    /// Worth retrying later (database, cluster or NATS unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            ProvisionError::Backend(e) => e.is_transient(),
            ProvisionError::Store(StoreError::Corrupt(_)) => false,
            ProvisionError::Store(_) => true,
            ProvisionError::Tenancy(TenancyError::Store(StoreError::Corrupt(_))) => false,
            ProvisionError::Tenancy(TenancyError::Store(_)) => true,
            ProvisionError::Tenancy(TenancyError::VersionMismatch { .. }) => true,
            _ => false,
        }
    }

    /// The metric and dead-letter label.
    pub fn reason(&self) -> &'static str {
        match self {
            ProvisionError::Request(_) => "invalid_request",
            ProvisionError::IdempotencyMismatch { .. } => "idempotency_mismatch",
            ProvisionError::NotFound(_) => "not_found",
            ProvisionError::Conflict(_) => "conflict",
            ProvisionError::Tenancy(_) => "tenancy",
            ProvisionError::Store(_) => "database",
            ProvisionError::Backend(e) => e.reason(),
            ProvisionError::NotAvailable { .. } => "not_available",
        }
    }
}

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod request_tests;
