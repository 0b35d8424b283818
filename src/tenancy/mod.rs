//! The tenancy service: the rules of the org tree, configs, claims and tokens, applied in one
//! transaction per write, over the [`crate::store`] and the in-memory [`catalog::Catalog`].
//!
//! Callers (the admin HTTP API, the CLI) hand in an [`OrgScope`] or [`TeamScope`], which only
//! [`scope`] can make from an authenticated [`Principal`]: an operation can never name another tenant.
//!
//! The writes another module must make part of its own transaction (the provisioner's admission)
//! have one core each that joins a caller's connection: [`write_config_in`], [`issue_token_in`],
//! [`create_node_in`]. The methods of [`Tenancy`] run the same core in a transaction of their own;
//! after its commit the caller calls `Tenancy::changed` to refresh the catalog.

pub mod catalog;
mod config_ops;
mod node_ops;
pub mod scope;
mod token_ops;

pub use catalog::{Catalog, Effective};
pub use config_ops::{ConfigWrite, Written, parse_if_match, write_config_in};
pub use node_ops::{NewNode, NodeChange, create_node_in};
pub use scope::{OrgScope, TeamScope};
pub use token_ops::{IssuedToken, TokenView, issue_token_in};

use crate::domain::config::ConfigError;
use crate::domain::ids::IdError;
use crate::domain::limits::{Exceeded, Limits};
use crate::domain::routing::{ClaimError, Identifier};
use crate::domain::token::Principal;
use crate::domain::{NodeId, OrgId};
use crate::store::{Store, StoreError};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Every way a tenancy operation can refuse or fail; each knows its HTTP status and reason.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error(transparent)]
    InvalidId(#[from] IdError),
    #[error("{message}")]
    Invalid {
        reason: &'static str,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Routing(#[from] ClaimError),
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{what}")]
    HasDependents { reason: &'static str, what: String },
    #[error("config version is {current}, the request expected {expected}")]
    VersionMismatch { current: i64, expected: String },
    #[error("path {path} is locked by node {locked_by}")]
    Locked { path: String, locked_by: NodeId },
    #[error("{} {:?} is already claimed by team {team}", identifier.kind.key(), identifier.value)]
    ClaimConflict {
        identifier: Identifier,
        team: NodeId,
    },
    /// Another org owns the identifier's tenant (or the tenant-level identifier itself); `org` is
    /// named only to a caller who may see it.
    #[error("{} {:?} is claimed by {}", identifier.kind.key(), identifier.value,
        org.as_ref().map_or_else(|| "another tenant".to_owned(), |o| format!("org {o}")))]
    ForeignClaim {
        identifier: Identifier,
        org: Option<OrgId>,
    },
    #[error("key {key} is owned by the platform: only an org admin or the provisioner writes it")]
    PlatformOwnedKey { key: &'static str },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{reason}")]
    Unauthorized { reason: &'static str },
    /// A bound of the `limits` settings (see [`crate::domain::limits`]).
    #[error(transparent)]
    OverLimit(#[from] Exceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TenancyError {
    pub(crate) fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        TenancyError::Invalid {
            reason,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        TenancyError::NotFound { what: what.into() }
    }
}

/// The service. Cheap to clone; every clone shares the pool and the catalog.
#[derive(Clone)]
pub struct Tenancy {
    store: Store,
    catalog: Arc<Catalog>,
    admin_token: Option<crate::domain::Secret>,
    /// Where change notices go, once one is attached (NATS, when the process has a connection).
    notifier: Arc<std::sync::OnceLock<Box<dyn ChangeSink>>>,
    /// The bounds every write applies (the `limits` settings; the defaults until
    /// [`Tenancy::with_limits`]).
    limits: Limits,
}

/// Where committed changes are announced, so the other replicas refresh their catalogs. Tenancy
/// defines it and the bus side implements it (the router's `notice` publishes on NATS), so tenancy
/// knows nothing of NATS subjects. A notice is best effort: the sink logs its own failures and never
/// fails the write (the periodic reload covers a lost notice).
pub trait ChangeSink: Send + Sync {
    /// `node` is `None` for a structural change of the org.
    fn notify<'a>(&'a self, org: &'a OrgId, node: Option<&'a NodeId>) -> BoxFuture<'a, ()>;
}

impl Tenancy {
    /// Loads the catalog from the database.
    pub async fn open(
        store: Store,
        admin_token: Option<crate::domain::Secret>,
    ) -> Result<Self, TenancyError> {
        let catalog = Arc::new(Catalog::default());
        catalog.reload_all(&store).await?;
        let admin_token = admin_token.filter(|t| !t.expose().is_empty());
        Ok(Tenancy {
            store,
            catalog,
            admin_token,
            notifier: Arc::default(),
            limits: Limits::default(),
        })
    }

    /// The same service applying `limits` (the `limits` settings) instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The bounds in force; callers that write in their own transaction (the provisioner's
    /// admission) pass them to the `*_in` cores.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A pooled connection for a read (writes take [`Store::begin`]).
    pub(crate) async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, TenancyError> {
        Ok(self
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// From now on, every committed write also sends a change notice to `sink` (the first one
    /// attached stays).
    pub fn attach_notifier(&self, sink: impl ChangeSink + 'static) {
        let _ = self.notifier.set(Box::new(sink));
    }

    /// After a commit: refresh this process's catalog (the node, or the whole org for structural
    /// changes), then tell the other replicas.
    pub(crate) async fn changed(
        &self,
        org: &OrgId,
        node: Option<&NodeId>,
    ) -> Result<(), TenancyError> {
        match node {
            Some(node) => self.catalog.refresh_node(&self.store, org, node).await?,
            None => self.catalog.reload_org(&self.store, org).await?,
        }
        if let Some(sink) = self.notifier.get() {
            sink.notify(org, node).await;
        }
        Ok(())
    }

    /// A principal's scope over an org: 404 when it cannot see the org, 403 when it sees but may not
    /// administer it.
    pub fn org_scope(&self, principal: &Principal, org: &OrgId) -> Result<OrgScope, TenancyError> {
        scope::org_scope(principal, org, self.catalog.has_org(org))
    }
}

/// Audit target string for a node.
pub(crate) fn node_target(org: &OrgId, node: &NodeId) -> String {
    format!("{org}/{node}")
}
