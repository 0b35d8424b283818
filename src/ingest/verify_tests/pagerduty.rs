use super::*;

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
