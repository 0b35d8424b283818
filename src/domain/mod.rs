//! Pure types and rules: ids, config merge, routing claims and lookup, tokens, the secret wrapper,
//! and the event contract (header names, subjects, routing identifiers read from provider payloads).
//! No IO here: every function is a decision over plain data, tested without a database or a network.
//! `domain` uses no other module of the crate (the layering test in `lib.rs` holds it to that).

pub mod config;
pub mod headers;
pub mod identifiers;
pub mod ids;
pub mod kube_names;
pub mod limits;
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
/// Times past the year 9999 (which RFC 3339 cannot write, and humantime panics on) are written as
/// the last millisecond of 9999, so a stored value can never make an answer panic.
pub fn rfc3339(ms: i64) -> String {
    const LAST_MS: u64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    let ms = u64::try_from(ms).unwrap_or(0).min(LAST_MS);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn any_stored_time_renders_without_panicking() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
