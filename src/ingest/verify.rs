//! Webhook signature verification for every provider ifox ingests.
//!
//! This module owns one thing: deciding whether a webhook request really came from the holder
//! of a configured secret. It is pure — no IO, no clock, no logging. The caller passes the
//! header map, the **raw** request body (the exact bytes received, before any parsing) and, for
//! providers with a timestamp, the current Unix time (`now_unix`), so every rule is testable.
//!
//! Common rules for all providers:
//! - every secret in the list is tried, so secret rotation works (old and new both pass);
//! - an empty secret list — or one holding only empty strings — is [`VerifyError::NoSecret`];
//!   an empty secret is never used as an HMAC key (anyone could forge with it);
//! - MACs are compared in constant time (`Mac::verify_slice`, which uses `ctutils::CtEq`);
//! - hex signatures are decoded before comparison, so upper and lower case both pass;
//! - a header value that is not visible ASCII is [`VerifyError::MalformedHeader`];
//! - timestamps are checked in both directions against [`TOLERANCE_SECS`], and the signed text
//!   uses the timestamp header exactly as received.
//!
//! The `sign_*` helpers produce header values the verifiers accept; they exist for tests,
//! benchmarks and clients that send to ifox.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A borrowed list of secrets, for callers that hold `&str`s. Every verifier is generic over
/// `S: AsRef<str>`, so `&[String]` works just as well.
pub type Secrets<'a> = &'a [&'a str];

/// Maximum distance, in seconds, between a signed timestamp and "now", in either direction.
pub const TOLERANCE_SECS: i64 = 300;

/// Slack: Unix timestamp of the request.
pub const SLACK_TIMESTAMP: &str = "x-slack-request-timestamp";
/// Slack: `v0=<hex>` signature.
pub const SLACK_SIGNATURE: &str = "x-slack-signature";
/// GitHub: `sha256=<hex>` signature.
pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
/// PagerDuty V3: `v1=<hex>[,v1=<hex>…]` signatures.
pub const PAGERDUTY_SIGNATURE: &str = "x-pagerduty-signature";
/// Standard Webhooks: unique message id (also the dedup key).
pub const STANDARD_ID: &str = "webhook-id";
/// Standard Webhooks: Unix timestamp of the attempt.
pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: space-separated `v1,<base64>` signatures.
pub const STANDARD_SIGNATURE: &str = "webhook-signature";

/// Prefix of Standard Webhooks secrets; the rest is the base64-encoded key.
const WHSEC_PREFIX: &str = "whsec_";

/// Standard base64 alphabet that accepts input with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a webhook request failed verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header is absent (the name is the lower-case header name).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not in the provider's format.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The signed timestamp is more than the given number of seconds from "now".
    #[error("timestamp outside the {0} s tolerance")]
    StaleTimestamp(i64),
    /// The header is well formed but no signature matches any configured secret.
    #[error("signature does not match")]
    BadSignature,
    /// No usable secret is configured: a configuration problem, not the sender's fault.
    #[error("no secret configured")]
    NoSecret,
}

impl VerifyError {
    /// Stable snake_case label, for metrics and structured logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader(_) => "malformed_header",
            Self::StaleTimestamp(_) => "stale_timestamp",
            Self::BadSignature => "bad_signature",
            Self::NoSecret => "no_secret",
        }
    }
}

/// Verifies a Slack request (Events API, interactivity, slash commands).
///
/// `X-Slack-Signature` must be `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{body}`), and
/// `X-Slack-Request-Timestamp` must be within [`TOLERANCE_SECS`] of `now_unix`.
pub fn slack<S: AsRef<str>>(
    secrets: &[S],
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let keys = plain_keys(secrets)?;
    let ts_raw = header(headers, SLACK_TIMESTAMP)?;
    let sig_raw = header(headers, SLACK_SIGNATURE)?;
    let ts = parse_timestamp(ts_raw, SLACK_TIMESTAMP)?;
    let sig = sig_raw
        .strip_prefix("v0=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(VerifyError::MalformedHeader(SLACK_SIGNATURE))?;
    check_fresh(ts, now_unix)?;
    let parts = [b"v0:".as_slice(), ts_raw.as_bytes(), b":", body];
    matches_any(&keys, &parts, &[sig])
}

/// Verifies a GitHub delivery: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
/// GitHub signs no timestamp; replays are caught by deduplicating on `X-GitHub-Delivery`.
pub fn github<S: AsRef<str>>(
    secrets: &[S],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), VerifyError> {
    let keys = plain_keys(secrets)?;
    let sig = header(headers, GITHUB_SIGNATURE)?
        .strip_prefix("sha256=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(VerifyError::MalformedHeader(GITHUB_SIGNATURE))?;
    matches_any(&keys, &[body], &[sig])
}

/// Verifies a PagerDuty V3 webhook.
///
/// `X-PagerDuty-Signature` holds comma-separated `v1=<hex>` entries (several during secret
/// rotation, optional spaces around them); any entry matching any secret passes. Entries of other
/// versions are ignored. A header with no decodable `v1` entry is
/// [`VerifyError::MalformedHeader`]. The signed text is the raw body.
pub fn pagerduty<S: AsRef<str>>(
    secrets: &[S],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), VerifyError> {
    let keys = plain_keys(secrets)?;
    let sigs = signatures(headers, PAGERDUTY_SIGNATURE, |value| {
        value
            .split(',')
            .filter_map(|entry| entry.trim().strip_prefix("v1="))
            .map(|hex_sig| hex::decode(hex_sig).ok())
            .collect()
    })?;
    matches_any(&keys, &[body], &sigs)
}

/// Verifies a Standard Webhooks request (incident.io and generic senders).
///
/// Headers `webhook-id`, `webhook-timestamp` and `webhook-signature` (space-separated
/// `v1,<base64>` entries; other versions are ignored) are required. The signed text is
/// `{id}.{timestamp}.{body}`; the key is the base64-decoded secret after the `whsec_` prefix (a
/// secret without the prefix is decoded as base64 too). A secret that is not valid base64 is a
/// configuration problem and simply never matches. The timestamp must be within
/// [`TOLERANCE_SECS`] of `now_unix`.
pub fn standard_webhooks<S: AsRef<str>>(
    secrets: &[S],
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    if !secrets.iter().any(|s| !s.as_ref().is_empty()) {
        return Err(VerifyError::NoSecret);
    }
    let id = header(headers, STANDARD_ID)?;
    let ts_raw = header(headers, STANDARD_TIMESTAMP)?;
    if id.is_empty() {
        return Err(VerifyError::MalformedHeader(STANDARD_ID));
    }
    let ts = parse_timestamp(ts_raw, STANDARD_TIMESTAMP)?;
    let sigs = signatures(headers, STANDARD_SIGNATURE, |value| {
        value
            .split_ascii_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .map(|b64| BASE64.decode(b64).ok())
            .collect()
    })?;
    check_fresh(ts, now_unix)?;
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .filter_map(|s| standard_key(s.as_ref()))
        .collect();
    let parts = [id.as_bytes(), b".", ts_raw.as_bytes(), b".", body];
    matches_any(&keys, &parts, &sigs)
}

/// Signs like Slack: returns the `X-Slack-Signature` value `v0=<hex>` for `timestamp` (to be
/// sent as `X-Slack-Request-Timestamp`) and `body`.
pub fn sign_slack(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let parts = [b"v0:".as_slice(), ts.as_bytes(), b":", body];
    format!("v0={}", hex::encode(tag(secret.as_bytes(), &parts)))
}

/// Signs like GitHub: returns the `X-Hub-Signature-256` value `sha256=<hex>` for `body`.
pub fn sign_github(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(tag(secret.as_bytes(), &[body])))
}

/// Signs like PagerDuty V3: returns one `X-PagerDuty-Signature` entry `v1=<hex>` for `body`.
/// Join several with `,` to imitate a rotation.
pub fn sign_pagerduty(secret: &str, body: &[u8]) -> String {
    format!("v1={}", hex::encode(tag(secret.as_bytes(), &[body])))
}

/// Signs like Standard Webhooks: returns one `webhook-signature` entry `v1,<base64>` for the
/// message `id`, `timestamp` and `body`. `secret` is `whsec_<base64>` or bare base64; a secret
/// that does not decode to a non-empty key is [`VerifyError::NoSecret`].
pub fn sign_standard(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let key = standard_key(secret).ok_or(VerifyError::NoSecret)?;
    let ts = timestamp.to_string();
    let parts = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
    Ok(format!("v1,{}", BASE64.encode(tag(&key, &parts))))
}

/// HMAC-SHA256 keyed with `key`, fed with `parts` in order.
fn keyed_mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // `Hmac::new_from_slice` hashes or pads the key and never returns an error.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The raw HMAC-SHA256 tag of `parts` under `key`.
fn tag(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    keyed_mac(key, parts).finalize().into_bytes().to_vec()
}

/// `Ok` when any candidate signature is the MAC of `parts` under any key (constant-time
/// comparison per pair). Every key is tried, so rotated secrets pass.
fn matches_any(keys: &[Vec<u8>], parts: &[&[u8]], sigs: &[Vec<u8>]) -> Result<(), VerifyError> {
    for key in keys {
        let mac = keyed_mac(key, parts);
        if sigs.iter().any(|sig| mac.clone().verify_slice(sig).is_ok()) {
            return Ok(());
        }
    }
    Err(VerifyError::BadSignature)
}

/// Keys for providers whose secret is used as-is; empty secrets are skipped.
fn plain_keys<S: AsRef<str>>(secrets: &[S]) -> Result<Vec<Vec<u8>>, VerifyError> {
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| s.as_ref().as_bytes())
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if keys.is_empty() {
        Err(VerifyError::NoSecret)
    } else {
        Ok(keys)
    }
}

/// The Standard Webhooks key: base64 after an optional `whsec_` prefix. `None` when the secret
/// is not valid base64 or decodes to nothing.
fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(WHSEC_PREFIX).unwrap_or(secret);
    BASE64.decode(encoded).ok().filter(|key| !key.is_empty())
}

/// The first value of header `name`, trimmed; it must be visible ASCII.
fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    let value = headers.get(name).ok_or(VerifyError::MissingHeader(name))?;
    header_str(value, name)
}

fn header_str<'h>(
    value: &'h http::HeaderValue,
    name: &'static str,
) -> Result<&'h str, VerifyError> {
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| VerifyError::MalformedHeader(name))
}

/// Collects the candidate signatures from every occurrence of header `name`. `split` turns one
/// header value into its entries of the supported version: `Some(bytes)` when decodable, `None`
/// when not. No decodable entry at all is [`VerifyError::MalformedHeader`]; undecodable entries
/// next to a decodable one are ignored, so one bad entry cannot mask a valid one.
fn signatures(
    headers: &HeaderMap,
    name: &'static str,
    split: impl Fn(&str) -> Vec<Option<Vec<u8>>>,
) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return Err(VerifyError::MissingHeader(name));
    }
    let mut sigs = Vec::new();
    for value in values {
        sigs.extend(split(header_str(value, name)?).into_iter().flatten());
    }
    if sigs.is_empty() {
        Err(VerifyError::MalformedHeader(name))
    } else {
        Ok(sigs)
    }
}

/// A Unix timestamp written as 1–18 ASCII digits (no sign, no spaces inside).
fn parse_timestamp(raw: &str, name: &'static str) -> Result<i64, VerifyError> {
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedHeader(name));
    }
    raw.parse().map_err(|_| VerifyError::MalformedHeader(name))
}

/// Rejects timestamps more than [`TOLERANCE_SECS`] in the past or in the future.
fn check_fresh(ts: i64, now_unix: i64) -> Result<(), VerifyError> {
    if ts.abs_diff(now_unix) > TOLERANCE_SECS.unsigned_abs() {
        Err(VerifyError::StaleTimestamp(TOLERANCE_SECS))
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "verify_tests/mod.rs"]
mod tests;
