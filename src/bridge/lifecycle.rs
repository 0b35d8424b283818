//! The run lifecycle's one write path, and the one format of a transition on RUNS
//! (`ifox.runs.<org>.<team>.<status>`, JSON `ifox.run_status.v1`).
//!
//! Every transition — the bridge's `delivering`, `running` and outcomes, an agent's status report
//! through the API, the sweeper's `timeout` — is published on RUNS, signed
//! ([`headers::RECORD_SIG`], a key derived from the run-token key), and its publisher waits for the
//! PubAck before it goes on (calls the agent, acks the run, answers the agent): RUNS is the durable
//! record of what happened, in one order. The run recorder ([`super::recorder`], role `recorder`)
//! projects it into the runs table in batches with the guarded transitions of
//! [`crate::store::run_lifecycle`], so the first outcome in RUNS's order wins. The bridge's delivery
//! path touches no database.
//!
//! Anything else published on `ifox.runs.>` (an operator, an agent given NATS credentials) carries
//! no valid signature and changes no record: the feed is open to read, the record is not open to
//! write.

use crate::bus::Bus;
use crate::domain::{headers, now_ms};
use crate::store::run_lifecycle::{self, Change, OwnedChange};
use crate::store::runs::RunRow;
use crate::store::{Store, StoreError};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// Schema of the RUNS messages.
pub const SCHEMA: &str = "ifox.run_status.v1";

/// How long a publisher waits for the PubAck of a transition.
const PUBACK_WAIT: Duration = Duration::from_secs(10);

/// Which run a transition is about, as the feed names it.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub run_id: String,
    pub event_id: String,
    pub org_id: String,
    pub team_id: String,
    pub traceparent: Option<String>,
    /// The AGENT_RUNS delivery count of the bridge's attempt (0: not the bridge's): part of the
    /// `Nats-Msg-Id` of `delivering` and `running`, so every attempt is recorded, not collapsed by
    /// RUNS's duplicate window into the first.
    pub delivery: u64,
}

impl From<&crate::store::run_lifecycle::RunRecord> for RunRef {
    fn from(r: &crate::store::run_lifecycle::RunRecord) -> RunRef {
        RunRef {
            run_id: r.run_id.clone(),
            event_id: r.event_id.clone(),
            org_id: r.org_id.clone(),
            team_id: r.team_id.clone(),
            traceparent: None,
            delivery: 0,
        }
    }
}

/// A RUNS message. The fields after `result` are what the recorder needs to apply a bridge's
/// transition (`run`: the record of a run not recorded yet, on `delivering`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Transition {
    pub schema: String,
    pub run_id: String,
    pub event_id: String,
    pub org_id: String,
    pub team_id: String,
    pub status: String,
    /// RFC 3339, milliseconds.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Unix ms: the run's deadline, set by its first `delivering`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<i64>,
    /// This `delivering` is an agent call: the record counts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attempt: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRow>,
}

impl Transition {
    fn of(run: &RunRef, c: &Change<'_>, row: Option<&RunRow>) -> Transition {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(c.at.max(0) as u64);
        Transition {
            schema: SCHEMA.to_owned(),
            run_id: run.run_id.clone(),
            event_id: run.event_id.clone(),
            org_id: run.org_id.clone(),
            team_id: run.team_id.clone(),
            status: c.to.to_owned(),
            at: humantime::format_rfc3339_millis(at).to_string(),
            detail: c.detail.map(text),
            error: c.error.map(text),
            result: c.result_text.map(text),
            deadline_at: c.deadline_at,
            attempt: c.attempt,
            delivered_to: c.delivered_to.map(str::to_owned),
            protocol: c.protocol.map(str::to_owned),
            run: row.cloned(),
        }
    }

    /// The change this message records; `None` for a status no transition reaches.
    pub fn change(&self) -> Option<OwnedChange> {
        let to = run_lifecycle::STATUSES
            .iter()
            .find(|s| **s == self.status && **s != "queued")
            .copied()?;
        let at = humantime::parse_rfc3339(&self.at)
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(OwnedChange {
            run_id: self.run_id.clone(),
            to,
            at: i64::try_from(at.as_millis()).ok()?,
            detail: self.detail.clone(),
            deadline_at: self.deadline_at,
            attempt: self.attempt,
            delivered_to: self.delivered_to.clone(),
            protocol: self.protocol.clone(),
            result_text: self.result.clone(),
            error: self.error.clone(),
        })
    }
}

/// Text a database column takes: without NUL (PostgreSQL refuses it in `text`; an agent's answer
/// must not be able to make its transition, and its chunk, unwritable).
fn text(s: &str) -> String {
    s.replace('\0', "")
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("RUNS did not store the transition: {0}")]
    Publish(String),
}

/// The key of [`headers::RECORD_SIG`], derived from the run-token key (one secret to manage).
pub fn record_key(token_key: &[u8]) -> Arc<[u8]> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"ifox run records v1");
    Arc::from(mac.finalize().into_bytes().as_slice())
}

fn mac(key: &[u8], subject: &str, msg_id: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in [subject.as_bytes(), b"\n", msg_id.as_bytes(), b"\n", body] {
        mac.update(part);
    }
    mac
}

/// The signature of a bridge's RUNS message.
pub fn sign(key: &[u8], subject: &str, msg_id: &str, body: &[u8]) -> String {
    use base64::Engine;
    let tag = mac(key, subject, msg_id, body).finalize().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
}

/// Whether `sig` is the bridge's signature of this message (constant time).
pub fn verify(key: &[u8], subject: &str, msg_id: &str, body: &[u8], sig: &str) -> bool {
    use base64::Engine;
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    mac(key, subject, msg_id, body).verify_slice(&tag).is_ok()
}

/// The publisher of run transitions: every one goes on RUNS, signed, and the recorder applies it.
#[derive(Clone)]
pub struct Lifecycle {
    store: Store,
    bus: Bus,
    record_key: Arc<[u8]>,
}

type AckFuture = async_nats::jetstream::context::PublishAckFuture;

impl Lifecycle {
    /// `record_key`: [`record_key`] of the run-token key.
    pub fn new(store: Store, bus: Bus, record_key: Arc<[u8]>) -> Lifecycle {
        Lifecycle {
            store,
            bus,
            record_key,
        }
    }

    /// The database the records are read from (the sweeper's query).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores `change` on RUNS (its `at` is set to now when 0); `Ok` once RUNS confirmed it.
    /// Whether it applies to the record is the recorder's guarded decision (the first outcome
    /// in RUNS's order wins).
    pub async fn advance<'a>(
        &self,
        run: &'a RunRef,
        change: Change<'a>,
    ) -> Result<(), LifecycleError> {
        self.advance_with(run, change, None).await
    }

    /// As [`Lifecycle::advance`], carrying the run's record for the recorder to make if it has not
    /// yet (a `delivering`, or a failure without a call, published before the recorder read the
    /// run from AGENT_RUNS).
    pub async fn advance_with<'a>(
        &self,
        run: &'a RunRef,
        mut change: Change<'a>,
        row: Option<&RunRow>,
    ) -> Result<(), LifecycleError> {
        if change.at == 0 {
            change.at = now_ms();
        }
        change.run_id = &run.run_id;
        let ack = publish(&self.bus, &self.record_key, run, &change, row)
            .await
            .map_err(LifecycleError::Publish)?;
        match tokio::time::timeout(PUBACK_WAIT, ack).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(LifecycleError::Publish(e.to_string())),
            Err(_) => Err(LifecycleError::Publish(format!(
                "no PubAck within {PUBACK_WAIT:?}"
            ))),
        }
    }

    /// Stores `change` without waiting: its PubAck is awaited off the caller's path, a missing one
    /// logged and counted (`ifox_bridge_status_unpublished_total`). Published now, so it comes
    /// before any later transition of the run.
    pub async fn advance_later(&self, run: &RunRef, mut change: Change<'_>) {
        if change.at == 0 {
            change.at = now_ms();
        }
        change.run_id = &run.run_id;
        match publish(&self.bus, &self.record_key, run, &change, None).await {
            Ok(ack) => {
                let (run_id, status) = (run.run_id.clone(), change.to.to_owned());
                tokio::spawn(async move {
                    match tokio::time::timeout(PUBACK_WAIT, ack).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => unpublished(&run_id, &status, &e.to_string()),
                        Err(_) => unpublished(&run_id, &status, "no PubAck within 10 s"),
                    }
                });
            }
            Err(e) => unpublished(&run.run_id, change.to, &e),
        }
    }
}

/// Publishes a transition on `ifox.runs.<org>.<team>.<status>`, signed; the PubAck to await.
async fn publish(
    bus: &Bus,
    key: &[u8],
    run: &RunRef,
    change: &Change<'_>,
    row: Option<&RunRow>,
) -> Result<AckFuture, String> {
    let body = serde_json::to_vec(&Transition::of(run, change, row)).map_err(|e| e.to_string())?;
    let msg_id = match change.to {
        "delivering" | "running" if run.delivery > 0 => {
            format!("{}:{}:{}", run.run_id, change.to, run.delivery)
        }
        _ => format!("{}:{}", run.run_id, change.to),
    };
    // Ends with a tag only the key makes: another publisher on `ifox.runs.>` cannot take a
    // transition's id first and have RUNS drop the real one as its duplicate.
    let tag = sign(key, "msg-id", &msg_id, b"");
    let msg_id = format!("{msg_id}:{}", &tag[..12]);
    let subject = format!("ifox.runs.{}.{}.{}", run.org_id, run.team_id, change.to);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(headers::NATS_MSG_ID, msg_id.as_str());
    headers.insert(headers::CE_ID, run.event_id.as_str());
    headers.insert(headers::CONTENT_TYPE, "application/json");
    if let Some(tp) = &run.traceparent {
        headers.insert(headers::TRACEPARENT, tp.as_str());
    }
    headers.insert(
        headers::RECORD_SIG,
        sign(key, &subject, &msg_id, &body).as_str(),
    );
    let message = async_nats::jetstream::message::PublishMessage::build()
        .payload(body.into())
        .headers(headers);
    bus.jetstream()
        .send_publish(subject, message)
        .await
        .map_err(|e| e.to_string())
}

fn unpublished(run_id: &str, status: &str, e: &str) {
    metrics::counter!("ifox_bridge_status_unpublished_total").increment(1);
    tracing::warn!(%run_id, %status, error = %e, "run transition not stored on RUNS");
}

/// Publishes `timeout` for the runs past their deadline; how many. Runs `held` says this process
/// is still working on are left alone: their delivery ends them (an agent's answer waiting for
/// RUNS to come back must not be replaced by "no outcome"). An outcome stored on RUNS before the
/// sweep but not yet recorded (the recorder lagging) comes first in RUNS, so it wins.
pub async fn sweep(
    lifecycle: &Lifecycle,
    held: impl Fn(&str) -> bool,
) -> Result<usize, LifecycleError> {
    let overdue = {
        let mut conn = lifecycle
            .store()
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        crate::store::run_lifecycle::overdue(&mut conn, now_ms(), 500).await?
    };
    let mut moved = 0;
    for r in overdue.into_iter().filter(|r| !held(&r.run_id)) {
        let run = RunRef::from(&r);
        let change = Change {
            to: "timeout",
            detail: Some("swept: no outcome before the deadline"),
            ..Change::default()
        };
        lifecycle.advance(&run, change).await?;
        tracing::info!(run_id = %r.run_id, org = %r.org_id, team = %r.team_id, "run past its deadline: timeout published");
        moved += 1;
    }
    Ok(moved)
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
