//! Where a webhook's time goes on its way to the agent: the moments its event, its run and its
//! `delivering` announcement were stored by nats-server (each JetStream message's timestamp),
//! between the moment it was sent and the moment the agent got its request (both on this
//! process's monotonic clock, turned into wall-clock time by one pair of readings taken at the
//! start; a bench run is too short for the two clocks to drift apart measurably).
//!
//! Messages name their webhook by the number that ends their event id (`pipe-<n>`, `raw-<n>`): the
//! `ce-id` header when they have one, else the `event_id` of their JSON body.

use crate::AnyResult;
use crate::load::Slice;
use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A point a webhook passes: messages of `stream` on `filter`, stored when the step before it ended.
pub struct Stage {
    pub stream: &'static str,
    pub filter: &'static str,
    /// The segment that ends here.
    pub label: &'static str,
}

pub const IFOX: [Stage; 3] = [
    Stage {
        stream: "EVENTS",
        filter: "ifox.events.>",
        label: "ingest: webhook sent -> event stored in EVENTS",
    },
    Stage {
        stream: "AGENT_RUNS",
        filter: "ifox.agent.>",
        label: "router: event stored -> run stored in AGENT_RUNS",
    },
    Stage {
        stream: "RUNS",
        filter: "ifox.runs.*.*.delivering",
        label: "bridge: run stored -> `delivering` stored on RUNS",
    },
];
pub const IFOX_LAST: &str = "bridge: `delivering` stored -> agent request";

pub const RAW: [Stage; 2] = [
    Stage {
        stream: "RAW_EVENTS",
        filter: "bench.raw.events.>",
        label: "publish + PubAck -> event stored",
    },
    Stage {
        stream: "RAW_RUNS",
        filter: "bench.raw.runs.>",
        label: "consume, publish run -> run stored",
    },
];
pub const RAW_LAST: &str = "consume run -> agent request";

/// This process's monotonic clock against the wall clock nats-server stamps messages with.
pub struct Clock {
    instant: Instant,
    unix_ns: i128,
}

impl Clock {
    pub fn now() -> Clock {
        let (instant, wall) = (Instant::now(), SystemTime::now());
        let unix_ns = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Clock { instant, unix_ns }
    }
    fn unix_ns(&self, t: Instant) -> i128 {
        match t.checked_duration_since(self.instant) {
            Some(d) => self.unix_ns + d.as_nanos() as i128,
            None => self.unix_ns - self.instant.duration_since(t).as_nanos() as i128,
        }
    }
}

/// The next sequence of each stage's stream: where a slice's messages will start.
pub async fn mark(js: &jetstream::Context, stages: &[Stage]) -> AnyResult<Vec<u64>> {
    let mut starts = Vec::new();
    for s in stages {
        starts.push(
            js.get_stream(s.stream)
                .await?
                .info()
                .await?
                .state
                .last_sequence
                + 1,
        );
    }
    Ok(starts)
}

/// The webhook number that ends an event id.
fn number(id: &str) -> Option<u64> {
    id.rsplit('-').next()?.parse().ok()
}

/// When each webhook's message of `stage` was stored (unix ns), from sequence `start` on.
async fn stored(
    js: &jetstream::Context,
    stage: &Stage,
    start: u64,
) -> AnyResult<HashMap<u64, i128>> {
    let config = pull::Config {
        deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
            start_sequence: start,
        },
        ack_policy: jetstream::consumer::AckPolicy::None,
        filter_subject: stage.filter.to_owned(),
        ..Default::default()
    };
    let mut stream = js.get_stream(stage.stream).await?;
    let mut at = HashMap::new();
    if stream.info().await?.state.last_sequence < start {
        return Ok(at);
    }
    let consumer = stream.create_consumer(config).await?;
    let mut messages = consumer.messages().await?;
    // A stage that got none of the slice's messages (ifox lost them all) must not hang the bench.
    let quiet = std::time::Duration::from_secs(5);
    while let Ok(Some(m)) = tokio::time::timeout(quiet, messages.next()).await {
        let m = m?;
        let info = m.info()?;
        let ce_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("ce-id"))
            .map(|v| v.as_str().to_owned());
        let id = ce_id.or_else(|| {
            let body: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
            Some(body["event_id"].as_str()?.to_owned())
        });
        if let Some(n) = id.as_deref().and_then(number) {
            at.entry(n).or_insert(info.published.unix_timestamp_nanos());
        }
        if info.pending == 0 {
            break;
        }
    }
    Ok(at)
}

/// Per segment (send → first stage → … → agent request), the µs of each webhook of `slice` that
/// passed every point.
pub async fn breakdown(
    js: &jetstream::Context,
    stages: &[Stage],
    starts: &[u64],
    slice: &Slice,
    clock: &Clock,
) -> AnyResult<Vec<Vec<i64>>> {
    let mut points = Vec::new();
    for (stage, &start) in stages.iter().zip(starts) {
        points.push(stored(js, stage, start).await?);
    }
    let mut segments = vec![Vec::new(); stages.len() + 1];
    for (n, sent) in &slice.sends {
        let Some(arrived) = slice.arrivals.get(n) else {
            continue;
        };
        let mut times = vec![clock.unix_ns(*sent)];
        times.extend(points.iter().filter_map(|p| p.get(n).copied()));
        if times.len() != stages.len() + 1 {
            continue;
        }
        times.push(clock.unix_ns(*arrived));
        for (i, w) in times.windows(2).enumerate() {
            segments[i].push(((w[1] - w[0]) / 1000) as i64);
        }
    }
    Ok(segments)
}
