//! ifox: the multi-tenant orchestrator of an AI SRE platform.
//!
//! # Layout
//! - [`domain`]: pure types and rules (ids, config merge, routing claims and lookup, tokens).
//! - [`store`]: database access (sqlx `Any`: SQLite and PostgreSQL), one module per table.
//! - [`tenancy`]: the tenancy service (tree, configs, locks, claims, tokens) and its in-memory catalog.
//! - [`admin`]: the admin and team HTTP API over the tenancy service.
//! - [`bus`]: JetStream: the connection, the streams of `streams/`, publishing with PubAck.
//! - [`ingest`]: the `ingest` role: provider webhooks verified and published to EVENTS as CloudEvents.
//! - [`http`]: the one HTTP listener: health, readiness, metrics, and the routes of each role.
//! - [`router`]: the router's pure core: routing inputs of an event, shared/dedicated decision, agent-run document.
//! - [`provision`]: the `provisioner` role and the provisioning API: desired Kubernetes objects (pure), applied by server-side apply; cost report.
//! - [`bridge`]: the agent bridge's pure parts (prompts, SSE answers, URL guard, fairness) and the reference echo agent.
//! - [`replay`]: republish stored events or dead letters for the router to process again.
//! - [`settings`], [`telemetry`], [`app`]: configuration, logs and metrics, and the assembled process.
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
pub mod replay;
pub mod router;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod tenancy;
