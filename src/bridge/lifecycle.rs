//! The run lifecycle's effects: a transition recorded in the database (guarded, so the first
//! writer of an outcome wins; see [`crate::store::run_lifecycle`]), then announced on
//! `ifox.runs.<org>.<team>.<status>` (stream RUNS) for anyone who follows runs with NATS tools.
//!
//! The database is the record; RUNS is the feed. An announcement that NATS does not confirm is
//! logged and counted (`ifox_bridge_status_unpublished_total`) but does not undo the transition or
//! make the agent run again.

use crate::bus::Bus;
use crate::domain::{headers, now_ms};
use crate::store::run_lifecycle::{self, Change};
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
}

impl Lifecycle {
    /// `bus` `None`: transitions are recorded but not announced (a process without NATS).
    pub fn new(store: Store, bus: Option<Bus>) -> Lifecycle {
        Lifecycle { store, bus }
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
        let applied = {
            let mut tx = self.store.begin().await?;
            let applied = run_lifecycle::transition(&mut tx, &change).await?;
            tx.commit().await?;
            applied
        };
        if applied {
            metrics::counter!("ifox_bridge_transitions_total", "status" => change.to.to_owned())
                .increment(1);
            self.announce(run, &change).await;
        }
        Ok(applied)
    }

    async fn announce(&self, run: &RunRef, change: &Change<'_>) {
        let Some(bus) = &self.bus else {
            return;
        };
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
        if let Err(e) = bus.publish(subject, headers, body.into()).await {
            metrics::counter!("ifox_bridge_status_unpublished_total").increment(1);
            tracing::warn!(run_id = %run.run_id, status = change.to, error = %e, "run status recorded but not announced on RUNS");
        }
    }
}

/// Moves runs past their deadline to `timeout`; how many it moved.
pub async fn sweep(lifecycle: &Lifecycle) -> Result<usize, crate::store::StoreError> {
    let overdue = {
        let mut conn = lifecycle.store().pool().acquire().await?;
        crate::store::run_lifecycle::overdue(&mut conn, now_ms(), 500).await?
    };
    let mut moved = 0;
    for r in overdue {
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
