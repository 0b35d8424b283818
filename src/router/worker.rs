//! The effects of each event's verdict, with no database on the way: decide (in memory, from the
//! tenancy catalog) → publish the run to AGENT_RUNS with `Nats-Msg-Id = run id` and wait for the
//! PubAck → ack. AGENT_RUNS is the log of runs: the run record is its projection, made by the
//! bridge when it takes the run (`bridge/recorder.rs`). A crash before the ack redelivers the
//! event and the run is published again under the same `Nats-Msg-Id`, which AGENT_RUNS collapses
//! within its duplicate window (1 h; the PubAck says `duplicate`); beyond it (a replay of an old
//! event) the bridge finds the run recorded from another AGENT_RUNS message and does not deliver it
//! again. The router keeps routing while the database is away; only a catalog that was never loaded
//! makes events wait.
//!
//! The consumer hands over a chunk of deliveries at a time; their runs are published concurrently
//! and each event gets its own disposition.
//!
//! Before the verdict, an event published without `ce-time` is given the stream's timestamp (its
//! run id is then ordered and stays the same on every redelivery, see [`super::run`]), and replay
//! headers that `ifox replay` did not sign ([`super::replay::signed`]) make the event an
//! `invalid_event` dead letter: only ifox's replay may ask for a replay's run.
//!
//! Permanent failures become [`Disposition::DeadLetter`] (the consumer toolkit stores the dead letter,
//! PubAck first, then terminates); transient ones are NAKed with the toolkit's [`nak_delay`].

use super::verdict::{Event, Verdict, verdict};
use crate::bus::{Bus, Delivery, Disposition, PublishError, nak_delay};
use crate::domain::headers::{self, CE_TIME};
use crate::tenancy::Tenancy;
use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
enum Transient {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("{0}")]
    Other(String),
}

#[derive(Clone)]
pub struct Worker {
    tenancy: Tenancy,
    bus: Bus,
    /// Checks replay signatures ([`crate::domain::replay_sig::key`] of the admin token).
    replay_key: std::sync::Arc<Vec<u8>>,
}

impl Worker {
    /// `replay_key`: [`crate::domain::replay_sig::key`] of the admin token, as `ifox replay` signs.
    pub fn new(tenancy: Tenancy, bus: Bus, replay_key: Vec<u8>) -> Worker {
        Worker {
            tenancy,
            bus,
            replay_key: std::sync::Arc::new(replay_key),
        }
    }

    /// Decides and dispatches a chunk of deliveries; one disposition per delivery, in order. The
    /// runs of the chunk are published concurrently.
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
        let mut runs = Vec::new();
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
                        Ok(prepared) => runs.push((i, run, prepared)),
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
        // Publish them all at once (the prepared messages are moved, not copied); each waits for
        // its own PubAck.
        let (runs, prepared): (Vec<_>, Vec<_>) =
            runs.into_iter().map(|(i, run, p)| ((i, run), p)).unzip();
        let published = futures::future::join_all(
            prepared
                .into_iter()
                .map(|p| self.bus.publish(p.subject, p.headers, p.payload)),
        )
        .await;
        // Counted per chunk: one registry lookup per (team labels, outcome) of the chunk, not two
        // per event (most teams share the bounded `other` labels).
        let mut counted: HashMap<(&str, &str, &'static str), u64> = HashMap::new();
        for ((i, run), result) in runs.iter().zip(published) {
            match result {
                Ok(ack) => {
                    let (org, team) = (run.org_id.as_str(), run.team_id.as_str());
                    let labels = if crate::telemetry::team_labelled(org, team) {
                        (org, team)
                    } else {
                        (crate::telemetry::OTHER_TEAM, crate::telemetry::OTHER_TEAM)
                    };
                    let outcome = if ack.duplicate {
                        "duplicate"
                    } else {
                        run.deployment.mode()
                    };
                    *counted.entry((labels.0, labels.1, outcome)).or_default() += 1;
                    out[*i] = Disposition::Ack;
                }
                Err(e) => out[*i] = self.retry(&Transient::from(e).to_string(), items[*i].1),
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        for ((org, team, outcome), n) in counted {
            metrics::counter!("ifox_router_events_total", "org" => org.to_owned(), "team" => team.to_owned(), "outcome" => outcome).increment(n);
            metrics::histogram!("ifox_router_routing_seconds", "org" => org.to_owned(), "team" => team.to_owned())
                .record_many(elapsed, n as usize);
        }
        for (i, run) in runs {
            let run = *run;
            routed[i] = Some(Routed {
                org: run.org_id,
                team: run.team_id,
                run_id: run.run_id,
            });
        }
        out
    }

    fn retry(&self, detail: &str, delivery: &Delivery) -> Disposition {
        let delay = nak_delay(delivery.delivered());
        let event_id = delivery
            .headers()
            .and_then(|h| headers::get(h, headers::CE_ID))
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
#[derive(Debug, Clone)]
pub struct Routed {
    pub org: crate::domain::OrgId,
    pub team: crate::domain::NodeId,
    pub run_id: uuid::Uuid,
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

/// What publishing one run takes.
struct Prepared {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

/// The AGENT_RUNS message of a run.
fn prepare(
    run: &super::run::AgentRun,
    subject: String,
    ev: &Event<'_>,
) -> Result<Prepared, Transient> {
    // Sized for a whole document (~400 bytes), so serialising does not grow it step by step.
    let mut body = Vec::with_capacity(512);
    serde_json::to_writer(&mut body, run).map_err(|e| Transient::Other(e.to_string()))?;
    let payload = Bytes::from(body);
    // Only what a consumer needs beside the body (which holds the run id, the event id and the
    // rest): nats-server parses every header of every publish. Names are constants (no per-event
    // validation or allocation).
    const MSG_ID: HeaderName = HeaderName::from_static(headers::NATS_MSG_ID);
    const CE_ID: HeaderName = HeaderName::from_static(headers::CE_ID);
    const TRACEPARENT: HeaderName = HeaderName::from_static(headers::TRACEPARENT);
    let mut headers = HeaderMap::new();
    let mut id = uuid::Uuid::encode_buffer();
    headers.insert(MSG_ID, &*run.run_id.hyphenated().encode_lower(&mut id));
    headers.insert(CE_ID, run.event_id.as_str());
    if let Some(tp) = ev.header(headers::TRACEPARENT) {
        headers.insert(TRACEPARENT, tp);
    }
    Ok(Prepared {
        subject,
        headers,
        payload,
    })
}
