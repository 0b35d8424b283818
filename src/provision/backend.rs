//! The IO seam to "the cluster": a small trait with two real implementations,
//! [`super::kube_backend::KubeBackend`] (the API server, by server-side apply) and
//! [`super::manifests::ManifestsBackend`] (YAML files in a folder), and [`AnyBackend`] that picks one
//! from settings. Nothing above this trait knows which one runs.
//!
//! Every error says what the caller must do with it: [`BackendError::Transient`] is retried with a
//! growing delay (API 5xx, 409, 429, timeouts, connection failures); [`BackendError::Rejected`] is
//! final (the API refused the object, e.g. 422) and fails the run with the API's message;
//! [`BackendError::OwnedByAnotherTenant`] is final too (the name is taken by another tenant).

use super::kube_backend::KubeBackend;
use super::manifests::ManifestsBackend;
use super::objects::{Desired, Kind};
use serde_json::Value;
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cluster temporarily unavailable: {0}")]
    Transient(String),
    #[error("the cluster refused {kind} {name} ({status}): {message}")]
    Rejected {
        kind: &'static str,
        name: String,
        status: u16,
        message: String,
    },
    #[error("cannot configure the cluster client: {0}")]
    Config(String),
    /// The live object of that name belongs to another tenant (or to no ifox tenant): the apply is
    /// refused, never forced over it. The API's answer for this is 409.
    #[error(
        "object_owned_by_another_tenant (409): {kind} {name} is labelled org {org:?} team {team:?}, not this team; it is left untouched"
    )]
    OwnedByAnotherTenant {
        kind: &'static str,
        name: String,
        org: String,
        team: String,
    },
}

impl BackendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, BackendError::Transient(_))
    }
    /// The metric and dead-letter label.
    pub fn reason(&self) -> &'static str {
        match self {
            BackendError::Transient(_) => "cluster_unavailable",
            BackendError::Rejected { .. } => "object_rejected",
            BackendError::Config(_) => "cluster_config",
            BackendError::OwnedByAnotherTenant { .. } => "object_owned_by_another_tenant",
        }
    }
}

/// The cluster as the provisioner needs it. Objects are addressed by kind, namespace and name; for
/// a cluster-scoped kind (`Namespace`) the namespace is ignored.
pub trait Backend: Send + Sync + 'static {
    /// The live object, or `None` when it does not exist.
    fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Value>, BackendError>> + Send;
    /// Server-side apply under field manager `ifox` (forced: ifox owns these fields), into the
    /// object's own namespace.
    fn apply(&self, obj: &Desired) -> impl Future<Output = Result<Value, BackendError>> + Send;
    /// Every object of `kind` in `namespace` (of the cluster, for a cluster-scoped kind) labelled
    /// `app.kubernetes.io/managed-by=ifox`.
    fn list_managed(
        &self,
        kind: Kind,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<Value>, BackendError>> + Send;
    /// Deletes; `false` when it was already gone.
    fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Whether this backend can see Deployment status. The manifests backend cannot: a written file
    /// counts as available.
    fn observes_status(&self) -> bool;
}

/// The backend chosen by `kube.backend`.
#[derive(Clone)]
pub enum AnyBackend {
    Kube(KubeBackend),
    Manifests(ManifestsBackend),
}

impl Backend for AnyBackend {
    async fn get(&self, kind: Kind, ns: &str, name: &str) -> Result<Option<Value>, BackendError> {
        match self {
            AnyBackend::Kube(b) => b.get(kind, ns, name).await,
            AnyBackend::Manifests(b) => b.get(kind, ns, name).await,
        }
    }
    async fn apply(&self, obj: &Desired) -> Result<Value, BackendError> {
        match self {
            AnyBackend::Kube(b) => b.apply(obj).await,
            AnyBackend::Manifests(b) => b.apply(obj).await,
        }
    }
    async fn list_managed(&self, kind: Kind, ns: &str) -> Result<Vec<Value>, BackendError> {
        match self {
            AnyBackend::Kube(b) => b.list_managed(kind, ns).await,
            AnyBackend::Manifests(b) => b.list_managed(kind, ns).await,
        }
    }
    async fn delete(&self, kind: Kind, ns: &str, name: &str) -> Result<bool, BackendError> {
        match self {
            AnyBackend::Kube(b) => b.delete(kind, ns, name).await,
            AnyBackend::Manifests(b) => b.delete(kind, ns, name).await,
        }
    }
    fn observes_status(&self) -> bool {
        match self {
            AnyBackend::Kube(b) => b.observes_status(),
            AnyBackend::Manifests(b) => b.observes_status(),
        }
    }
}
