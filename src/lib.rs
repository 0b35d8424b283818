//! ifox: the multi-tenant orchestrator of an AI SRE platform.
//!
//! # Layout
//! - [`domain`]: pure types and rules (ids, config merge, routing claims and lookup, tokens).
//! - [`store`]: database access (sqlx `Any`: SQLite and PostgreSQL), one module per table.
//! - [`tenancy`]: the tenancy service (tree, configs, locks, claims, tokens) and its in-memory catalog.
//! - [`admin`]: the admin and team HTTP API over the tenancy service.
//! - [`http`]: the one HTTP listener: health, readiness, metrics, and the routes of each role.
//! - [`settings`], [`telemetry`], [`app`]: configuration, logs and metrics, and the assembled process.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod domain;
pub mod http;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod tenancy;
