//! What every provider module shares: the verified request it reads, the outcome it returns, and
//! small readers for content types, JSON bodies, headers and delivery ids. Pure.

use super::error::IngestError;
use super::event::Signal;
use crate::domain::headers::header_safe;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const JSON: &str = "application/json";
pub const FORM: &str = "application/x-www-form-urlencoded";

/// One webhook request as received: headers, the raw body, and the current Unix time.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now_unix: i64,
}

/// What a provider module decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A signal to publish.
    Publish(Signal),
    /// A handshake (Slack `url_verification`, GitHub `ping`, PagerDuty `pagey.ping`): answered with
    /// this JSON and not published, since it carries no incident and no route.
    Reply(Value),
}

/// 400 unless the request's content type is `expected` (parameters such as `charset` allowed).
pub fn require_content_type(inc: &Incoming<'_>, expected: &'static str) -> Result<(), IngestError> {
    let given = inc
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(IngestError::MediaType { expected })
    }
}

/// Parses a JSON body into `T` (400 `malformed_body` when it is not).
pub fn json<T: DeserializeOwned>(provider: &'static str, body: &[u8]) -> Result<T, IngestError> {
    serde_json::from_slice(body)
        .map_err(|e| IngestError::malformed(provider, format!("not the expected JSON: {e}")))
}

/// A header's value when present and printable.
pub fn header<'a>(inc: &Incoming<'a>, name: &str) -> Option<&'a str> {
    inc.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A header that must be present (400 `missing_header` otherwise).
pub fn required_header<'a>(inc: &Incoming<'a>, name: &'static str) -> Result<&'a str, IngestError> {
    header(inc, name).ok_or(IngestError::MissingHeader(name))
}

/// The headers among `names` that are present, to carry along.
pub fn forward(inc: &Incoming<'_>, names: &[&'static str]) -> Vec<(&'static str, String)> {
    names
        .iter()
        .filter_map(|n| header(inc, n).map(|v| (*n, v.to_owned())))
        .collect()
}

/// A delivery id fit for `ce-id` and `Nats-Msg-Id`: printable ASCII, at most 256 bytes.
pub fn checked_id(provider: &'static str, id: &str) -> Result<String, IngestError> {
    if header_safe(id) {
        Ok(id.to_owned())
    } else {
        Err(IngestError::malformed(
            provider,
            "the delivery id is empty, too long or not printable ASCII",
        ))
    }
}

/// For payloads without a delivery id: the body's SHA-256, so a retry of the same bytes still
/// collapses.
pub fn digest_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    // Invariant: a SHA-256 digest is 32 bytes.
    format!("sha256-{}", hex::encode(&digest[..16]))
}

/// A string field of a JSON value, when present and short enough to be an identifier.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| header_safe(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(headers: &HeaderMap) -> Incoming<'_> {
        Incoming {
            headers,
            body: b"{}",
            now_unix: 0,
        }
    }

    #[test]
    fn a_content_type_with_a_charset_matches_and_another_type_does_not() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(require_content_type(&inc(&h), JSON).is_ok());
        h.insert("content-type", "text/plain".parse().unwrap());
        assert_eq!(
            require_content_type(&inc(&h), JSON).unwrap_err().reason(),
            "unsupported_media_type"
        );
        assert!(require_content_type(&inc(&HeaderMap::new()), JSON).is_err());
    }

    #[test]
    fn delivery_ids_must_be_printable_and_short() {
        assert!(checked_id("x", "Ev0123").is_ok());
        assert!(checked_id("x", "a\nb").is_err());
        assert!(checked_id("x", "").is_err());
        assert!(checked_id("x", &"a".repeat(300)).is_err());
        assert_eq!(digest_id(b"same"), digest_id(b"same"));
        assert_ne!(digest_id(b"same"), digest_id(b"other"));
    }
}
