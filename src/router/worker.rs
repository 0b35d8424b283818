//! The effects of each event's verdict, in an order that loses nothing and duplicates nothing:
//! record the run (`queued`, an idempotent insert) → publish it to AGENT_RUNS with
//! `Nats-Msg-Id = run id` and wait for the PubAck → ack, and note the run dispatched in the recorder's
//! next transaction (not waited for). A crash anywhere before the ack redelivers the event: the record
//! is found; a run not (yet) noted dispatched is published again (collapsing on `Nats-Msg-Id`), a
//! dispatched one is only acked. While the database is down nothing is dispatched: the event waits.
//!
//! The consumer hands over a chunk of deliveries at a time: their runs go to the run writer (see
//! [`super::recorder`]) in one request and are published concurrently; each event still gets its own
//! disposition. A chunk instead of one event per request took the router from 0.45–0.47 to
//! 0.52–0.59 of the raw loop in `just bench-router` (fewer hand-offs between threads).
//!
//! Before the verdict, an event published without `ce-time` is given the stream's timestamp (its
//! run id is then ordered and stays the same on every redelivery, see [`super::run`]), and replay
//! headers that `ifox replay` did not sign ([`super::replay::signed`]) make the event an
//! `invalid_event` dead letter: only ifox's replay may ask for a replay's run.
//!
//! Permanent failures become [`Disposition::DeadLetter`] (the consumer toolkit stores the dead letter,
//! PubAck first, then terminates); transient ones are NAKed with the toolkit's [`nak_delay`].

use super::recorder::RunState;
use super::verdict::{Event, Verdict, verdict};
use crate::bus::{Bus, Delivery, Disposition, PublishError, nak_delay};
use crate::domain::headers::{self, CE_TIME};
use crate::domain::now_ms;
use crate::store::{StoreError, runs};
use crate::tenancy::Tenancy;
use async_nats::HeaderMap;
use bytes::Bytes;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
enum Transient {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("{0}")]
    Other(String),
}

#[derive(Clone)]
pub struct Worker {
    tenancy: Tenancy,
    bus: Bus,
    recorder: super::recorder::Recorder,
    /// Checks replay signatures ([`crate::domain::replay_sig::key`] of the admin token).
    replay_key: std::sync::Arc<Vec<u8>>,
}

impl Worker {
    /// Waits until every run record and dispatched mark handed over so far is committed.
    pub async fn flush(&self) {
        self.recorder.flush().await;
    }

    /// `replay_key`: [`crate::domain::replay_sig::key`] of the admin token, as `ifox replay` signs.
    pub fn new(tenancy: Tenancy, bus: Bus, replay_key: Vec<u8>) -> Worker {
        let recorder = super::recorder::Recorder::spawn(tenancy.store().clone());
        Worker {
            tenancy,
            bus,
            recorder,
            replay_key: std::sync::Arc::new(replay_key),
        }
    }

    /// Decides and dispatches a chunk of deliveries; one disposition per delivery, in order. The
    /// runs of the chunk are recorded with one request to the writer, published concurrently, and
    /// noted dispatched with one more.
    pub async fn process(&self, items: &[(Event<'_>, &Delivery)]) -> Vec<Outcome> {
        let mut routed = vec![None; items.len()];
        let dispositions = self.dispose(items, &mut routed).await;
        dispositions
            .into_iter()
            .zip(routed)
            .map(|(disposition, run)| Outcome { disposition, run })
            .collect()
    }

    async fn dispose(
        &self,
        items: &[(Event<'_>, &Delivery)],
        routed: &mut [Option<Routed>],
    ) -> Vec<Disposition> {
        let started = Instant::now();
        let mut out = vec![Disposition::Ack; items.len()];
        let (mut runs, mut rows) = (Vec::new(), Vec::new());
        let stamped: Vec<Option<HeaderMap>> = items.iter().map(|(ev, d)| stamp(ev, d)).collect();
        for (i, ((ev, delivery), stamped)) in items.iter().zip(&stamped).enumerate() {
            let ev = match stamped {
                Some(headers) => Event {
                    headers: Some(headers),
                    ..*ev
                },
                None => *ev,
            };
            if !super::replay::signed(&ev, &self.replay_key) {
                out[i] = Disposition::DeadLetter {
                    reason: "invalid_event",
                    detail: "unsigned replay header".to_owned(),
                };
                continue;
            }
            match verdict(self.tenancy.catalog(), &ev) {
                Verdict::Dispatch { mut run, subject } => {
                    run.event_seq = Some(delivery.stream_seq());
                    match prepare(&run, subject, &ev) {
                        Ok((prepared, row)) => {
                            routed[i] = Some(Routed {
                                org: run.org_id.to_string(),
                                team: run.team_id.to_string(),
                                run_id: run.run_id.to_string(),
                            });
                            runs.push((i, run, prepared));
                            rows.push(row);
                        }
                        Err(e) => out[i] = self.retry(&e.to_string(), delivery),
                    }
                }
                Verdict::Permanent { reason, detail } => {
                    out[i] = Disposition::DeadLetter { reason, detail };
                }
                Verdict::Transient { detail } => out[i] = self.retry(&detail, delivery),
            }
        }
        if runs.is_empty() {
            return out;
        }
        let states = match self.recorder.record(rows).await {
            Ok(states) => states,
            Err(e) => {
                for (i, _, _) in &runs {
                    out[*i] = self.retry(&e, items[*i].1);
                }
                return out;
            }
        };
        // Publish what is not dispatched yet, all at once; each waits for its own PubAck.
        let published = futures::future::join_all(runs.iter().zip(&states).map(
            |((_, _, p), state)| async move {
                match state {
                    RunState::Dispatched => Ok(true),
                    RunState::New | RunState::Pending => self
                        .bus
                        .publish(p.subject.clone(), p.headers.clone(), p.payload.clone())
                        .await
                        .map(|_| false),
                }
            },
        ))
        .await;
        let mut marks = Vec::new();
        for ((i, run, p), result) in runs.iter().zip(published) {
            match result {
                Ok(duplicate) => {
                    if !duplicate {
                        marks.push(p.run_id.clone());
                    }
                    let (org, team) =
                        crate::telemetry::team_labels(run.org_id.as_str(), run.team_id.as_str());
                    let outcome = if duplicate {
                        "duplicate"
                    } else {
                        run.deployment.mode()
                    };
                    metrics::counter!("ifox_router_events_total", "org" => org.clone(), "team" => team.clone(), "outcome" => outcome).increment(1);
                    metrics::histogram!("ifox_router_routing_seconds", "org" => org, "team" => team).record(started.elapsed().as_secs_f64());
                    out[*i] = Disposition::Ack;
                }
                Err(e) => out[*i] = self.retry(&Transient::from(e).to_string(), items[*i].1),
            }
        }
        self.recorder.dispatched(marks).await;
        out
    }

    fn retry(&self, detail: &str, delivery: &Delivery) -> Disposition {
        let delay = nak_delay(delivery.delivered());
        let event_id = delivery
            .headers()
            .and_then(|h| h.get(headers::CE_ID))
            .map(|v| v.as_str())
            .unwrap_or_default();
        tracing::warn!(event_id, stream_seq = delivery.stream_seq(), attempt = delivery.delivered(), retry_in = ?delay, error = %detail, "event will be retried");
        metrics::counter!("ifox_router_retries_total").increment(1);
        Disposition::Nak(delay)
    }
}

/// What one event came to: its disposition and, when a run was decided, which.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub disposition: Disposition,
    pub run: Option<Routed>,
}

/// The team and run an event was routed to (span fields of its settlement).
#[derive(Debug, Clone, Default)]
pub struct Routed {
    pub org: String,
    pub team: String,
    pub run_id: String,
}

/// The headers of an event published without `ce-time`, with the stream's timestamp as `ce-time`
/// (`None` when it has one: the event is used as stored). Only such events pay for the copy.
fn stamp(ev: &Event<'_>, delivery: &Delivery) -> Option<HeaderMap> {
    if ev.header(CE_TIME).is_some() {
        return None;
    }
    let mut headers = ev.headers.cloned().unwrap_or_default();
    let at = humantime::format_rfc3339_millis(delivery.published()).to_string();
    headers.insert(CE_TIME, at.as_str());
    Some(headers)
}

/// What publishing one run takes (its record goes to the run writer separately).
struct Prepared {
    run_id: String,
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

/// The AGENT_RUNS message of a run and its record.
fn prepare(
    run: &super::run::AgentRun,
    subject: String,
    ev: &Event<'_>,
) -> Result<(Prepared, runs::RunRow), Transient> {
    let payload =
        Bytes::from(serde_json::to_vec(run).map_err(|e| Transient::Other(e.to_string()))?);
    let run_id = run.run_id.to_string();
    // Only what a consumer needs beside the body (which holds the run id, the event id and the
    // rest): nats-server parses every header of every publish.
    let mut headers = HeaderMap::new();
    headers.insert(headers::NATS_MSG_ID, run_id.as_str());
    headers.insert(headers::CE_ID, run.event_id.as_str());
    if let Some(tp) = ev.header(headers::TRACEPARENT) {
        headers.insert(headers::TRACEPARENT, tp);
    }
    let row = runs::RunRow {
        run_id: run_id.clone(),
        event_id: run.event_id.clone(),
        org_id: run.org_id.to_string(),
        team_id: run.team_id.to_string(),
        source: run.source.clone(),
        event_type: run.event_type.clone(),
        deployment_mode: run.deployment.mode().to_owned(),
        subject: subject.clone(),
        config_version: run.config_version.clone(),
        status: "queued".to_owned(),
        replay_of: run.replay_of.map(|r| r.to_string()),
        matched: format!("{}={}", run.matched.kind.key(), run.matched.value),
        dispatched_at: None,
        created_at: now_ms(),
    };
    let prepared = Prepared {
        run_id,
        subject,
        headers,
        payload,
    };
    Ok((prepared, row))
}
