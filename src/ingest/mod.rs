//! The `ingest` role: provider webhooks in, CloudEvents in the EVENTS stream out.
//!
//! Each request goes through one pipeline (`receive.rs`): find the secrets (the global ones
//! from settings, or the org's own on `/webhooks/orgs/{org}/…`), read the body (at most
//! `ingest.body_limit`), let the provider module verify the signature on the raw bytes and read what
//! it needs, publish with `Nats-Msg-Id` = the delivery id, and answer **only after the PubAck**. A
//! duplicate (the provider retried) answers 200 too. Nothing rejected is ever published.
//!
//! One file per provider ([`slack`], [`github`], [`pagerduty`], [`incidentio`], [`generic`]); the
//! CloudEvents contract lives in [`event`]; signatures in [`verify`]; rejections in [`error`]. This
//! module owns the webhook routes and the `ifox_ingest_*` metrics; it never touches the tenancy data
//! beyond asking whether an org exists and reading `webhook_secrets` ([`org_secrets`]), through an
//! in-memory cache ([`secret_cache`]) so that a webhook URL anyone can reach costs no database read.

pub mod error;
pub mod event;
pub mod generic;
pub mod github;
pub mod incidentio;
pub mod metrics;
pub mod org_secrets;
pub mod pagerduty;
pub mod payload;
mod receive;
pub mod samples;
pub mod secret_cache;
pub mod slack;
pub mod verify;

use crate::bus::Bus;
use crate::settings::{IngestSecrets, IngestSettings, SecretList};
use crate::tenancy::Tenancy;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::post;
use error::IngestError;
use payload::{Incoming, Outcome};
use std::sync::Arc;

/// Which endpoint a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    SlackEvents,
    SlackInteractions,
    Github,
    Pagerduty,
    Incidentio,
    Generic(String),
}

impl Provider {
    /// The built-in providers by their secret key (the admin API's path segment).
    pub fn named(name: &str) -> Option<Provider> {
        Some(match name {
            "slack" => Provider::SlackEvents,
            "github" => Provider::Github,
            "pagerduty" => Provider::Pagerduty,
            "incidentio" => Provider::Incidentio,
            _ => return None,
        })
    }

    /// `ce-source`, the subject's source token and the metrics' `source` label.
    pub fn source(&self) -> &str {
        match self {
            Provider::SlackEvents | Provider::SlackInteractions => "slack",
            Provider::Github => "github",
            Provider::Pagerduty => "pagerduty",
            Provider::Incidentio => "incidentio",
            Provider::Generic(source) => source,
        }
    }

    /// The key of its secrets in `webhook_secrets`.
    pub fn secret_key(&self) -> String {
        match self {
            Provider::Generic(source) => format!("generic/{source}"),
            other => other.source().to_owned(),
        }
    }

    fn global_secrets<'s>(&self, s: &'s IngestSecrets) -> Option<&'s SecretList> {
        match self {
            Provider::SlackEvents | Provider::SlackInteractions => Some(&s.slack),
            Provider::Github => Some(&s.github),
            Provider::Pagerduty => Some(&s.pagerduty),
            Provider::Incidentio => Some(&s.incidentio),
            Provider::Generic(source) => s.generic.get(source),
        }
    }

    fn accept(&self, secrets: &[&str], inc: &Incoming<'_>) -> Result<Outcome, IngestError> {
        match self {
            Provider::SlackEvents => slack::events(secrets, inc),
            Provider::SlackInteractions => slack::interactions(secrets, inc),
            Provider::Github => github::accept(secrets, inc),
            Provider::Pagerduty => pagerduty::accept(secrets, inc),
            Provider::Incidentio => incidentio::accept(secrets, inc),
            Provider::Generic(_) => generic::accept(secrets, inc),
        }
    }
}

/// The role's state. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: metrics::IngestMetrics,
    secrets: IngestSecrets,
    body_limit: usize,
    bus: Bus,
    tenancy: Tenancy,
    org_secrets: secret_cache::SecretCache,
}

const SLACK_EVENTS: u8 = 0;
const SLACK_INTERACTIONS: u8 = 1;
const GITHUB: u8 = 2;
const PAGERDUTY: u8 = 3;
const INCIDENTIO: u8 = 4;

fn provider_of(code: u8) -> Provider {
    match code {
        SLACK_EVENTS => Provider::SlackEvents,
        SLACK_INTERACTIONS => Provider::SlackInteractions,
        GITHUB => Provider::Github,
        PAGERDUTY => Provider::Pagerduty,
        _ => Provider::Incidentio,
    }
}

// Handlers take the whole request: the pipeline reads headers and body itself (no copy of the
// header map, and the body limit is its own).
async fn global<const P: u8>(State(i): State<Ingest>, req: Request) -> Response {
    i.receive(provider_of(P), None, req).await
}

async fn org<const P: u8>(
    State(i): State<Ingest>,
    Path(org): Path<String>,
    req: Request,
) -> Response {
    i.receive(provider_of(P), Some(org), req).await
}

async fn generic_global(
    State(i): State<Ingest>,
    Path(source): Path<String>,
    req: Request,
) -> Response {
    i.receive(Provider::Generic(source), None, req).await
}

async fn generic_org(
    State(i): State<Ingest>,
    Path((org, source)): Path<(String, String)>,
    req: Request,
) -> Response {
    i.receive(Provider::Generic(source), Some(org), req).await
}

impl Ingest {
    /// `org_secrets` is shared with the admin routes of [`org_secrets`], which invalidate it.
    pub fn new(
        settings: &IngestSettings,
        bus: Bus,
        tenancy: Tenancy,
        org_secrets: secret_cache::SecretCache,
    ) -> Ingest {
        let inner = Inner {
            metrics: metrics::IngestMetrics::new(),
            secrets: settings.secrets.clone(),
            body_limit: settings.body_limit,
            bus,
            tenancy,
            org_secrets,
        };
        Ingest {
            inner: Arc::new(inner),
        }
    }

    /// The webhook routes, global and org-scoped, with this state applied.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/webhooks/slack/events", post(global::<SLACK_EVENTS>))
            .route(
                "/webhooks/orgs/{org}/slack/events",
                post(org::<SLACK_EVENTS>),
            )
            .route(
                "/webhooks/slack/interactions",
                post(global::<SLACK_INTERACTIONS>),
            )
            .route(
                "/webhooks/orgs/{org}/slack/interactions",
                post(org::<SLACK_INTERACTIONS>),
            )
            .route("/webhooks/github", post(global::<GITHUB>))
            .route("/webhooks/orgs/{org}/github", post(org::<GITHUB>))
            .route("/webhooks/pagerduty", post(global::<PAGERDUTY>))
            .route("/webhooks/orgs/{org}/pagerduty", post(org::<PAGERDUTY>))
            .route("/webhooks/incidentio", post(global::<INCIDENTIO>))
            .route("/webhooks/orgs/{org}/incidentio", post(org::<INCIDENTIO>))
            .route("/webhooks/generic/{source}", post(generic_global))
            .route("/webhooks/orgs/{org}/generic/{source}", post(generic_org))
            .with_state(self.clone())
    }
}
