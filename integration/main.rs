//! The one integration-test binary: real HTTP, real SQLite and PostgreSQL, real nats-server.

mod bridge_durability;
mod bridge_fixtures;
mod bridge_flow;
mod bus_consumer;
mod health;
mod ingest_faults;
mod ingest_fixtures;
mod ingest_operator;
mod ingest_org_secrets;
mod ingest_rejections;
mod ingest_streams;
mod ingest_webhooks;
mod provision_api;
mod provision_claims;
mod provision_e2e;
mod provision_fixtures;
mod provision_kube;
mod router_durability;
mod router_fixtures;
mod router_flow;
mod router_replay;
mod support;
mod tenancy_access;
mod tenancy_api;
mod tenancy_claims;
mod tenancy_store;
