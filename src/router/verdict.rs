//! What to do with one stored event, decided over the in-memory catalog (no IO): dispatch a run
//! (to which subject, with which document), dead-letter it (a permanent reason), or wait (transient).
//!
//! Idempotency: the run id derives from the event id and `ce-time` — or, for a replay
//! (`Ifox-Replay-Of: <ce-id>`, `ce-time` kept), from the replayed event's — so redeliveries and
//! replays name the same run. A forced replay
//! (`Ifox-Replay-Force: true`) names a new run that records the run it replays.

use super::decision::decide;
use super::inputs::inputs;
use super::run::{AgentRun, SCHEMA, event_ms, forced_run_id, run_id};
use crate::domain::headers::{
    CE_ID, CE_SOURCE, CE_TIME, CE_TYPE, ORG, REPLAY_FORCE, REPLAY_OF, event_msg_id,
};
use crate::domain::identifiers;
use crate::domain::routing::RouteOutcome;
use crate::tenancy::Catalog;
use async_nats::HeaderMap;

/// A stored event as the router sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: &'a [u8],
}

impl<'a> Event<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        crate::domain::headers::get(self.headers?, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn header_pairs(&self) -> Vec<(&'a str, &'a str)> {
        let Some(headers) = self.headers else {
            return Vec::new();
        };
        headers
            .iter()
            .flat_map(|(name, values)| {
                let name: &str = name.as_ref();
                values.iter().map(move |v| (name, v.as_str()))
            })
            .collect()
    }

    /// The subject's third token, which `ce-source` (when given) must repeat: NATS permissions are
    /// granted per subject (`ifox.events.<source>.>`), so a publisher allowed one source cannot
    /// speak for another by its headers (nor take that source's dedup ids).
    /// (An empty header or subject token is no source: `ifox.events..x` names none.)
    pub fn source(&self) -> Option<&'a str> {
        let subject = self.subject.split('.').nth(2).filter(|s| !s.is_empty())?;
        match self.header(CE_SOURCE).filter(|s| !s.is_empty()) {
            Some(header) if header != subject => None,
            _ => Some(subject),
        }
    }

    /// `ce-type`, else the subject's fourth token.
    pub fn event_type(&self) -> Option<&'a str> {
        self.header(CE_TYPE)
            .filter(|s| !s.is_empty())
            .or_else(|| self.subject.split('.').nth(3))
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Dispatch {
        run: Box<AgentRun>,
        subject: String,
    },
    Permanent {
        reason: &'static str,
        detail: String,
    },
    Transient {
        detail: String,
    },
}

fn permanent(reason: &'static str, detail: impl Into<String>) -> Verdict {
    Verdict::Permanent {
        reason,
        detail: detail.into(),
    }
}

/// Decides one event.
pub fn verdict(catalog: &Catalog, ev: &Event<'_>) -> Verdict {
    let Some(event_id) = ev.header(CE_ID) else {
        return permanent("invalid_event", "the event has no ce-id header");
    };
    let (Some(source), Some(event_type)) = (ev.source(), ev.event_type()) else {
        return permanent(
            "invalid_event",
            format!(
                "cannot tell source and type of subject {} (ce-source, when given, must be the subject's source)",
                ev.subject
            ),
        );
    };
    let mut found = match inputs(ev.header_pairs()) {
        Ok(found) => found,
        Err(e) => return permanent("invalid_event", e.to_string()),
    };
    if found.identifiers.is_empty() {
        found.identifiers = identifiers::from_payload(source, ev.payload);
    }
    if found.identifiers.is_empty() {
        return permanent("no_route", "the event carries no routing identifier");
    }
    let (org, team, matched) = match catalog.route(&found.identifiers, &found.org_hints) {
        RouteOutcome::Found {
            org_id,
            team_id,
            matched,
        } => (org_id, team_id, matched),
        RouteOutcome::NotFound => {
            let ids: Vec<String> = found
                .identifiers
                .iter()
                .map(|i| format!("{}={}", i.kind.key(), i.value))
                .collect();
            return permanent("no_route", format!("no team claims {}", ids.join(", ")));
        }
        RouteOutcome::Ambiguous { matched, org_ids } => {
            let orgs: Vec<&str> = org_ids.iter().map(|o| o.as_str()).collect();
            return permanent(
                "ambiguous_route",
                format!(
                    "{}={} is claimed in orgs {} and nothing names one",
                    matched.kind.key(),
                    matched.value,
                    orgs.join(", ")
                ),
            );
        }
    };
    let Some(effective) =
        catalog.effective_keys(&org, &team, &["agent_service_url", "entrance_agent"])
    else {
        return Verdict::Transient {
            detail: format!("the config of {org}/{team} is not loaded yet"),
        };
    };
    let deployment = match decide(&effective.config) {
        Ok(d) => d,
        Err(e) => return permanent("invalid_config", format!("{org}/{team}: {e}")),
    };
    let replay_of = ev.header(REPLAY_OF);
    let forced = ev
        .header(REPLAY_FORCE)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let at = event_ms(ev.header(CE_TIME));
    // Keyed like the event's dedup id (tenant scope, source, ce-id): see `run.rs`.
    let key = event_msg_id(ev.header(ORG), source, replay_of.unwrap_or(event_id));
    let root = run_id(&key, at);
    let replayed = replay_of.is_some() && !forced;
    let (run_id, replay_of) = if forced && replay_of.is_some() {
        (forced_run_id(&root, event_id, at), Some(root))
    } else {
        (root, None)
    };
    let entrance_agent = effective
        .config
        .get("entrance_agent")
        .and_then(|v| v.as_str())
        .unwrap_or("planner")
        .to_owned();
    let subject = deployment.subject(&org, &team);
    let run = AgentRun {
        schema: SCHEMA,
        run_id,
        event_id: event_id.to_owned(),
        org_id: org,
        team_id: team,
        source: source.to_owned(),
        event_type: event_type.to_owned(),
        matched,
        deployment,
        entrance_agent,
        config_version: effective.version.clone(),
        replay_of,
        replayed,
        event_seq: None,
    };
    Verdict::Dispatch {
        run: Box::new(run),
        subject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    }

    /// A publisher granted `ifox.events.deploybot.>` says `ce-source: github`: the event is not
    /// routed as GitHub's (invalid_event); a header that repeats the subject's source, or none, is
    /// read from the subject.
    #[test]
    fn the_source_is_the_subjects_and_a_ce_source_naming_another_is_refused() {
        let catalog = Catalog::default();
        let forged = headers(&[(CE_ID, "e1"), (CE_SOURCE, "github"), (CE_TYPE, "issues")]);
        let ev = Event {
            subject: "ifox.events.deploybot.deploy",
            headers: Some(&forged),
            payload: b"{}",
        };
        assert_eq!(ev.source(), None);
        match verdict(&catalog, &ev) {
            Verdict::Permanent { reason, detail } => {
                assert_eq!(reason, "invalid_event");
                assert!(detail.contains("ce-source"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        let same = headers(&[(CE_ID, "e1"), (CE_SOURCE, "deploybot")]);
        let none = headers(&[(CE_ID, "e1")]);
        for h in [&same, &none] {
            let ev = Event {
                subject: "ifox.events.deploybot.deploy",
                headers: Some(h),
                payload: b"{}",
            };
            assert_eq!(ev.source(), Some("deploybot"));
        }
    }
}
