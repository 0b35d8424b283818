//! What to do with one AGENT_RUNS message before any agent is called: check the run document
//! against its subject ([`Planner::check`], which also makes the run's record row), then, with the
//! record as the recorder found or made it ([`Planner::plan`]), refuse a second publication of a
//! recorded run, resolve the team's *current* runtime, refuse URLs outside the allowed set. Everything that can be decided without an agent is
//! decided here; the result is a [`Plan`] to queue or a disposition at once. The prompt and the
//! event are read when the delivery starts ([`Planner::material`]).
//!
//! **A team that changed mode while its run waited** is delivered to its runtime *now*: a run
//! routed to a dedicated service that is being deleted (the team moved back to shared) goes to the
//! shared service, a run routed to shared for a team that became dedicated goes to its dedicated
//! service. Never the runtime the team left, and never silently: the run's `delivering`
//! transition says `routed to <mode> <url>; delivered to <mode> <url>` and
//! `ifox_bridge_mode_changes_total` counts it.

use super::allow::AllowList;
use super::prompt::{self, Prompt};
use crate::bus::{Bus, Delivery, Disposition};
use crate::domain::headers;
use crate::settings::bridge::{BridgeSettings, Protocol};
use crate::store::run_lifecycle::{self, RunRecord};
use crate::tenancy::Tenancy;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The fields of an `ifox.agent_run.v1` document the bridge reads.
#[derive(Debug, Clone, Deserialize)]
pub struct RunDoc {
    pub run_id: String,
    pub event_id: String,
    pub org_id: String,
    pub team_id: String,
    pub source: String,
    pub event_type: String,
    pub deployment_mode: String,
    #[serde(default)]
    pub agent_service_url: Option<String>,
    #[serde(default)]
    pub event_seq: Option<u64>,
    #[serde(default)]
    pub config_version: String,
    #[serde(default)]
    pub replay_of: Option<String>,
    /// A plain replay (same run id as the original).
    #[serde(default)]
    pub replayed: bool,
    /// The claim that chose the team (`{"kind", "value"}`).
    #[serde(default)]
    pub matched: Option<Matched>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Matched {
    pub kind: String,
    pub value: String,
}

/// A message that is a run document of its subject's team.
#[derive(Debug)]
pub struct Checked {
    pub doc: RunDoc,
    pub document: Value,
}

impl Checked {
    /// The record this run makes (`queued`), from its AGENT_RUNS message.
    pub fn row(&self, d: &Delivery) -> crate::store::runs::RunRow {
        row_of(&self.doc, d)
    }

    /// Whether the run's record must be read before it is planned: when the message is redelivered
    /// (attempts so far, the deadline, whether it finished), a plain replay, published more than
    /// [`FRESH`] from its event (the event time is the first 48 bits of the run id), or stored more
    /// than [`FRESH`] ago: a second
    /// publication of a run that AGENT_RUNS's duplicate window no longer remembers (a replay with
    /// the `nats` CLI, a router far behind) is then found recorded and not delivered twice. A run
    /// routed as its event arrives, the common case, needs no read.
    pub fn needs_record(&self, d: &Delivery) -> bool {
        if d.delivered() > 1 || self.doc.replayed {
            return true;
        }
        let event_ms = uuid::Uuid::parse_str(&self.doc.run_id).map_or(0, |id| {
            let b = id.as_bytes();
            u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
        });
        let now = std::time::SystemTime::now();
        let published = d.published();
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
        };
        let fresh = FRESH.as_millis() as u64;
        // Either way from the event (a `ce-time` in the future is a publisher's clock, not a fresh
        // run), and stored recently (a consumer created again reads the stream from its start).
        ms(published).abs_diff(event_ms) > fresh || ms(now).saturating_sub(ms(published)) > fresh
    }
}

/// How long after its event a run may be published and still be taken as new without reading its
/// record (see [`Checked::needs_record`]).
pub const FRESH: Duration = Duration::from_secs(60);

/// The record a run makes (`queued`), from its document and its AGENT_RUNS message.
pub fn row_of(doc: &RunDoc, d: &Delivery) -> crate::store::runs::RunRow {
    let at = d
        .published()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
    crate::store::runs::RunRow {
        run_id: doc.run_id.clone(),
        event_id: doc.event_id.clone(),
        org_id: doc.org_id.clone(),
        team_id: doc.team_id.clone(),
        source: doc.source.clone(),
        event_type: doc.event_type.clone(),
        deployment_mode: doc.deployment_mode.clone(),
        subject: d.subject().to_owned(),
        config_version: doc.config_version.clone(),
        status: "queued".to_owned(),
        replay_of: doc.replay_of.clone(),
        matched: doc
            .matched
            .as_ref()
            .map(|m| format!("{}={}", m.kind, m.value))
            .unwrap_or_default(),
        dispatched_at: Some(at),
        created_at: at,
        agent_runs_seq: i64::try_from(d.stream_seq()).ok(),
    }
}

/// A delivery, decided (small: held while the run waits for a slot).
#[derive(Debug, Clone)]
pub struct Plan {
    pub doc: RunDoc,
    /// The whole document, as the `ifox` protocol sends it.
    pub document: Value,
    pub record: RunRecord,
    pub url: String,
    pub mode: &'static str,
    pub protocol: Protocol,
    pub max_concurrent: usize,
    pub timeout: Duration,
    /// Set when the team's runtime is not the one the run was routed to.
    pub mode_change: Option<String>,
    pub traceparent: Option<String>,
}

/// What the plan step decided.
#[derive(Debug)]
pub enum Decision {
    Queue(Box<Plan>),
    /// Settle now (already done, not yet possible, or a message that is not a run).
    Settle(Disposition),
    /// The run fails without a call: recorded `failed`, then dead-lettered with `reason`.
    Fail {
        record: Box<RunRecord>,
        /// The record to make if the recorder has not yet.
        row: Box<crate::store::runs::RunRow>,
        reason: &'static str,
        detail: String,
    },
}

fn dead(reason: &'static str, detail: impl Into<String>) -> Decision {
    Decision::Settle(Disposition::DeadLetter {
        reason,
        detail: detail.into(),
    })
}

/// The inputs of planning that outlive one message.
pub struct Planner<'a> {
    pub tenancy: &'a Tenancy,
    pub bus: &'a Bus,
    pub settings: &'a BridgeSettings,
    pub allow: &'a AllowList,
}

impl Planner<'_> {
    /// The run document of `d`, checked against its subject; or what to do with a message that is
    /// not one.
    pub fn check(d: &Delivery) -> Result<Checked, Decision> {
        let Ok(document) = serde_json::from_slice::<Value>(d.payload()) else {
            return Err(dead("invalid_run", "the run document is not JSON"));
        };
        let doc: RunDoc = match serde_json::from_value(document.clone()) {
            Ok(doc) => doc,
            Err(e) => {
                return Err(dead(
                    "invalid_run",
                    format!("not an ifox.agent_run.v1 document: {e}"),
                ));
            }
        };
        // The subject carries the tenant: a document that names another one is refused, so a
        // publisher cannot reach a team's agent through a subject it may publish on.
        let expected = [
            format!("ifox.agent.shared.{}.{}", doc.org_id, doc.team_id),
            format!("ifox.agent.dedicated.{}.{}", doc.org_id, doc.team_id),
        ];
        if !expected.iter().any(|s| s == d.subject()) {
            return Err(dead(
                "invalid_run",
                format!(
                    "subject {} does not name the run's team {}/{}",
                    d.subject(),
                    doc.org_id,
                    doc.team_id
                ),
            ));
        }
        Ok(Checked { doc, document })
    }

    /// Decides about a checked run whose record the recorder found (`earlier`) or made now.
    pub fn plan(&self, d: &Delivery, checked: Checked, earlier: Option<RunRecord>) -> Decision {
        if let Some(r) = &earlier
            && (r.org_id != checked.doc.org_id || r.team_id != checked.doc.team_id)
        {
            return dead(
                "invalid_run",
                format!("run {} belongs to another team", checked.doc.run_id),
            );
        }
        let record = match earlier {
            // Another AGENT_RUNS message of a recorded run: a replay beyond the stream's duplicate
            // window (or a second publisher). The run had its delivery; this one is not another.
            Some(r)
                if r.agent_runs_seq
                    .is_some_and(|seq| u64::try_from(seq).ok() != Some(d.stream_seq())) =>
            {
                metrics::counter!("ifox_bridge_duplicate_runs_total").increment(1);
                tracing::info!(run_id = %checked.doc.run_id, stream_seq = d.stream_seq(), recorded_from = r.agent_runs_seq, status = %r.status, "a recorded run was published again; not delivered twice");
                return Decision::Settle(Disposition::Ack);
            }
            Some(r) => r,
            None => RunRecord::from(&checked.row(d)),
        };
        let Checked { doc, document } = checked;
        if run_lifecycle::is_final(&record.status)
            || (record.status == "running" && record.protocol.as_deref() == Some("ifox"))
        {
            // Finished, or accepted by an agent that reports by itself: nothing to deliver.
            return Decision::Settle(Disposition::Ack);
        }
        let row = Box::new(row_of(&doc, d));
        const KEYS: crate::tenancy::catalog::KeySet = &[
            "agent_service_url",
            "agent_protocol",
            "max_concurrent_agents",
            "agent_timeout_seconds",
        ];
        let config = match (
            crate::domain::OrgId::parse(&doc.org_id),
            crate::domain::NodeId::parse(&doc.team_id),
        ) {
            (Ok(org), Ok(team)) => self.tenancy.catalog().effective_keys(&org, &team, KEYS),
            _ => return dead("invalid_run", "the run names an invalid org or team id"),
        };
        let Some(config) = config else {
            // The team's config is not loaded (yet): wait, never guess a runtime.
            if d.delivered() >= self.settings.max_attempts {
                return Decision::Fail {
                    record: Box::new(record),
                    row,
                    reason: "no_team",
                    detail: format!(
                        "the config of {}/{} cannot be read",
                        doc.org_id, doc.team_id
                    ),
                };
            }
            return Decision::Settle(Disposition::Nak(crate::bus::nak_delay(d.delivered())));
        };
        let config = &config.config;
        let fail = |reason, detail: String| Decision::Fail {
            record: Box::new(record.clone()),
            row: row.clone(),
            reason,
            detail,
        };
        let (url, mode) = match config.get("agent_service_url") {
            None | Some(Value::Null) => (self.settings.shared_url.clone(), "shared"),
            Some(Value::String(u)) if !u.trim().is_empty() => (u.trim().to_owned(), "dedicated"),
            Some(other) => {
                return fail(
                    "invalid_config",
                    format!("agent_service_url is not a URL: {other}"),
                );
            }
        };
        let routed_url = doc
            .agent_service_url
            .clone()
            .unwrap_or_else(|| self.settings.shared_url.clone());
        let mode_change = (doc.deployment_mode != mode || routed_url != url).then(|| {
            metrics::counter!("ifox_bridge_mode_changes_total").increment(1);
            format!(
                "routed to {} {routed_url}; delivered to {mode} {url}",
                doc.deployment_mode
            )
        });
        let checked = match self.allow.check(&url) {
            Ok(checked) => checked,
            Err(e) => return fail("url_not_allowed", format!("{url}: {e}")),
        };
        // A team's URL may name only its own provisioned Service: an org admin writing another
        // tenant's `agent-dedicated-…` name would otherwise have its runs (and their answers)
        // handled by that tenant's pod, which holds that tenant's token.
        if mode == "dedicated"
            && let (Ok(org), Ok(team), Some(host)) = (
                crate::domain::OrgId::parse(&doc.org_id),
                crate::domain::NodeId::parse(&doc.team_id),
                checked.host_str(),
            )
            && !crate::domain::kube_names::own_service(host, &org, &team)
        {
            return fail(
                "url_not_allowed",
                format!("{url}: another team's dedicated service"),
            );
        }
        let protocol = match config.get("agent_protocol") {
            None | Some(Value::Null) => self.settings.default_protocol,
            Some(Value::String(p)) => match Protocol::parse(p) {
                Some(p) => p,
                None => {
                    return fail(
                        "invalid_config",
                        format!("agent_protocol {p:?} is not investigate or ifox"),
                    );
                }
            },
            Some(other) => {
                return fail(
                    "invalid_config",
                    format!("agent_protocol is not a string: {other}"),
                );
            }
        };
        let max_concurrent = config
            .get("max_concurrent_agents")
            .and_then(Value::as_u64)
            .filter(|n| (1..=1000).contains(n))
            .map_or(self.settings.max_concurrent_agents, |n| n as usize)
            // Never more than half the process's slots for one team (its config is the tenant's
            // to write): the other teams always keep the other half, even against a team whose
            // agent holds every request for a day.
            .min((self.settings.concurrency / 2).max(1));
        let timeout = config
            .get("agent_timeout_seconds")
            .and_then(Value::as_u64)
            .filter(|n| (1..=86_400).contains(n))
            .map_or(prompt::defaults(&doc.source).timeout, Duration::from_secs);
        let traceparent = d
            .headers()
            .and_then(|h| h.get(headers::TRACEPARENT))
            .map(|v| v.as_str().to_owned());
        Decision::Queue(Box::new(Plan {
            doc,
            document,
            record,
            url,
            mode,
            protocol,
            max_concurrent,
            timeout,
            mode_change,
            traceparent,
        }))
    }

    /// What the agent is asked, and the event itself (`{"subject", "headers", "payload"}`, when
    /// EVENTS still holds it and it is the event the run names). Read when the delivery starts,
    /// not while the run waits for a slot: thousands of held runs then hold no parsed payloads.
    pub async fn material(&self, doc: &RunDoc) -> (Prompt, Option<Value>) {
        let event = self.event(doc).await;
        let payload = event.as_ref().map_or(&Value::Null, |e| &e["payload"]);
        let prompt = prompt::build(&doc.source, &doc.event_type, payload, &doc.run_id);
        (prompt, event)
    }

    async fn event(&self, doc: &RunDoc) -> Option<Value> {
        let seq = doc.event_seq?;
        let stream = self
            .bus
            .jetstream()
            .get_stream_no_info("EVENTS")
            .await
            .ok()?;
        let raw = match stream.get_raw_message(seq).await {
            Ok(raw) => raw,
            Err(e) => {
                tracing::debug!(run_id = %doc.run_id, seq, error = %e, "event not readable; prompt from the run alone");
                return None;
            }
        };
        let headers: serde_json::Map<String, Value> = raw
            .headers
            .iter()
            .filter(|(k, _)| !AsRef::<str>::as_ref(*k).eq_ignore_ascii_case(headers::NATS_MSG_ID))
            .filter_map(|(k, v)| {
                Some((k.to_string(), Value::String(v.first()?.as_str().to_owned())))
            })
            .collect();
        let ce_id = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(headers::CE_ID))
            .and_then(|(_, v)| v.as_str());
        if ce_id != Some(doc.event_id.as_str()) {
            return None;
        }
        use base64::Engine;
        let payload = serde_json::from_slice::<Value>(&raw.payload).unwrap_or_else(|_| {
            Value::String(base64::engine::general_purpose::STANDARD.encode(&raw.payload))
        });
        Some(
            serde_json::json!({"subject": raw.subject.as_str(), "headers": headers, "payload": payload}),
        )
    }
}

/// How long a run waits for its deadline, from `now_ms`.
pub fn remaining(deadline_ms: i64, now_ms: i64) -> Option<Duration> {
    (deadline_ms > now_ms).then(|| Duration::from_millis((deadline_ms - now_ms) as u64))
}
