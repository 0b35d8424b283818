//! The identifier extractor: each provider's fields (the router's fallback and the ingest read the
//! same), GitHub lowercased, values unfit for a header or blank left out, unreadable payloads empty.

use super::*;

fn ids(source: &str, body: &str) -> Vec<Identifier> {
    from_payload(source, body.as_bytes())
}

fn id(kind: IdentifierKind, value: &str) -> Identifier {
    Identifier::new(kind, value)
}

#[test]
fn each_provider_payload_names_its_identifiers() {
    assert_eq!(
        ids("github", r#"{"repository":{"full_name":"Acme/API"}}"#),
        vec![
            id(IdentifierKind::GithubRepos, "acme/api"),
            id(IdentifierKind::GithubOwners, "acme")
        ]
    );
    assert_eq!(
        ids(
            "pagerduty",
            r#"{"event":{"data":{"service":{"id":"PSVC1"}}}}"#
        ),
        vec![id(IdentifierKind::PagerdutyServiceIds, "PSVC1")]
    );
    assert_eq!(
        ids("slack", r#"{"team_id":"T1","event":{"channel":"C1"}}"#),
        vec![
            id(IdentifierKind::SlackChannelIds, "C1"),
            id(IdentifierKind::SlackWorkspaceIds, "T1")
        ]
    );
    assert_eq!(
        ids(
            "incidentio",
            r#"{"event_type":"public_alert.alert_created_v1","public_alert.alert_created_v1":{"alert_source_id":"AS1"}}"#
        ),
        vec![id(IdentifierKind::IncidentioAlertSourceIds, "AS1")]
    );
}

#[test]
fn a_slack_interaction_is_read_from_its_json_or_from_the_stored_form() {
    let json = r#"{"type":"block_actions","channel":{"id":"C9"},"team":{"id":"T9"}}"#;
    let want = vec![
        id(IdentifierKind::SlackChannelIds, "C9"),
        id(IdentifierKind::SlackWorkspaceIds, "T9"),
    ];
    assert_eq!(ids("slack", json), want);
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", json)
        .finish();
    assert_eq!(ids("slack", &form), want);
}

#[test]
fn values_unfit_for_a_header_or_blank_are_left_out() {
    assert!(ids("github", r#"{"repository":{"full_name":"a\nb"}}"#).is_empty());
    assert!(ids("github", r#"{"repository":{"full_name":"   "}}"#).is_empty());
    let long = "x".repeat(300);
    let body = format!(r#"{{"event":{{"data":{{"service":{{"id":"{long}"}}}}}}}}"#);
    assert!(ids("pagerduty", &body).is_empty());
    assert_eq!(
        ids("slack", r#"{"team_id":"T1","event":{"channel":"C\u0001"}}"#),
        vec![id(IdentifierKind::SlackWorkspaceIds, "T1")]
    );
}

#[test]
fn unreadable_payloads_and_unknown_sources_name_nothing() {
    assert!(ids("github", "not json").is_empty());
    assert!(ids("pagerduty", r#"{"event":{}}"#).is_empty());
    assert!(ids("incidentio", r#"{"event_type":"x"}"#).is_empty());
    assert!(ids("datadog", r#"{"repository":{"full_name":"a/b"}}"#).is_empty());
}

#[test]
fn the_github_owner_is_the_signed_owner_login_else_the_repo_prefix() {
    assert_eq!(
        ids(
            "github",
            r#"{"repository":{"full_name":"Acme/API","owner":{"login":"Acme"}}}"#
        ),
        vec![
            id(IdentifierKind::GithubRepos, "acme/api"),
            id(IdentifierKind::GithubOwners, "acme")
        ]
    );
    assert_eq!(
        ids("github", r#"{"repository":{"owner":{"login":"Org-X"}}}"#),
        vec![id(IdentifierKind::GithubOwners, "org-x")]
    );
}
