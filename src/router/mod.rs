//! The router: every stored event resolved to one team and dispatched to the shared or dedicated
//! agent subject, durably.
//!
//! - [`inputs`]: what an event names (headers first, then the provider payload as read by
//!   [`crate::domain::identifiers`]);
//! - [`decision`], [`run`], [`verdict`]: pure decisions — route, shared or dedicated, the run document;
//! - [`worker`]: the effects of one verdict (publish the run, ack; or dead-letter; or NAK) — no
//!   database on the way: the run records are the bridge's projection of AGENT_RUNS;
//! - [`consumer`]: the durable consumer on EVENTS (on the toolkit of [`crate::bus::consumer`]);
//! - [`notice`]: config change notices that keep every replica's catalog fresh (the NATS side of
//!   [`crate::tenancy::ChangeSink`]);
//! - [`replay`]: `ifox replay`, stored events or dead letters republished for the router.

pub mod consumer;
pub mod decision;
pub mod explain;
pub mod inputs;
pub mod notice;
pub mod replay;
pub mod run;
pub mod verdict;
pub mod worker;
