//! The run lifecycle's effects: a transition recorded in the database (guarded, so the first
//! writer of an outcome wins; see [`crate::store::run_lifecycle`]), then announced on
//! `ifox.runs.<org>.<team>.<status>` (stream RUNS) for anyone who follows runs with NATS tools.
//!
//! The database is the record; RUNS is the feed. An announcement that NATS does not confirm is
//! logged and counted (`ifox_bridge_status_unpublished_total`) but does not undo the transition or
//! make the agent run again; nothing waits for its PubAck.
//!
//! The bridge's lifecycle writes go through its batched writer ([`super::recorder`]); a lifecycle
//! without one (the status reports of agents, through the API) writes each transition in its own
//! transaction.

use super::recorder::Recorder;
use crate::bus::Bus;
use crate::domain::{headers, now_ms};
use crate::store::run_lifecycle::{self, Change, OwnedChange};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// Schema of the RUNS messages.
pub const SCHEMA: &str = "ifox.run_status.v1";

/// Which run a transition is about, as the feed names it.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub run_id: String,
    pub event_id: String,
    pub org_id: String,
    pub team_id: String,
    pub traceparent: Option<String>,
}

impl From<&crate::store::run_lifecycle::RunRecord> for RunRef {
    fn from(r: &crate::store::run_lifecycle::RunRecord) -> RunRef {
        RunRef {
            run_id: r.run_id.clone(),
            event_id: r.event_id.clone(),
            org_id: r.org_id.clone(),
            team_id: r.team_id.clone(),
            traceparent: None,
        }
    }
}

/// A RUNS message.
#[derive(Debug, Serialize)]
struct Announcement<'a> {
    schema: &'static str,
    run_id: &'a str,
    event_id: &'a str,
    org_id: &'a str,
    team_id: &'a str,
    status: &'a str,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a str>,
}

#[derive(Clone)]
pub struct Lifecycle {
    store: Store,
    bus: Option<Bus>,
    writer: Option<Recorder>,
}

impl Lifecycle {
    /// `bus` `None`: transitions are recorded but not announced (a process without NATS).
    pub fn new(store: Store, bus: Option<Bus>) -> Lifecycle {
        Lifecycle {
            store,
            bus,
            writer: None,
        }
    }

    /// Transitions written (and announced) by `writer`, in batches.
    pub fn batched(store: Store, writer: Recorder) -> Lifecycle {
        Lifecycle {
            store,
            bus: None,
            writer: Some(writer),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records `change` (its `at` is set to now when 0) and announces it when it applied.
    /// `Ok(false)`: the run's status did not allow it (finished already, or no such run).
    pub async fn advance<'a>(
        &self,
        run: &'a RunRef,
        mut change: Change<'a>,
    ) -> Result<bool, StoreError> {
        if change.at == 0 {
            change.at = now_ms();
        }
        change.run_id = &run.run_id;
        if let Some(writer) = &self.writer {
            return writer
                .transition(run.clone(), owned(&change))
                .await
                .map_err(StoreError::Corrupt);
        }
        let applied = {
            let mut tx = self.store.begin().await?;
            let applied = run_lifecycle::transition(&mut tx, &change).await?;
            tx.commit().await?;
            applied
        };
        if applied {
            metrics::counter!("ifox_bridge_transitions_total", "status" => change.to.to_owned())
                .increment(1);
            if let Some(bus) = &self.bus {
                announce(bus, run, &change).await;
            }
        }
        Ok(applied)
    }

    /// Records `change` without waiting (with a batched writer; else as [`Lifecycle::advance`],
    /// its failure logged): it is written before any later transition of the run.
    pub async fn advance_later(&self, run: &RunRef, mut change: Change<'_>) {
        if change.at == 0 {
            change.at = now_ms();
        }
        change.run_id = &run.run_id;
        match &self.writer {
            Some(writer) => writer.transition_later(run.clone(), owned(&change)).await,
            None => {
                if let Err(e) = self.advance(run, change).await {
                    tracing::warn!(run_id = %run.run_id, error = %e, "transition not recorded");
                }
            }
        }
    }
}

fn owned(c: &Change<'_>) -> OwnedChange {
    let to = run_lifecycle::STATUSES
        .iter()
        .find(|s| **s == c.to)
        .copied()
        .unwrap_or("unknown");
    OwnedChange {
        run_id: c.run_id.to_owned(),
        to,
        at: c.at,
        detail: c.detail.map(str::to_owned),
        deadline_at: c.deadline_at,
        attempt: c.attempt,
        delivered_to: c.delivered_to.map(str::to_owned),
        protocol: c.protocol.map(str::to_owned),
        result_text: c.result_text.map(str::to_owned),
        error: c.error.map(str::to_owned),
    }
}

/// Announces an applied transition on `ifox.runs.<org>.<team>.<status>`: published now (in the
/// caller's order), its PubAck awaited by a task of its own.
pub(super) async fn announce(bus: &Bus, run: &RunRef, change: &Change<'_>) {
    {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(change.at.max(0) as u64);
        let message = Announcement {
            schema: SCHEMA,
            run_id: &run.run_id,
            event_id: &run.event_id,
            org_id: &run.org_id,
            team_id: &run.team_id,
            status: change.to,
            at: humantime::format_rfc3339_millis(at).to_string(),
            detail: change.detail,
            error: change.error,
            result: change.result_text,
        };
        let Ok(body) = serde_json::to_vec(&message) else {
            return;
        };
        let mut headers = async_nats::HeaderMap::new();
        let id = format!("{}:{}", run.run_id, change.to);
        headers.insert(headers::NATS_MSG_ID, id.as_str());
        headers.insert(headers::CE_ID, run.event_id.as_str());
        headers.insert(headers::CONTENT_TYPE, "application/json");
        if let Some(tp) = &run.traceparent {
            headers.insert(headers::TRACEPARENT, tp.as_str());
        }
        let subject = format!("ifox.runs.{}.{}.{}", run.org_id, run.team_id, change.to);
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(body.into())
            .headers(headers);
        let (run_id, status) = (run.run_id.clone(), change.to.to_owned());
        let unpublished = move |e: String| {
            metrics::counter!("ifox_bridge_status_unpublished_total").increment(1);
            tracing::warn!(%run_id, %status, error = %e, "run status recorded but not announced on RUNS");
        };
        match bus.jetstream().send_publish(subject, message).await {
            Ok(ack) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(std::time::Duration::from_secs(10), ack).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => unpublished(e.to_string()),
                        Err(_) => unpublished("no PubAck within 10 s".to_owned()),
                    }
                });
            }
            Err(e) => unpublished(e.to_string()),
        }
    }
}

/// Moves runs past their deadline to `timeout`; how many it moved. Runs `held` says this process
/// is still working on are left alone: their delivery ends them (an agent's answer waiting for the
/// database to come back must not be replaced by "no outcome").
pub async fn sweep(
    lifecycle: &Lifecycle,
    held: impl Fn(&str) -> bool,
) -> Result<usize, crate::store::StoreError> {
    let overdue = {
        let mut conn = lifecycle.store().pool().acquire().await?;
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
        if lifecycle.advance(&run, change).await? {
            tracing::info!(run_id = %r.run_id, org = %r.org_id, team = %r.team_id, "run timed out");
            moved += 1;
        }
    }
    Ok(moved)
}
