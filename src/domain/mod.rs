//! Pure types and rules: ids, config merge, routing claims and lookup, tokens, the secret wrapper,
//! and the event contract (header names, subjects, routing identifiers read from provider payloads).
//! No IO here: every function is a decision over plain data, tested without a database or a network.
//! `domain` uses no other module of the crate (the layering test in `lib.rs` holds it to that).

pub mod config;
pub mod headers;
pub mod identifiers;
pub mod ids;
pub mod platform_keys;
pub mod replay_sig;
pub mod routing;
pub mod run_token;
pub mod runtime;
pub mod secret;
pub mod subject;
pub mod token;

pub use ids::{NodeId, NodeType, OrgId};
pub use secret::Secret;

/// Milliseconds since the Unix epoch (what the database stores).
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 rendering of a stored timestamp, for API answers.
pub fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}
