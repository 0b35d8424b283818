//! Route explain: what the router would do with an event — identifiers found, org, team, matched
//! claim, deployment mode, target subject, config version, or the dead-letter reason — without side
//! effects. Served at `POST /api/v1/admin/route/explain` and by `ifox route explain`.

use super::inputs::inputs;
use super::verdict::{Event, Verdict, verdict};
use crate::domain::headers::{CE_ID, CE_SOURCE, CE_TYPE};
use crate::domain::subject::event_subject;
use crate::tenancy::Catalog;
use async_nats::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub subject: String,
    pub identifiers: Vec<Value>,
    pub org_hints: Vec<String>,
    pub outcome: Value,
}

/// Explains an event of `source`/`event_type` with `headers` and `payload`. A missing `ce-id` is
/// filled in (an explain is not an event), so the answer is about routing.
pub fn explain(
    catalog: &Catalog,
    source: &str,
    event_type: &str,
    headers: &[(String, String)],
    payload: &[u8],
) -> Explanation {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(k.as_str(), v.as_str());
    }
    if map.get(CE_ID).is_none() {
        map.insert(CE_ID, "explain");
    }
    map.insert(CE_SOURCE, source);
    map.insert(CE_TYPE, event_type);
    let subject = event_subject(source, event_type);
    let ev = Event {
        subject: &subject,
        headers: Some(&map),
        payload,
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (mut identifiers, org_hints) = match inputs(pairs) {
        Ok(found) => (
            found.identifiers,
            found.org_hints.iter().map(ToString::to_string).collect(),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    };
    if identifiers.is_empty() {
        identifiers = crate::domain::identifiers::from_payload(source, payload);
    }
    let outcome = match verdict(catalog, &ev) {
        Verdict::Dispatch { run, subject } => json!({
            "action": "dispatch",
            "org_id": run.org_id,
            "team_id": run.team_id,
            "matched": run.matched,
            "deployment_mode": run.deployment.mode(),
            "agent_service_url": match &run.deployment { super::decision::Deployment::Dedicated { agent_service_url } => Some(agent_service_url), _ => None },
            "target_subject": subject,
            "config_version": run.config_version,
            "entrance_agent": run.entrance_agent,
        }),
        Verdict::Permanent { reason, detail } => json!({
            "action": "dead_letter", "reason": reason, "detail": detail,
            "target_subject": format!("ifox.deadletter.router.{reason}"),
        }),
        Verdict::Transient { detail } => json!({"action": "retry", "detail": detail}),
    };
    Explanation {
        subject,
        identifiers: identifiers
            .iter()
            .map(|i| json!({"kind": i.kind, "value": i.value}))
            .collect(),
        org_hints,
        outcome,
    }
}

/// `ifox route …`
#[derive(Debug, clap::Subcommand)]
pub enum RouteCommand {
    /// Explain where an event would go, without side effects.
    Explain {
        /// The event's source (`slack`, `github`, `pagerduty`, `incidentio`, or a generic source).
        #[arg(long)]
        source: String,
        /// The event type (`ce-type`); defaults to `explain`.
        #[arg(long = "type", default_value = "explain")]
        event_type: String,
        /// A header `name:value` (repeatable), e.g. `ifox-route-github_repos:acme/api`.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The payload file (`-` for stdin).
        payload: std::path::PathBuf,
    },
}

/// Parses `name:value` headers.
pub fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    let headers = raw
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("header {h:?} is not name:value"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    check_request("explain", "explain", &headers)?;
    Ok(headers)
}

/// Headers an explain request may carry at most, and the bytes of one.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 4096;

/// Refuses what a NATS header (or a subject token) cannot hold, before anything is built from it:
/// control characters (CR/LF), names that are not HTTP tokens, too many or too large headers, and a
/// source or type that is not a printable token.
pub fn check_request(
    source: &str,
    event_type: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let printable =
        |s: &str| !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x21..0x7f).contains(&b));
    if !printable(source) || !printable(event_type) {
        return Err(
            "source and event_type must be printable ASCII without spaces, at most 256 bytes"
                .into(),
        );
    }
    if headers.len() > MAX_HEADERS {
        return Err(format!("at most {MAX_HEADERS} headers"));
    }
    for (k, v) in headers {
        let token = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(format!("header name {k:?} is not an HTTP token"));
        }
        if k.len() + v.len() > MAX_HEADER_BYTES {
            return Err(format!(
                "header {k} is larger than {MAX_HEADER_BYTES} bytes"
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("header {k} has a control character"));
        }
    }
    Ok(())
}
