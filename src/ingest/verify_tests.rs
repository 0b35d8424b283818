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

const SLACK_VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_VECTOR_TS: i64 = 1_531_420_618;
const SLACK_VECTOR_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SLACK_VECTOR_SIG: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

const STD_VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STD_VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const STD_VECTOR_TS: i64 = 1_614_265_330;
const STD_VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const STD_VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

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

// ---------------------------------------------------------------- Slack

fn slack_headers(ts: i64, sig: &str) -> HeaderMap {
    headers(&[(SLACK_TIMESTAMP, &ts.to_string()), (SLACK_SIGNATURE, sig)])
}

fn slack_signed(secret: &str, ts: i64) -> HeaderMap {
    slack_headers(ts, &sign_slack(secret, ts, BODY))
}

#[test]
fn slack_request_signed_with_the_secret_passes() {
    assert_eq!(
        slack(&[SECRET], &slack_signed(SECRET, NOW), BODY, NOW),
        Ok(())
    );
}

#[test]
fn slack_request_signed_with_another_secret_is_a_bad_signature() {
    let h = slack_signed(OTHER, NOW);
    assert_eq!(
        slack(&[SECRET], &h, BODY, NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn slack_request_signed_with_the_second_rotated_secret_passes() {
    let h = slack_signed(SECRET, NOW);
    assert_eq!(slack(&[OTHER, SECRET], &h, BODY, NOW), Ok(()));
}

#[test]
fn slack_accepts_owned_strings_as_secrets() {
    let secrets = vec![OTHER.to_string(), SECRET.to_string()];
    assert_eq!(
        slack(&secrets, &slack_signed(SECRET, NOW), BODY, NOW),
        Ok(())
    );
}

#[test]
fn slack_timestamp_older_than_the_tolerance_is_stale() {
    let ts = NOW - TOLERANCE_SECS - 1;
    let h = slack_signed(SECRET, ts);
    let err = Err(VerifyError::StaleTimestamp(TOLERANCE_SECS));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_timestamp_further_in_the_future_than_the_tolerance_is_stale() {
    let ts = NOW + TOLERANCE_SECS + 1;
    let h = slack_signed(SECRET, ts);
    let err = Err(VerifyError::StaleTimestamp(TOLERANCE_SECS));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_timestamp_exactly_at_the_tolerance_in_either_direction_passes() {
    for ts in [NOW - TOLERANCE_SECS, NOW + TOLERANCE_SECS] {
        assert_eq!(
            slack(&[SECRET], &slack_signed(SECRET, ts), BODY, NOW),
            Ok(())
        );
    }
}

#[test]
fn slack_request_without_a_timestamp_header_is_rejected_as_missing() {
    let h = headers(&[(SLACK_SIGNATURE, &sign_slack(SECRET, NOW, BODY))]);
    let err = Err(VerifyError::MissingHeader(SLACK_TIMESTAMP));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_request_without_a_signature_header_is_rejected_as_missing() {
    let h = headers(&[(SLACK_TIMESTAMP, &NOW.to_string())]);
    let err = Err(VerifyError::MissingHeader(SLACK_SIGNATURE));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_signature_without_the_v0_prefix_is_malformed() {
    let sig = sign_slack(SECRET, NOW, BODY);
    let h = slack_headers(NOW, sig.trim_start_matches("v0="));
    let err = Err(VerifyError::MalformedHeader(SLACK_SIGNATURE));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_signature_that_is_not_hex_is_malformed() {
    let h = slack_headers(NOW, "v0=zz42");
    let err = Err(VerifyError::MalformedHeader(SLACK_SIGNATURE));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_timestamp_that_is_not_a_number_is_malformed() {
    for ts in [
        "yesterday",
        "",
        "-1531420618",
        "1531420618.5",
        "99999999999999999999",
    ] {
        let h = headers(&[(SLACK_TIMESTAMP, ts), (SLACK_SIGNATURE, "v0=00")]);
        let err = Err(VerifyError::MalformedHeader(SLACK_TIMESTAMP));
        assert_eq!(slack(&[SECRET], &h, BODY, NOW), err, "timestamp {ts:?}");
    }
}

#[test]
fn slack_header_that_is_not_ascii_is_malformed() {
    let mut h = slack_signed(SECRET, NOW);
    h.insert(SLACK_SIGNATURE, non_ascii());
    let err = Err(VerifyError::MalformedHeader(SLACK_SIGNATURE));
    assert_eq!(slack(&[SECRET], &h, BODY, NOW), err);
}

#[test]
fn slack_body_with_one_byte_changed_is_a_bad_signature() {
    let h = slack_signed(SECRET, NOW);
    let err = Err(VerifyError::BadSignature);
    assert_eq!(slack(&[SECRET], &h, &tampered(BODY), NOW), err);
}

#[test]
fn slack_signature_for_another_timestamp_is_a_bad_signature() {
    let h = slack_headers(NOW + 1, &sign_slack(SECRET, NOW, BODY));
    assert_eq!(
        slack(&[SECRET], &h, BODY, NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn slack_signature_in_upper_case_hex_passes() {
    let sig = sign_slack(SECRET, NOW, BODY);
    let upper = format!("v0={}", sig["v0=".len()..].to_uppercase());
    assert_eq!(
        slack(&[SECRET], &slack_headers(NOW, &upper), BODY, NOW),
        Ok(())
    );
}

#[test]
fn slack_signature_of_the_wrong_length_is_a_bad_signature() {
    let sig = sign_slack(SECRET, NOW, BODY);
    let h = slack_headers(NOW, &sig[..sig.len() - 2]);
    assert_eq!(
        slack(&[SECRET], &h, BODY, NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn slack_without_any_secret_reports_no_secret() {
    let none: &[&str] = &[];
    let h = slack_signed(SECRET, NOW);
    assert_eq!(slack(none, &h, BODY, NOW), Err(VerifyError::NoSecret));
}

#[test]
fn slack_with_only_an_empty_secret_reports_no_secret_instead_of_using_an_empty_key() {
    let h = slack_signed("", NOW);
    assert_eq!(slack(&[""], &h, BODY, NOW), Err(VerifyError::NoSecret));
}

#[test]
fn slack_published_vector_verifies_at_its_timestamp() {
    let h = slack_headers(SLACK_VECTOR_TS, SLACK_VECTOR_SIG);
    let body = SLACK_VECTOR_BODY.as_bytes();
    assert_eq!(
        slack(&[SLACK_VECTOR_SECRET], &h, body, SLACK_VECTOR_TS),
        Ok(())
    );
}

#[test]
fn sign_slack_reproduces_the_published_vector() {
    let sig = sign_slack(
        SLACK_VECTOR_SECRET,
        SLACK_VECTOR_TS,
        SLACK_VECTOR_BODY.as_bytes(),
    );
    assert_eq!(sig, SLACK_VECTOR_SIG);
}

// ---------------------------------------------------------------- GitHub

fn github_headers(sig: &str) -> HeaderMap {
    headers(&[(GITHUB_SIGNATURE, sig)])
}

#[test]
fn github_delivery_signed_with_the_secret_passes() {
    let h = github_headers(&sign_github(SECRET, BODY));
    assert_eq!(github(&[SECRET], &h, BODY), Ok(()));
}

#[test]
fn github_delivery_signed_with_another_secret_is_a_bad_signature() {
    let h = github_headers(&sign_github(OTHER, BODY));
    assert_eq!(github(&[SECRET], &h, BODY), Err(VerifyError::BadSignature));
}

#[test]
fn github_delivery_signed_with_the_second_rotated_secret_passes() {
    let h = github_headers(&sign_github(SECRET, BODY));
    assert_eq!(github(&[OTHER, SECRET], &h, BODY), Ok(()));
}

#[test]
fn github_delivery_without_a_signature_header_is_rejected_as_missing() {
    let h = headers(&[("x-hub-signature", "sha1=0000")]);
    let err = Err(VerifyError::MissingHeader(GITHUB_SIGNATURE));
    assert_eq!(github(&[SECRET], &h, BODY), err);
}

#[test]
fn github_signature_without_the_sha256_prefix_is_malformed() {
    let sig = sign_github(SECRET, BODY);
    for bad in [
        sig.trim_start_matches("sha256="),
        &sig.replacen("sha256", "sha1", 1),
    ] {
        let err = Err(VerifyError::MalformedHeader(GITHUB_SIGNATURE));
        assert_eq!(github(&[SECRET], &github_headers(bad), BODY), err, "{bad}");
    }
}

#[test]
fn github_signature_that_is_not_hex_is_malformed() {
    let h = github_headers("sha256=not-hex-at-all");
    let err = Err(VerifyError::MalformedHeader(GITHUB_SIGNATURE));
    assert_eq!(github(&[SECRET], &h, BODY), err);
}

#[test]
fn github_header_that_is_not_ascii_is_malformed() {
    let mut h = HeaderMap::new();
    h.insert(GITHUB_SIGNATURE, non_ascii());
    let err = Err(VerifyError::MalformedHeader(GITHUB_SIGNATURE));
    assert_eq!(github(&[SECRET], &h, BODY), err);
}

#[test]
fn github_body_with_one_byte_changed_is_a_bad_signature() {
    let h = github_headers(&sign_github(SECRET, BODY));
    let err = Err(VerifyError::BadSignature);
    assert_eq!(github(&[SECRET], &h, &tampered(BODY)), err);
}

#[test]
fn github_signature_in_upper_case_hex_passes() {
    let sig = sign_github(SECRET, BODY);
    let upper = format!("sha256={}", sig["sha256=".len()..].to_uppercase());
    assert_eq!(github(&[SECRET], &github_headers(&upper), BODY), Ok(()));
}

#[test]
fn github_without_any_secret_reports_no_secret() {
    let h = github_headers(&sign_github(SECRET, BODY));
    let none: Vec<String> = Vec::new();
    assert_eq!(github(&none, &h, BODY), Err(VerifyError::NoSecret));
}

// ---------------------------------------------------------------- PagerDuty

fn pagerduty_headers(sig: &str) -> HeaderMap {
    headers(&[(PAGERDUTY_SIGNATURE, sig)])
}

#[test]
fn pagerduty_webhook_signed_with_the_secret_passes() {
    let h = pagerduty_headers(&sign_pagerduty(SECRET, BODY));
    assert_eq!(pagerduty(&[SECRET], &h, BODY), Ok(()));
}

#[test]
fn pagerduty_webhook_signed_with_another_secret_is_a_bad_signature() {
    let h = pagerduty_headers(&sign_pagerduty(OTHER, BODY));
    assert_eq!(
        pagerduty(&[SECRET], &h, BODY),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn pagerduty_webhook_signed_with_the_second_rotated_secret_passes() {
    let h = pagerduty_headers(&sign_pagerduty(SECRET, BODY));
    assert_eq!(pagerduty(&[OTHER, SECRET], &h, BODY), Ok(()));
}

#[test]
fn pagerduty_header_with_two_signatures_passes_when_only_the_second_matches() {
    let sig = format!(
        "{},{}",
        sign_pagerduty(OTHER, BODY),
        sign_pagerduty(SECRET, BODY)
    );
    assert_eq!(pagerduty(&[SECRET], &pagerduty_headers(&sig), BODY), Ok(()));
}

#[test]
fn pagerduty_header_with_two_signatures_and_spaces_passes_when_the_first_matches() {
    let sig = format!(
        " {} , {} ",
        sign_pagerduty(SECRET, BODY),
        sign_pagerduty(OTHER, BODY)
    );
    assert_eq!(pagerduty(&[SECRET], &pagerduty_headers(&sig), BODY), Ok(()));
}

#[test]
fn pagerduty_header_with_two_signatures_that_both_mismatch_is_a_bad_signature() {
    let sig = format!(
        "{},{}",
        sign_pagerduty(OTHER, BODY),
        sign_pagerduty("x", BODY)
    );
    let err = Err(VerifyError::BadSignature);
    assert_eq!(pagerduty(&[SECRET], &pagerduty_headers(&sig), BODY), err);
}

#[test]
fn pagerduty_entries_of_other_versions_are_ignored() {
    let good = sign_pagerduty(SECRET, BODY);
    let sig = format!("v2=abcdef,{good},v0={}", &good["v1=".len()..]);
    assert_eq!(pagerduty(&[SECRET], &pagerduty_headers(&sig), BODY), Ok(()));
}

#[test]
fn pagerduty_signature_from_a_secret_only_under_another_version_does_not_pass() {
    let good = sign_pagerduty(SECRET, BODY);
    let sig = format!(
        "v2={},{}",
        &good["v1=".len()..],
        sign_pagerduty(OTHER, BODY)
    );
    let err = Err(VerifyError::BadSignature);
    assert_eq!(pagerduty(&[SECRET], &pagerduty_headers(&sig), BODY), err);
}

#[test]
fn pagerduty_header_without_any_v1_entry_is_malformed() {
    for sig in ["v2=abcdef", "", " , ", "abcdef0123", "V1=abcdef"] {
        let err = Err(VerifyError::MalformedHeader(PAGERDUTY_SIGNATURE));
        assert_eq!(
            pagerduty(&[SECRET], &pagerduty_headers(sig), BODY),
            err,
            "{sig:?}"
        );
    }
}

#[test]
fn pagerduty_header_whose_only_v1_entry_is_not_hex_is_malformed() {
    let h = pagerduty_headers("v1=nothex!");
    let err = Err(VerifyError::MalformedHeader(PAGERDUTY_SIGNATURE));
    assert_eq!(pagerduty(&[SECRET], &h, BODY), err);
}

#[test]
fn pagerduty_non_hex_entry_does_not_hide_a_valid_one() {
    let sig = format!("v1=nothex!,{}", sign_pagerduty(SECRET, BODY));
    assert_eq!(pagerduty(&[SECRET], &pagerduty_headers(&sig), BODY), Ok(()));
}

#[test]
fn pagerduty_signatures_split_over_two_header_lines_are_all_considered() {
    let other = sign_pagerduty(OTHER, BODY);
    let good = sign_pagerduty(SECRET, BODY);
    let h = headers(&[(PAGERDUTY_SIGNATURE, &other), (PAGERDUTY_SIGNATURE, &good)]);
    assert_eq!(pagerduty(&[SECRET], &h, BODY), Ok(()));
}

#[test]
fn pagerduty_webhook_without_a_signature_header_is_rejected_as_missing() {
    let err = Err(VerifyError::MissingHeader(PAGERDUTY_SIGNATURE));
    assert_eq!(pagerduty(&[SECRET], &HeaderMap::new(), BODY), err);
}

#[test]
fn pagerduty_header_that_is_not_ascii_is_malformed() {
    let mut h = HeaderMap::new();
    h.insert(PAGERDUTY_SIGNATURE, non_ascii());
    let err = Err(VerifyError::MalformedHeader(PAGERDUTY_SIGNATURE));
    assert_eq!(pagerduty(&[SECRET], &h, BODY), err);
}

#[test]
fn pagerduty_body_with_one_byte_changed_is_a_bad_signature() {
    let h = pagerduty_headers(&sign_pagerduty(SECRET, BODY));
    let err = Err(VerifyError::BadSignature);
    assert_eq!(pagerduty(&[SECRET], &h, &tampered(BODY)), err);
}

#[test]
fn pagerduty_signature_in_upper_case_hex_passes() {
    let sig = sign_pagerduty(SECRET, BODY);
    let upper = format!("v1={}", sig["v1=".len()..].to_uppercase());
    assert_eq!(
        pagerduty(&[SECRET], &pagerduty_headers(&upper), BODY),
        Ok(())
    );
}

#[test]
fn pagerduty_without_any_secret_reports_no_secret() {
    let h = pagerduty_headers(&sign_pagerduty(SECRET, BODY));
    let none: &[&str] = &[];
    assert_eq!(pagerduty(none, &h, BODY), Err(VerifyError::NoSecret));
}

// ---------------------------------------------------------------- Standard Webhooks

fn std_headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
    headers(&[
        (STANDARD_ID, id),
        (STANDARD_TIMESTAMP, &ts.to_string()),
        (STANDARD_SIGNATURE, sig),
    ])
}

fn std_signed(secret: &str, ts: i64) -> HeaderMap {
    std_headers(
        MSG_ID,
        ts,
        &sign_standard(secret, MSG_ID, ts, BODY).unwrap(),
    )
}

fn std_without(name: &'static str) -> HeaderMap {
    let mut h = std_signed(WHSEC, NOW);
    h.remove(name);
    h
}

#[test]
fn standard_webhook_signed_with_the_secret_passes() {
    assert_eq!(
        standard_webhooks(&[WHSEC], &std_signed(WHSEC, NOW), BODY, NOW),
        Ok(())
    );
}

#[test]
fn standard_webhook_signed_with_another_secret_is_a_bad_signature() {
    let h = std_signed(WHSEC_OTHER, NOW);
    let err = Err(VerifyError::BadSignature);
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_signed_with_the_second_rotated_secret_passes() {
    let h = std_signed(WHSEC, NOW);
    assert_eq!(
        standard_webhooks(&[WHSEC_OTHER, WHSEC], &h, BODY, NOW),
        Ok(())
    );
}

#[test]
fn standard_webhook_secret_without_the_whsec_prefix_is_decoded_as_base64() {
    let bare = WHSEC.trim_start_matches("whsec_");
    let h = std_signed(WHSEC, NOW);
    assert_eq!(standard_webhooks(&[bare], &h, BODY, NOW), Ok(()));
}

#[test]
fn standard_webhook_secret_that_is_not_base64_never_matches_and_does_not_panic() {
    let h = std_signed(WHSEC, NOW);
    for bad in ["whsec_!!!not base64!!!", "plain-text-secret", "whsec_"] {
        let err = Err(VerifyError::BadSignature);
        assert_eq!(standard_webhooks(&[bad], &h, BODY, NOW), err, "{bad:?}");
    }
}

#[test]
fn standard_webhook_invalid_secret_next_to_a_valid_one_still_passes() {
    let h = std_signed(WHSEC, NOW);
    assert_eq!(
        standard_webhooks(&["whsec_%%%", WHSEC], &h, BODY, NOW),
        Ok(())
    );
}

#[test]
fn standard_webhook_timestamp_older_than_the_tolerance_is_stale() {
    let h = std_signed(WHSEC, NOW - TOLERANCE_SECS - 1);
    let err = Err(VerifyError::StaleTimestamp(TOLERANCE_SECS));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_timestamp_further_in_the_future_than_the_tolerance_is_stale() {
    let h = std_signed(WHSEC, NOW + TOLERANCE_SECS + 1);
    let err = Err(VerifyError::StaleTimestamp(TOLERANCE_SECS));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_timestamp_exactly_at_the_tolerance_in_either_direction_passes() {
    for ts in [NOW - TOLERANCE_SECS, NOW + TOLERANCE_SECS] {
        let h = std_signed(WHSEC, ts);
        assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), Ok(()));
    }
}

#[test]
fn standard_webhook_without_an_id_header_is_rejected_as_missing() {
    let err = Err(VerifyError::MissingHeader(STANDARD_ID));
    assert_eq!(
        standard_webhooks(&[WHSEC], &std_without(STANDARD_ID), BODY, NOW),
        err
    );
}

#[test]
fn standard_webhook_without_a_timestamp_header_is_rejected_as_missing() {
    let h = std_without(STANDARD_TIMESTAMP);
    let err = Err(VerifyError::MissingHeader(STANDARD_TIMESTAMP));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_without_a_signature_header_is_rejected_as_missing() {
    let h = std_without(STANDARD_SIGNATURE);
    let err = Err(VerifyError::MissingHeader(STANDARD_SIGNATURE));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_with_an_empty_id_is_malformed() {
    let mut h = std_signed(WHSEC, NOW);
    h.insert(STANDARD_ID, HeaderValue::from_static(""));
    let err = Err(VerifyError::MalformedHeader(STANDARD_ID));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_timestamp_that_is_not_a_number_is_malformed() {
    let mut h = std_signed(WHSEC, NOW);
    h.insert(
        STANDARD_TIMESTAMP,
        HeaderValue::from_static("2021-02-26T00:00:00Z"),
    );
    let err = Err(VerifyError::MalformedHeader(STANDARD_TIMESTAMP));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_signature_that_is_not_base64_is_malformed() {
    let h = std_headers(MSG_ID, NOW, "v1,***not-base64***");
    let err = Err(VerifyError::MalformedHeader(STANDARD_SIGNATURE));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_signature_without_a_v1_entry_is_malformed() {
    let sig = sign_standard(WHSEC, MSG_ID, NOW, BODY).unwrap();
    let bare = sig.trim_start_matches("v1,").to_string();
    for bad in [
        bare,
        sig.replacen("v1,", "v1a,", 1),
        sig.replacen(',', "=", 1),
    ] {
        let h = std_headers(MSG_ID, NOW, &bad);
        let err = Err(VerifyError::MalformedHeader(STANDARD_SIGNATURE));
        assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err, "{bad}");
    }
}

#[test]
fn standard_webhook_header_that_is_not_ascii_is_malformed() {
    let mut h = std_signed(WHSEC, NOW);
    h.insert(STANDARD_SIGNATURE, non_ascii());
    let err = Err(VerifyError::MalformedHeader(STANDARD_SIGNATURE));
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_body_with_one_byte_changed_is_a_bad_signature() {
    let h = std_signed(WHSEC, NOW);
    let err = Err(VerifyError::BadSignature);
    assert_eq!(standard_webhooks(&[WHSEC], &h, &tampered(BODY), NOW), err);
}

#[test]
fn standard_webhook_signature_for_another_message_id_is_a_bad_signature() {
    let sig = sign_standard(WHSEC, MSG_ID, NOW, BODY).unwrap();
    let h = std_headers("msg_other", NOW, &sig);
    let err = Err(VerifyError::BadSignature);
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), err);
}

#[test]
fn standard_webhook_with_several_signatures_passes_when_only_the_last_matches() {
    let other = sign_standard(WHSEC_OTHER, MSG_ID, NOW, BODY).unwrap();
    let good = sign_standard(WHSEC, MSG_ID, NOW, BODY).unwrap();
    let sig = format!("v1a,c29tZXRoaW5n {other}  {good}");
    let h = std_headers(MSG_ID, NOW, &sig);
    assert_eq!(standard_webhooks(&[WHSEC], &h, BODY, NOW), Ok(()));
}

#[test]
fn standard_webhook_without_any_secret_reports_no_secret() {
    let none: &[&str] = &[];
    let h = std_signed(WHSEC, NOW);
    assert_eq!(
        standard_webhooks(none, &h, BODY, NOW),
        Err(VerifyError::NoSecret)
    );
}

#[test]
fn standard_webhook_published_vector_verifies_at_its_timestamp() {
    let h = std_headers(STD_VECTOR_ID, STD_VECTOR_TS, STD_VECTOR_SIG);
    let result = standard_webhooks(&[STD_VECTOR_SECRET], &h, STD_VECTOR_BODY, STD_VECTOR_TS);
    assert_eq!(result, Ok(()));
}

#[test]
fn sign_standard_reproduces_the_published_vector() {
    let sig = sign_standard(
        STD_VECTOR_SECRET,
        STD_VECTOR_ID,
        STD_VECTOR_TS,
        STD_VECTOR_BODY,
    );
    assert_eq!(sig.as_deref(), Ok(STD_VECTOR_SIG));
}

#[test]
fn sign_standard_with_a_secret_that_is_not_base64_reports_no_secret() {
    let sig = sign_standard("whsec_!!!", MSG_ID, NOW, BODY);
    assert_eq!(sig, Err(VerifyError::NoSecret));
}

// ---------------------------------------------------------------- errors

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
