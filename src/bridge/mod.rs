//! The bridge: every agent run delivered to its team's agent service, fairly, and ending with a
//! recorded outcome.
//!
//! Pure parts, no NATS and no database:
//! - [`prompt`]: the prompt text and session id of a run (the original's formats), per-source limits;
//! - [`sse`]: the incremental reader of an `investigate` answer (SSE) and its outcome;
//! - [`allow`]: the SSRF guard's decision on an agent URL;
//! - [`fair`]: per-team fair ordering of deliveries under per-team and global bounds.
//!
//! The role (IO):
//! - [`plan`]: one AGENT_RUNS message checked and resolved to a delivery (current runtime, URL,
//!   protocol, limits, prompt) or a disposition;
//! - [`deliver`]: the HTTP call in either protocol, classified;
//! - [`recorder`]: the run records made from AGENT_RUNS (batched, idempotent on the run id);
//! - [`lifecycle`]: transitions recorded and announced on RUNS, and the sweep of overdue runs;
//! - [`worker`]: the consumer, the fair scheduler, in-progress acks, the sweep timer (one delivery
//!   attempt: `worker/attempt.rs`).
//!
//! And [`echo`]: the reference agent (`ifox agent-echo`) speaking both protocols of
//! docs/agent-protocol.md, for `just run`, tests and benchmarks.

pub mod allow;
pub mod deliver;
pub mod echo;
pub mod fair;
pub mod lifecycle;
pub mod plan;
pub mod prompt;
pub mod recorder;
pub mod sse;
pub mod worker;
