//! Routing inputs of a stored event, read from its CloudEvents headers: `ifox-route-<kind>` (one per
//! identifier kind, comma-separated values; the ingest writes them for webhooks, direct publishers set
//! them by hand) and `ifox-org` (set by an org-scoped ingest URL, or by the publisher) as the org hint.

use crate::domain::OrgId;
use crate::domain::headers::{ORG, ROUTE_PREFIX};
use crate::domain::routing::{Identifier, IdentifierKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("header {0} names no identifier kind")]
    UnknownKind(String),
    #[error("header ifox-org {0:?} is not an org id")]
    BadOrg(String),
}

/// Identifiers and org hints of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub identifiers: Vec<Identifier>,
    pub org_hints: Vec<OrgId>,
}

/// Reads the inputs from `(name, value)` header pairs (names compared case-insensitively).
pub fn inputs<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Inputs, InputError> {
    let mut out = Inputs::default();
    for (name, value) in headers {
        // Header names compare without case (and without a lowered copy per header).
        if name.eq_ignore_ascii_case(ORG) {
            let org =
                OrgId::parse(value.trim()).map_err(|_| InputError::BadOrg(value.to_owned()))?;
            if !out.org_hints.contains(&org) {
                out.org_hints.push(org);
            }
        } else if let Some(kind) = strip_prefix_ignore_case(name, ROUTE_PREFIX) {
            let kind = IdentifierKind::ALL
                .into_iter()
                .find(|k| k.key().eq_ignore_ascii_case(kind))
                .ok_or_else(|| InputError::UnknownKind(name.to_owned()))?;
            for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let id = Identifier::new(kind, v);
                if !out.identifiers.contains(&id) {
                    out.identifiers.push(id);
                }
            }
        }
    }
    Ok(out)
}

/// `name` without `prefix` (an ASCII string), compared without case.
fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.as_bytes().get(..prefix.len())?;
    // A match is ASCII, so the cut is a char boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| &name[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_headers_become_normalised_identifiers_and_the_org_a_hint() {
        let got = inputs([
            ("Ifox-Route-Github_Repos", "Acme/API, acme/api"),
            ("ifox-route-slack_channel_ids", "C1"),
            ("ifox-org", "acme"),
            ("ce-id", "x"),
        ])
        .unwrap();
        assert_eq!(
            got.identifiers,
            vec![
                Identifier::new(IdentifierKind::GithubRepos, "acme/api"),
                Identifier::new(IdentifierKind::SlackChannelIds, "C1")
            ]
        );
        assert_eq!(got.org_hints, vec![OrgId::parse("acme").unwrap()]);
    }

    #[test]
    fn unknown_kinds_and_bad_orgs_are_refused_not_ignored() {
        assert_eq!(
            inputs([("ifox-route-slack", "C1")]),
            Err(InputError::UnknownKind("ifox-route-slack".into()))
        );
        assert_eq!(
            inputs([("ifox-org", "Acme Corp")]),
            Err(InputError::BadOrg("Acme Corp".into()))
        );
    }
}
