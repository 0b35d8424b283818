//! The bridge: every agent run delivered to its team's agent service, fairly, and ending with a
//! recorded outcome (issue 12; the role's consumer and IO modules join these).
//!
//! Pure parts, no NATS and no database:
//! - [`prompt`]: the prompt text and session id of a run (the original's formats), per-source limits;
//! - [`sse`]: the incremental reader of an `investigate` answer (SSE) and its outcome;
//! - [`allow`]: the SSRF guard's decision on an agent URL;
//! - [`fair`]: per-team fair ordering of deliveries under per-team and global bounds.
//!
//! And [`echo`]: the reference agent (`ifox agent-echo`) speaking both protocols of
//! docs/agent-protocol.md, for `just run`, tests and benchmarks.

pub mod allow;
pub mod echo;
pub mod fair;
pub mod prompt;
pub mod sse;
