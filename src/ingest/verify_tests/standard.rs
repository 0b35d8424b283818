use super::*;

const STD_VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STD_VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const STD_VECTOR_TS: i64 = 1_614_265_330;
const STD_VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const STD_VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

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
