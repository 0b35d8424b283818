//! The event contract's header names: the one place every stage (ingest, router, replay, dead
//! letters, the provisioner, the bridge) takes them from, so the contract cannot drift between
//! writers and readers. Pure constants and one value rule.
//!
//! An event is a CloudEvent in NATS binary mode on `ifox.events.<source>.<type>` (see
//! [`super::subject`]); the body is the provider's payload byte for byte. Its headers:
//! - [`CE_SPECVERSION`] (`1.0`), [`CE_ID`] (the provider's delivery id, stable across its retries),
//!   [`CE_SOURCE`] (the source name), [`CE_TYPE`] (the provider's spelling of the event type),
//!   [`CE_TIME`] (RFC 3339, when ifox accepted it), [`CONTENT_TYPE`];
//! - [`NATS_MSG_ID`]: [`event_msg_id`] for events, `global/<source>:<ce-id>` (a global URL) or
//!   `org/<org>/<source>:<ce-id>` (an org-scoped URL), so a retry within the duplicate window is
//!   stored once while two tenants' senders that number deliveries alike never collapse on each
//!   other (runs, replays and dead letters set their own, see below);
//! - [`TRACEPARENT`] (W3C; the caller's when valid, else a new one) and [`TRACESTATE`] when given;
//! - [`ORG`]: the org hint, set by an org-scoped ingest URL or by the publisher;
//! - [`ROUTE_PREFIX`]`<kind>` (e.g. `ifox-route-slack_channel_ids`), one per routing identifier kind,
//!   values comma-separated; without any, the router reads the payload
//!   ([`super::identifiers::from_payload`]);
//! - a replay adds [`REPLAY_OF`] (the root original `ce-id`) and, when forced, [`REPLAY_FORCE`]
//!   (`true`), signed in [`REPLAY_SIG`] (see [`super::replay_sig`]; the router refuses replay headers
//!   without a valid signature), with `Nats-Msg-Id: replay:<new ce-id>`;
//! - a dead letter keeps the original headers and adds the [`dead_letter`] ones, with
//!   `Nats-Msg-Id: dl:<stage>:<stream>:<seq>`.
//!
//! Every value copied from a payload into a header passes [`header_safe`].

use super::routing::IdentifierKind;

pub const CE_SPECVERSION: &str = "ce-specversion";
/// The only `ce-specversion` ifox writes.
pub const SPECVERSION: &str = "1.0";
pub const CE_ID: &str = "ce-id";
pub const CE_SOURCE: &str = "ce-source";
pub const CE_TYPE: &str = "ce-type";
pub const CE_TIME: &str = "ce-time";
pub const CONTENT_TYPE: &str = "content-type";
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// JetStream's de-duplication id (its own spelling).
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
/// The org hint.
pub const ORG: &str = "ifox-org";
/// On a bridge's run transition in RUNS: the HMAC that shows the bridge wrote it, so the run
/// recorder applies it to the run record (src/bridge/lifecycle.rs); anything else published
/// on `ifox.runs.>` is part of the feed only.
pub const RECORD_SIG: &str = "Ifox-Record-Sig";
/// Prefix of the routing identifier headers, followed by the kind's key.
pub const ROUTE_PREFIX: &str = "ifox-route-";
/// On a replayed event: the `ce-id` of the event it replays (the root original for a replay of one).
pub const REPLAY_OF: &str = "Ifox-Replay-Of";
/// On a forced replay: `true`, so the router starts a new run instead of collapsing on the old one.
pub const REPLAY_FORCE: &str = "Ifox-Replay-Force";
/// On a replay: the HMAC that shows `ifox replay` wrote the two headers above ([`super::replay_sig`]).
pub const REPLAY_SIG: &str = "Ifox-Replay-Sig";
/// Lowercase prefix of the replay headers, for dropping them all.
pub const REPLAY_PREFIX: &str = "ifox-replay-";

/// The headers a dead letter adds to the original ones.
pub mod dead_letter {
    /// The machine-readable reason (`no_route`, `invalid_event`, …), also the subject's last token.
    pub const REASON: &str = "Ifox-DL-Reason";
    /// A human-readable explanation.
    pub const DETAIL: &str = "Ifox-DL-Detail";
    /// The stage that gave up (`router`, `provisioner`, …).
    pub const STAGE: &str = "Ifox-DL-Stage";
    /// The original subject, where a replay sends the message back.
    pub const SUBJECT: &str = "Ifox-DL-Subject";
    pub const STREAM: &str = "Ifox-DL-Stream";
    pub const STREAM_SEQ: &str = "Ifox-DL-Stream-Seq";
    /// Deliveries made before it was dead-lettered.
    pub const ATTEMPTS: &str = "Ifox-DL-Attempts";
    /// RFC 3339, when it was dead-lettered.
    pub const TIME: &str = "Ifox-DL-Time";
    /// Lowercase prefix of all of the above, for dropping them all.
    pub const PREFIX: &str = "ifox-dl-";
}

/// The longest `ce-id` or header value copied from a payload.
pub const MAX_VALUE_LEN: usize = 256;

/// The first value of header `name` in `headers`, by exact name as `HeaderMap::get` matches, without
/// its allocation: `get` turns the `&str` into an owned header name (and hashes it) on every call,
/// which on the router's path, a dozen lookups per event, was a measurable share of its CPU.
pub fn get<'a>(headers: &'a async_nats::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| AsRef::<str>::as_ref(*k) == name)
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_str())
}

/// The routing header of one identifier kind, e.g. `ifox-route-github_repos`.
pub fn route_header(kind: IdentifierKind) -> String {
    format!("{ROUTE_PREFIX}{}", kind.key())
}

/// The dedup key of an event: its tenant scope (the org of an org-scoped URL, else global), its
/// source and its `ce-id`. The router derives the run id from the same key (see `router::run`).
pub fn event_msg_id(org: Option<&str>, source: &str, ce_id: &str) -> String {
    match org {
        Some(org) => format!("org/{org}/{source}:{ce_id}"),
        None => format!("global/{source}:{ce_id}"),
    }
}

/// Safe as a NATS header value and short: visible ASCII and spaces only.
pub fn header_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `get` answers exactly as `HeaderMap::get` does (exact names, the first value, standard
    /// NATS names included), without allocating.
    #[test]
    fn get_matches_the_header_maps_own_lookup() {
        let mut h = async_nats::HeaderMap::new();
        h.insert(CE_ID, "e1");
        h.append(ORG, "acme");
        h.append(ORG, "other");
        h.insert(NATS_MSG_ID, "m1");
        for name in [
            CE_ID,
            "CE-ID",
            ORG,
            NATS_MSG_ID,
            "nats-msg-id",
            CE_TIME,
            "x",
        ] {
            assert_eq!(get(&h, name), h.get(name).map(|v| v.as_str()), "{name}");
        }
        assert_eq!(get(&h, ORG), Some("acme"));
    }

    #[test]
    fn header_values_must_be_printable_short_and_not_empty() {
        assert!(header_safe("acme/api"));
        assert!(header_safe("with space"));
        assert!(!header_safe(""));
        assert!(!header_safe("a\nb"));
        assert!(!header_safe("é"));
        assert!(!header_safe(&"a".repeat(MAX_VALUE_LEN + 1)));
        assert!(header_safe(&"a".repeat(MAX_VALUE_LEN)));
    }

    #[test]
    fn the_dedup_key_names_the_scope_and_the_source() {
        assert_eq!(event_msg_id(None, "github", "d1"), "global/github:d1");
        assert_eq!(
            event_msg_id(Some("acme"), "github", "d1"),
            "org/acme/github:d1"
        );
        // An org named like the global scope is still another scope.
        assert_ne!(
            event_msg_id(Some("global"), "github", "d1"),
            event_msg_id(None, "github", "d1")
        );
        assert_ne!(
            event_msg_id(Some("a"), "s", "d1"),
            event_msg_id(Some("b"), "s", "d1")
        );
    }

    #[test]
    fn the_prefixes_match_their_headers_case_insensitively() {
        assert_eq!(
            route_header(IdentifierKind::GithubRepos),
            "ifox-route-github_repos"
        );
        for name in [REPLAY_OF, REPLAY_FORCE, REPLAY_SIG] {
            assert!(name.to_ascii_lowercase().starts_with(REPLAY_PREFIX));
        }
        use dead_letter::*;
        for name in [
            REASON, DETAIL, STAGE, SUBJECT, STREAM, STREAM_SEQ, ATTEMPTS, TIME,
        ] {
            assert!(name.to_ascii_lowercase().starts_with(PREFIX), "{name}");
        }
    }
}
