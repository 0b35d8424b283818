//! Bounds on everything a caller controls: the values in force ([`Limits`], the `limits` settings
//! section, `IFOX__LIMITS__<KEY>`), the refusal a bound answers ([`Exceeded`], which names its
//! setting and value), and the pure measures the checks need ([`json_depth`]).
//!
//! Every bound exists so that one tenant (or one careless caller) cannot make a request, a stored
//! document or a replay so large that it takes memory, stack or database time from everyone else.
//! The defaults are far above what a real org chart or agent config needs; the ceilings checked by
//! [`Limits::validate`] keep each one inside what the code below it was written for (the catalog's
//! chain walk, serde_json's recursion limit, the NATS header the explain builds).

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The `limits` section. Every key has a default, so a deployment sets only the ones it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// `IFOX__LIMITS__TREE_DEPTH`: levels below the org root a unit or team may sit at.
    pub tree_depth: u32,
    /// `IFOX__LIMITS__NODES_PER_ORG`: units and teams of one org (the root not counted).
    pub nodes_per_org: u32,
    /// `IFOX__LIMITS__CLAIMS_PER_TEAM`: routing identifiers one team's config may claim.
    pub claims_per_team: u32,
    /// `IFOX__LIMITS__CONFIG_BYTES`: bytes of one node's raw config (compact JSON).
    pub config_bytes: u32,
    /// `IFOX__LIMITS__CONFIG_DEPTH`: nesting of one node's raw config (`{}` is 1, `{"a":{}}` 2).
    pub config_depth: u32,
    /// `IFOX__LIMITS__TOKENS_PER_TEAM`: live (not revoked, not expired) tokens of one team.
    pub tokens_per_team: u32,
    /// `IFOX__LIMITS__TOKEN_LIFETIME`: the longest `expires_in` / `expires_at` a token may get.
    #[serde(with = "humantime_serde")]
    pub token_lifetime: Duration,
    /// `IFOX__LIMITS__EXPLAIN_HEADERS`: headers of one route explain request.
    pub explain_headers: u32,
    /// `IFOX__LIMITS__EXPLAIN_HEADER_BYTES`: bytes of one explain header (name and value).
    pub explain_header_bytes: u32,
    /// `IFOX__LIMITS__EXPLAIN_PAYLOAD_BYTES`: bytes of the payload of one route explain request.
    pub explain_payload_bytes: u32,
    /// `IFOX__LIMITS__REPLAY_EVENTS`: messages one `ifox replay` may republish.
    pub replay_events: u64,
    /// `IFOX__LIMITS__REPLAY_SPAN`: the longest time window (`--since` to `--until`) of one replay.
    #[serde(with = "humantime_serde")]
    pub replay_span: Duration,
    /// `IFOX__LIMITS__WEBHOOK_SOURCES_PER_ORG`: provider keys (`github`, `generic/<source>`, …) one
    /// org may keep webhook secrets for.
    pub webhook_sources_per_org: u32,
    /// `IFOX__LIMITS__WEBHOOK_SECRET_BYTES`: bytes of one webhook secret an org sets.
    pub webhook_secret_bytes: u32,
    /// `IFOX__LIMITS__CONFIG_HISTORY`: versions of one node's config kept (for history and
    /// rollback); older ones are dropped at each write.
    pub config_history: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tree_depth: 32,
            nodes_per_org: 5_000,
            claims_per_team: 1_000,
            config_bytes: 256 * 1024,
            config_depth: 32,
            tokens_per_team: 100,
            token_lifetime: Duration::from_secs(3660 * 24 * 3600),
            explain_headers: MAX_EXPLAIN_HEADERS,
            explain_header_bytes: MAX_EXPLAIN_HEADER_BYTES,
            explain_payload_bytes: 512 * 1024,
            replay_events: 100_000,
            replay_span: Duration::from_secs(7 * 24 * 3600),
            webhook_sources_per_org: 100,
            webhook_secret_bytes: 1024,
            config_history: 100,
        }
    }
}

/// The most levels the catalog walks up a chain (64 links, the org root included), so the tree
/// depth setting stays below it.
pub const MAX_TREE_DEPTH: u32 = 63;
/// serde_json refuses documents nested deeper than 128 when it parses; a stored config must read
/// back, so the config depth setting stays well below it.
pub const MAX_CONFIG_DEPTH: u32 = 100;
/// What the route explain turns into NATS headers (`router::explain::check_request` keeps the same
/// ceiling): the settings may lower these, not raise them.
pub const MAX_EXPLAIN_HEADERS: u32 = 64;
pub const MAX_EXPLAIN_HEADER_BYTES: u32 = 4096;

/// What each bound may be set to: `(limit, lowest, highest)`, durations in seconds.
const RANGES: [(Limit, u64, u64); 15] = [
    (Limit::TreeDepth, 1, MAX_TREE_DEPTH as u64),
    (Limit::NodesPerOrg, 1, 1_000_000),
    (Limit::ClaimsPerTeam, 1, 100_000),
    (Limit::ConfigBytes, 1024, 16 << 20),
    (Limit::ConfigDepth, 2, MAX_CONFIG_DEPTH as u64),
    (Limit::TokensPerTeam, 1, 100_000),
    (Limit::TokenLifetime, 1, u64::MAX),
    (Limit::ExplainHeaders, 1, MAX_EXPLAIN_HEADERS as u64),
    (
        Limit::ExplainHeaderBytes,
        64,
        MAX_EXPLAIN_HEADER_BYTES as u64,
    ),
    (Limit::ExplainPayloadBytes, 1024, 16 << 20),
    (Limit::ReplayEvents, 1, u64::MAX),
    (Limit::ReplaySpan, 1, u64::MAX),
    (Limit::WebhookSourcesPerOrg, 1, 10_000),
    (Limit::WebhookSecretBytes, 16, 64 * 1024),
    (Limit::ConfigHistory, 2, 1_000_000),
];

impl Limits {
    /// Each bound within its range ([`RANGES`]); `Err((key, problem))` names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (limit, lo, hi) in RANGES {
            let value = self.max(limit);
            if !(lo..=hi).contains(&value) {
                let allowed = match hi {
                    u64::MAX => format!("at least {lo}"),
                    hi => format!("between {lo} and {hi}"),
                };
                let unit = if limit.unit() == "seconds" { " s" } else { "" };
                return Err((
                    limit.setting(),
                    format!("must be {allowed}{unit} (is {value}{unit})"),
                ));
            }
        }
        Ok(())
    }

    /// [`Exceeded`] for `limit` when `value` is above its maximum here.
    pub fn check(&self, limit: Limit, value: u64) -> Result<(), Exceeded> {
        let max = self.max(limit);
        if value > max {
            return Err(Exceeded { limit, max, value });
        }
        Ok(())
    }

    /// The maximum in force for `limit` (durations in seconds).
    pub fn max(&self, limit: Limit) -> u64 {
        match limit {
            Limit::TreeDepth => self.tree_depth.into(),
            Limit::NodesPerOrg => self.nodes_per_org.into(),
            Limit::ClaimsPerTeam => self.claims_per_team.into(),
            Limit::ConfigBytes => self.config_bytes.into(),
            Limit::ConfigDepth => self.config_depth.into(),
            Limit::TokensPerTeam => self.tokens_per_team.into(),
            Limit::TokenLifetime => self.token_lifetime.as_secs(),
            Limit::ExplainHeaders => self.explain_headers.into(),
            Limit::ExplainHeaderBytes => self.explain_header_bytes.into(),
            Limit::ExplainPayloadBytes => self.explain_payload_bytes.into(),
            Limit::ReplayEvents => self.replay_events,
            Limit::ReplaySpan => self.replay_span.as_secs(),
            Limit::WebhookSourcesPerOrg => self.webhook_sources_per_org.into(),
            Limit::WebhookSecretBytes => self.webhook_secret_bytes.into(),
            Limit::ConfigHistory => self.config_history.into(),
        }
    }

    /// Checks a config document a caller sent (a patch or a replacement) or a config about to be
    /// stored: nesting first, without recursion, so nothing recursive ever runs over a document
    /// deeper than the limit; then its compact size.
    pub fn check_config(&self, config: &Value) -> Result<(), Exceeded> {
        let depth = json_depth(config, self.config_depth as usize + 1);
        self.check(Limit::ConfigDepth, depth as u64)?;
        self.check(Limit::ConfigBytes, json_len(config) as u64)
    }
}

/// One bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    TreeDepth,
    NodesPerOrg,
    ClaimsPerTeam,
    ConfigBytes,
    ConfigDepth,
    TokensPerTeam,
    TokenLifetime,
    ExplainHeaders,
    ExplainHeaderBytes,
    ExplainPayloadBytes,
    ReplayEvents,
    ReplaySpan,
    WebhookSourcesPerOrg,
    WebhookSecretBytes,
    /// Not a refusal: a retention (older versions are dropped).
    ConfigHistory,
}

/// How a refusal reads over HTTP: the shape of one request (400), bytes (413), or a quota or
/// range the request would pass (422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Shape,
    Size,
    Quota,
}

impl Limit {
    /// The settings key, as the answer names it.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::TreeDepth => "limits.tree_depth",
            Limit::NodesPerOrg => "limits.nodes_per_org",
            Limit::ClaimsPerTeam => "limits.claims_per_team",
            Limit::ConfigBytes => "limits.config_bytes",
            Limit::ConfigDepth => "limits.config_depth",
            Limit::TokensPerTeam => "limits.tokens_per_team",
            Limit::TokenLifetime => "limits.token_lifetime",
            Limit::ExplainHeaders => "limits.explain_headers",
            Limit::ExplainHeaderBytes => "limits.explain_header_bytes",
            Limit::ExplainPayloadBytes => "limits.explain_payload_bytes",
            Limit::ReplayEvents => "limits.replay_events",
            Limit::ReplaySpan => "limits.replay_span",
            Limit::WebhookSourcesPerOrg => "limits.webhook_sources_per_org",
            Limit::WebhookSecretBytes => "limits.webhook_secret_bytes",
            Limit::ConfigHistory => "limits.config_history",
        }
    }

    /// The machine-readable reason of the refusal.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::TreeDepth => "tree_too_deep",
            Limit::NodesPerOrg => "too_many_nodes",
            Limit::ClaimsPerTeam => "too_many_claims",
            Limit::ConfigBytes => "config_too_large",
            Limit::ConfigDepth => "config_too_deep",
            Limit::TokensPerTeam => "too_many_tokens",
            Limit::TokenLifetime => "token_lifetime_too_long",
            Limit::ExplainHeaders => "too_many_headers",
            Limit::ExplainHeaderBytes => "header_too_large",
            Limit::ExplainPayloadBytes => "payload_too_large",
            Limit::ReplayEvents => "replay_too_large",
            Limit::ReplaySpan => "replay_span_too_long",
            Limit::WebhookSourcesPerOrg => "too_many_webhook_sources",
            Limit::WebhookSecretBytes => "secret_too_large",
            Limit::ConfigHistory => "history_pruned",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Limit::TreeDepth | Limit::ConfigDepth | Limit::ExplainHeaders => Class::Shape,
            Limit::ConfigBytes
            | Limit::ExplainHeaderBytes
            | Limit::ExplainPayloadBytes
            | Limit::WebhookSecretBytes => Class::Size,
            Limit::NodesPerOrg
            | Limit::ClaimsPerTeam
            | Limit::TokensPerTeam
            | Limit::TokenLifetime
            | Limit::ReplayEvents
            | Limit::ReplaySpan
            | Limit::WebhookSourcesPerOrg
            | Limit::ConfigHistory => Class::Quota,
        }
    }

    /// What the number counts, for the message.
    fn unit(self) -> &'static str {
        match self {
            Limit::TreeDepth => "levels below the org",
            Limit::NodesPerOrg => "units and teams in the org",
            Limit::ClaimsPerTeam => "routing identifiers claimed by the team",
            Limit::ConfigBytes => "bytes of config",
            Limit::ConfigDepth => "levels of nesting in the config",
            Limit::TokensPerTeam => "live tokens of the team",
            Limit::TokenLifetime | Limit::ReplaySpan => "seconds",
            Limit::ExplainHeaders => "headers",
            Limit::ExplainHeaderBytes => "bytes in one header",
            Limit::ExplainPayloadBytes => "bytes of payload",
            Limit::ReplayEvents => "messages to replay",
            Limit::WebhookSourcesPerOrg => "webhook sources of the org",
            Limit::WebhookSecretBytes => "bytes in one secret",
            Limit::ConfigHistory => "config versions kept",
        }
    }
}

/// A request past a bound: which one, its maximum, and what the request would have made it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} {} is over the limit of {max} (setting {})", .limit.unit(), .limit.setting())]
pub struct Exceeded {
    pub limit: Limit,
    pub max: u64,
    pub value: u64,
}

/// How deeply `value` nests (a scalar is 0, `{}` and `[]` are 1, `{"a":[1]}` 2), counted without
/// recursion; the count stops at `cap`, so an absurd document costs no more than a legal one.
pub fn json_depth(value: &Value, cap: usize) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        if !(v.is_object() || v.is_array()) {
            continue;
        }
        let here = depth + 1;
        deepest = deepest.max(here);
        if deepest >= cap {
            return deepest;
        }
        match v {
            Value::Object(map) => stack.extend(map.values().map(|c| (c, here))),
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, here))),
            _ => {}
        }
    }
    deepest
}

/// Bytes of `value` as compact JSON, counted without building the text.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing into a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
