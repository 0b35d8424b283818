//! ifox: the multi-tenant orchestrator of an AI SRE platform.
//!
//! # Layout
//! Modules are layered; a module uses only those on lower levels (the test in `layering_tests.rs`
//! fails on any other reference, so no cycle between top-level modules can come back):
//!
//! 1. [`domain`]: pure types and rules (ids, config merge, routing claims and lookup, tokens, the
//!    [`domain::Secret`] wrapper) and the event contract: header names ([`domain::headers`]),
//!    subjects ([`domain::subject`]), routing identifiers read from provider payloads
//!    ([`domain::identifiers`]). Uses nothing of ours.
//! 2. [`store`]: database access (sqlx `Any`: SQLite and PostgreSQL), one module per table.
//! 3. [`tenancy`]: the tenancy service (tree, configs, locks, claims, tokens), its in-memory catalog,
//!    and the [`tenancy::ChangeSink`] its change notices go to.
//! 4. Infrastructure, usable by http, the roles, app and cli (never by store or tenancy):
//!    [`settings`] (typed settings of every role), [`telemetry`] (logs and metrics), [`bus`]
//!    (JetStream: the connection, the streams of `streams/`, the consumer toolkit, publishing).
//! 5. [`http`]: what every HTTP surface shares: the handler state, the one error answer, the
//!    extractors, and the listener's own routes (health, readiness, metrics).
//! 6. The roles: [`ingest`] (provider webhooks verified and published to EVENTS as CloudEvents),
//!    [`router`] (events routed to a team and dispatched; change notices; `ifox replay`),
//!    [`provision`] (the `provisioner` role and the provisioning API: desired Kubernetes objects,
//!    server-side apply, cost report), [`admin`] (the admin and team HTTP API and the runs API; it
//!    uses the router's pure core for route explain and the bridge's run lifecycle), [`bridge`] (agent runs delivered to agent services, run
//!    lifecycle).
//! 7. [`app`]: the assembled process (roles started, their routes merged onto [`http::router`]).
//! 8. [`cli`]: the command line.
//!
//! ```text
//! domain → store → tenancy ──────────────┐
//! domain → settings → telemetry → bus ───┴→ http → {ingest, router, provision, admin, bridge} → app → cli
//! ```
//! (an arrow reads "may be used by", transitively; store and tenancy never use the infrastructure;
//! the table in `layering_tests.rs` is the precise rule, with its role-to-role edges.)
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod bridge;
pub mod bus;
pub mod cli;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod provision;
pub mod router;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod tenancy;

#[cfg(test)]
mod layering_tests;
#[cfg(test)]
mod metrics_catalog_tests;
