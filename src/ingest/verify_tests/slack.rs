use super::*;

const SLACK_VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_VECTOR_TS: i64 = 1_531_420_618;
const SLACK_VECTOR_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SLACK_VECTOR_SIG: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

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
