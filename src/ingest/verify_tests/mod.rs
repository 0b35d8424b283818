//! Signature vectors for every provider: valid, wrong secret, rotated secret, stale and future
//! timestamps, missing and malformed headers, tampered bodies. Shared fixtures here, one file per
//! provider.

use super::*;
use http::HeaderValue;

const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"event":{"id":"01ABC","event_type":"incident.triggered"}}"#;
const SECRET: &str = "s3cret-signing-key";
const OTHER: &str = "not-the-right-key";
/// 32 random bytes, base64, in Standard Webhooks form.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSEC_OTHER: &str = "whsec_dGhpcyBpcyBhbm90aGVyIGtleSBlbnRpcmVseQ==";
const MSG_ID: &str = "msg_2b7Y9kQ";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn tampered(body: &[u8]) -> Vec<u8> {
    let mut copy = body.to_vec();
    copy[5] ^= 0x01;
    copy
}

/// A header value holding a byte that is not visible ASCII.
fn non_ascii() -> HeaderValue {
    HeaderValue::from_bytes(b"v0=\xe9abc").unwrap()
}

mod github;
mod pagerduty;
mod slack;
mod standard;

#[test]
fn every_error_has_a_stable_reason_label() {
    let cases = [
        (
            VerifyError::MissingHeader(SLACK_SIGNATURE),
            "missing_header",
        ),
        (
            VerifyError::MalformedHeader(SLACK_SIGNATURE),
            "malformed_header",
        ),
        (
            VerifyError::StaleTimestamp(TOLERANCE_SECS),
            "stale_timestamp",
        ),
        (VerifyError::BadSignature, "bad_signature"),
        (VerifyError::NoSecret, "no_secret"),
    ];
    for (err, reason) in cases {
        assert_eq!(err.reason(), reason);
    }
}

#[test]
fn error_messages_name_the_header_and_the_tolerance() {
    let missing = VerifyError::MissingHeader(STANDARD_ID).to_string();
    assert_eq!(missing, "missing header webhook-id");
    let stale = VerifyError::StaleTimestamp(TOLERANCE_SECS).to_string();
    assert_eq!(stale, "timestamp outside the 300 s tolerance");
}
