//! The event contract's subject, `ifox.events.<source>.<type>`, and the rule for source names.
//! Pure. (The headers are in [`super::headers`].)
//!
//! `<type>` is `ce-type` lowercased with every character outside `[a-z0-9_-]` (dots included) turned
//! into `_`, so the subject always has exactly four tokens (`ifox.events.pagerduty.*` matches every
//! PagerDuty event) and `ce-type` keeps the provider's own spelling (`incident.triggered`).

/// Source names the built-in providers use; a generic source may not take them.
pub const BUILT_IN_SOURCES: [&str; 5] = ["slack", "github", "pagerduty", "incidentio", "generic"];

/// The subject of an event of `source` and `event_type`.
pub fn event_subject(source: &str, event_type: &str) -> String {
    format!("ifox.events.{source}.{}", subject_token(event_type))
}

/// A subject token from a provider's event type: lowercase `[a-z0-9_-]`, anything else `_`, at most
/// 64 characters; empty becomes `unknown`.
pub fn subject_token(raw: &str) -> String {
    let token: String = raw
        .chars()
        .take(64)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "unknown".to_owned()
    } else {
        token
    }
}

/// A generic source name becomes a subject token, a metric label and a settings key:
/// `[a-z0-9][a-z0-9_-]*`, at most 63 characters, not a built-in provider's name.
pub fn check_generic_source(source: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    let first_ok = source
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(first_ok && source.len() <= 63 && source.chars().all(ok)) {
        return Err(format!(
            "source {source:?} must be 1-63 of [a-z0-9_-], starting with a letter or digit"
        ));
    }
    if BUILT_IN_SOURCES.contains(&source) {
        return Err(format!(
            "source {source:?} is the name of a built-in provider"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens_are_lowercase_and_nats_safe() {
        assert_eq!(
            subject_token("public_alert.alert_created_v1"),
            "public_alert_alert_created_v1"
        );
        assert_eq!(subject_token("Pull Request>*"), "pull_request__");
        assert_eq!(subject_token(""), "unknown");
        assert_eq!(subject_token(&"x".repeat(100)).len(), 64);
        assert_eq!(
            event_subject("pagerduty", "incident.triggered"),
            "ifox.events.pagerduty.incident_triggered"
        );
    }

    #[test]
    fn generic_sources_are_tokens_and_not_built_in_names() {
        assert!(check_generic_source("datadog").is_ok());
        assert!(check_generic_source("my-tool_2").is_ok());
        assert!(check_generic_source("").is_err());
        assert!(check_generic_source("-x").is_err());
        assert!(check_generic_source("Datadog").is_err());
        assert!(check_generic_source("a.b").is_err());
        assert!(check_generic_source(&"a".repeat(64)).is_err());
        assert!(check_generic_source("github").is_err());
    }
}
