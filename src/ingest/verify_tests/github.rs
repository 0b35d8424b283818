use super::*;

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
