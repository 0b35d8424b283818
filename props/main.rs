//! Property tests ("fuzzing on stable Rust") of every parser of outside input, one module per target:
//!
//! | module | what it feeds |
//! |---|---|
//! | [`webhook_verify`] | signature headers and bodies of every provider (`ingest::verify`) |
//! | [`webhook_payload`] | signed bodies through each provider's `accept`, the CloudEvent built from it, and the routing identifiers (`domain::identifiers`) |
//! | [`event_headers`] | CloudEvents headers of direct publishes, as the router reads them (`router::inputs`, `router::verdict`) |
//! | [`merge_patch`] | config writes: merge patch, diff, locks (`domain::config`) |
//! | [`tokens`] | team and org tokens, run tokens, replay signatures |
//! | [`durations`] | duration settings (humantime) through the settings loader |
//! | [`quantities`] | Kubernetes quantities and label rules of provisioning requests |
//! | [`stream_files`] | `streams/*.json` and `streams/consumers/*.json` loaders |
//! | [`explain`] | route explain requests (body, header checks, the explanation) |
//!
//! Every property's doc comment states what must hold. Each runs `PROPTEST_CASES` cases (proptest
//! reads the variable itself; 256 when unset), so `just test` stays quick and `just fuzz` runs a
//! million per property with the same code. A panic anywhere is a failure: the properties call the
//! product's parsers, never a copy of them.
#![forbid(unsafe_code)]

mod common;
mod durations;
mod event_headers;
mod explain;
mod merge_patch;
mod quantities;
mod stream_files;
mod tokens;
mod webhook_payload;
mod webhook_verify;
