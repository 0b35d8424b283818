//! Target `webhook_verify`: the signature check of every provider (`ingest::verify`) on raw bytes.

use crate::common::{bytes, header_value_bytes, text};
use http::{HeaderMap, HeaderName, HeaderValue};
use ifox::ingest::verify::{self, VerifyError};
use proptest::prelude::*;

/// Two different plain secrets (GitHub, Slack, PagerDuty).
fn two_secrets() -> impl Strategy<Value = (String, String)> {
    ("[!-~]{1,40}", "[!-~]{1,40}").prop_filter("distinct", |(a, b)| a != b)
}

/// Two different Standard Webhooks secrets, `whsec_` + base64 of a key.
fn two_whsecs() -> impl Strategy<Value = (String, String)> {
    use base64::Engine as _;
    let one = prop::collection::vec(any::<u8>(), 1..48).prop_map(|key| {
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    });
    (one.clone(), one).prop_filter("distinct", |(a, b)| a != b)
}

fn map(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            *name,
            HeaderValue::from_str(value).expect("generated value"),
        );
    }
    h
}

/// A message id as senders write it (visible ASCII, no spaces).
fn msg_id() -> impl Strategy<Value = String> {
    "[!-~]{1,40}"
}

/// Headers a hostile caller sends: the provider's names (and a few others) with any values HTTP lets
/// through, each present zero, one or two times.
fn hostile_headers() -> impl Strategy<Value = HeaderMap> {
    let names = prop::sample::select(vec![
        verify::SLACK_TIMESTAMP,
        verify::SLACK_SIGNATURE,
        verify::GITHUB_SIGNATURE,
        verify::PAGERDUTY_SIGNATURE,
        verify::STANDARD_ID,
        verify::STANDARD_TIMESTAMP,
        verify::STANDARD_SIGNATURE,
        "content-type",
    ]);
    let value = prop_oneof![
        2 => header_value_bytes(),
        1 => ("(v0=|sha256=|v1=|v1,| v1=|)", "[0-9a-fA-F]{0,70}|[A-Za-z0-9+/=]{0,50}")
            .prop_map(|(p, s)| format!("{p}{s}").into_bytes()),
        1 => "[0-9]{1,20}|-[0-9]{1,5}|\\+[0-9]{1,5}".prop_map(String::into_bytes),
    ];
    prop::collection::vec((names, value), 0..8).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                h.append(HeaderName::from_static(name), v);
            }
        }
        h
    })
}

fn any_time() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), 1_600_000_000i64..1_900_000_000]
}

proptest! {
    /// A body that verifies under one secret never verifies under another, and verifies again once
    /// its secret is anywhere in the list (rotation), for GitHub and PagerDuty.
    #[test]
    fn a_body_signed_with_one_secret_verifies_under_it_and_never_under_another(
        (secret, other) in two_secrets(),
        body in bytes(2048),
    ) {
        let gh = map(&[(verify::GITHUB_SIGNATURE, verify::sign_github(&secret, &body))]);
        prop_assert_eq!(verify::github(&[secret.as_str()], &gh, &body), Ok(()));
        prop_assert_eq!(verify::github(&[other.as_str()], &gh, &body), Err(VerifyError::BadSignature));
        prop_assert_eq!(verify::github(&[other.as_str(), secret.as_str()], &gh, &body), Ok(()));
        let pd = map(&[(verify::PAGERDUTY_SIGNATURE, verify::sign_pagerduty(&secret, &body))]);
        prop_assert_eq!(verify::pagerduty(&[secret.as_str()], &pd, &body), Ok(()));
        prop_assert_eq!(verify::pagerduty(&[other.as_str()], &pd, &body), Err(VerifyError::BadSignature));
        prop_assert_eq!(verify::pagerduty(&[other.as_str(), secret.as_str()], &pd, &body), Ok(()));
    }

    /// A Slack request verifies under its own secret within 300 s of its timestamp (either way),
    /// never under another secret, and is stale beyond the window.
    #[test]
    fn a_slack_request_verifies_only_under_its_secret_and_inside_the_window(
        (secret, other) in two_secrets(),
        body in bytes(2048),
        ts in 0i64..4_000_000_000,
        skew in -1_000i64..1_000,
    ) {
        let h = map(&[
            (verify::SLACK_TIMESTAMP, ts.to_string()),
            (verify::SLACK_SIGNATURE, verify::sign_slack(&secret, ts, &body)),
        ]);
        let now = ts + skew;
        let want = || {
            if skew.abs() <= verify::TOLERANCE_SECS {
                Ok(())
            } else {
                Err(VerifyError::StaleTimestamp(verify::TOLERANCE_SECS))
            }
        };
        prop_assert_eq!(verify::slack(&[secret.as_str()], &h, &body, now), want());
        let wrong = verify::slack(&[other.as_str()], &h, &body, now);
        prop_assert!(wrong.is_err(), "verified under another secret");
        prop_assert_eq!(verify::slack(&[other.as_str(), secret.as_str()], &h, &body, now), want());
    }

    /// A Standard Webhooks request (incident.io, generic) verifies under its own `whsec_` secret,
    /// never under another, and never once its id or body changes.
    #[test]
    fn a_standard_webhook_verifies_only_under_its_secret_id_and_body(
        (secret, other) in two_whsecs(),
        id in msg_id(),
        other_id in msg_id(),
        body in bytes(2048),
        ts in 0i64..4_000_000_000,
    ) {
        let sig = verify::sign_standard(&secret, &id, ts, &body).expect("a valid secret");
        let h = map(&[
            (verify::STANDARD_ID, id.clone()),
            (verify::STANDARD_TIMESTAMP, ts.to_string()),
            (verify::STANDARD_SIGNATURE, sig.clone()),
        ]);
        prop_assert_eq!(verify::standard_webhooks(&[secret.as_str()], &h, &body, ts), Ok(()));
        prop_assert_eq!(
            verify::standard_webhooks(&[other.as_str()], &h, &body, ts),
            Err(VerifyError::BadSignature)
        );
        if other_id != id {
            let moved = map(&[
                (verify::STANDARD_ID, other_id),
                (verify::STANDARD_TIMESTAMP, ts.to_string()),
                (verify::STANDARD_SIGNATURE, sig),
            ]);
            prop_assert_eq!(
                verify::standard_webhooks(&[secret.as_str()], &moved, &body, ts),
                Err(VerifyError::BadSignature)
            );
        }
        let mut changed = body.clone();
        changed.push(b' ');
        prop_assert_eq!(
            verify::standard_webhooks(&[secret.as_str()], &h, &changed, ts),
            Err(VerifyError::BadSignature)
        );
    }

    /// A body changed in any one byte never verifies under the signature of the original.
    #[test]
    fn a_changed_body_never_verifies(
        (secret, _) in two_secrets(),
        body in bytes(512).prop_filter("not empty", |b| !b.is_empty()),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut changed = body.clone();
        changed[at.index(body.len())] ^= flip;
        let gh = map(&[(verify::GITHUB_SIGNATURE, verify::sign_github(&secret, &body))]);
        prop_assert_eq!(verify::github(&[secret.as_str()], &gh, &changed), Err(VerifyError::BadSignature));
        let pd = map(&[(verify::PAGERDUTY_SIGNATURE, verify::sign_pagerduty(&secret, &body))]);
        prop_assert_eq!(verify::pagerduty(&[secret.as_str()], &pd, &changed), Err(VerifyError::BadSignature));
        let sl = map(&[
            (verify::SLACK_TIMESTAMP, "1700000000".to_owned()),
            (verify::SLACK_SIGNATURE, verify::sign_slack(&secret, 1_700_000_000, &body)),
        ]);
        prop_assert_eq!(
            verify::slack(&[secret.as_str()], &sl, &changed, 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
    }

    /// Any headers and any bytes fed to any verifier, at any "now", return `Ok` or a typed error and
    /// never panic; and headers nobody signed never verify (a forged signature would have to guess
    /// an HMAC).
    #[test]
    fn any_headers_and_bytes_give_a_typed_answer_and_never_verify(
        headers in hostile_headers(),
        body in bytes(1024),
        secrets in prop::collection::vec(text(), 0..3),
        now in any_time(),
    ) {
        let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
        for result in [
            verify::slack(&s, &headers, &body, now),
            verify::github(&s, &headers, &body),
            verify::pagerduty(&s, &headers, &body),
            verify::standard_webhooks(&s, &headers, &body, now),
        ] {
            prop_assert!(result.is_err(), "unsigned headers verified: {:?}", headers);
            let reason = result.unwrap_err().reason();
            prop_assert!(!reason.is_empty());
        }
    }

    /// Signing never panics on any secret, id, time or body: a secret that cannot be a Standard
    /// Webhooks key is `NoSecret`, not a crash.
    #[test]
    fn signing_any_input_gives_a_value_or_no_secret(
        secret in text(),
        id in text(),
        ts in any::<i64>(),
        body in bytes(256),
    ) {
        let _ = verify::sign_github(&secret, &body);
        let _ = verify::sign_pagerduty(&secret, &body);
        let _ = verify::sign_slack(&secret, ts, &body);
        match verify::sign_standard(&secret, &id, ts, &body) {
            Ok(sig) => prop_assert!(sig.starts_with("v1,")),
            Err(e) => prop_assert_eq!(e, VerifyError::NoSecret),
        }
    }
}
