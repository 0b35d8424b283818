//! The router: every stored event resolved to one team and dispatched to the shared or dedicated
//! agent subject, durably.
//!
//! - [`inputs`], [`payload`]: what an event names (headers first, the provider payload as fallback);
//! - [`decision`], [`run`], [`verdict`]: pure decisions — route, shared or dedicated, the run document;
//! - [`worker`]: the effects of one verdict (publish the run, record it, ack; or dead-letter; or NAK);
//! - [`recorder`]: group commit of run records;
//! - [`consumer`]: the durable consumer on EVENTS (on the toolkit of [`crate::bus::consumer`]);
//! - [`notice`]: config change notices that keep every replica's catalog fresh.

pub mod consumer;
pub mod decision;
pub mod explain;
pub mod inputs;
pub mod notice;
pub mod payload;
pub mod recorder;
pub mod run;
pub mod verdict;
pub mod worker;
