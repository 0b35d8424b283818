//! `ifox replay`: republish stored events — from EVENTS (a sequence range, a time window, a subject
//! filter) or from DEADLETTER (by reason) — so the router processes them again.
//!
//! Each replayed message gets a new `ce-id`, `Ifox-Replay-Of: <the original ce-id>` (the root
//! original when replaying a replay) and `Nats-Msg-Id: replay:<new ce-id>`; dead-letter headers are
//! dropped and the message goes back to its original subject (`Ifox-DL-Subject`); every other header,
//! `ce-time`, `ce-source` and `ifox-org` included, is kept, and a message stored without `ce-time`
//! gets its stream timestamp as `ce-time` (what the router used for its run id). The router derives
//! the run id from the tenant scope, the source, `Ifox-Replay-Of` and `ce-time`, so replaying an
//! already-dispatched event makes no second run;
//! `--force` adds `Ifox-Replay-Force: true`, and the router then makes a new run that records which
//! run it replays.
//!
//! The replay headers are signed: `Ifox-Replay-Sig` = HMAC-SHA256 over (replay-of, force flag, the
//! new `ce-id`, the subject) with the key derived from the admin token
//! ([`crate::domain::replay_sig`]). The router refuses replay headers without a valid signature
//! ([`signed`]): a publisher that may publish on `ifox.events.>` cannot ask for a replay's run.
//!
//! The range is fixed when the replay starts (the stream's last sequence then), so messages the replay
//! itself appends are never replayed again. `--dry-run` lists without publishing; `--rate` caps
//! messages per second; a progress line goes to stderr every 2 s.
//!
//! A replay is bounded before it starts ([`Options::limits`], the `limits` settings): its time
//! window (`--since` to `--until`, `limits.replay_span`) and the messages it selects
//! (`limits.replay_events`, counted by JetStream for the filter and range, nothing delivered).

use super::verdict::Event;
use crate::bus::Bus;
use crate::domain::headers::{
    CE_ID, CE_TIME, NATS_MSG_ID, REPLAY_FORCE, REPLAY_OF, REPLAY_PREFIX, REPLAY_SIG, dead_letter,
};
use crate::domain::limits::{Exceeded, Limit, Limits};
use crate::domain::replay_sig;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("{0}")]
    Invalid(String),
    #[error("replay refused: {0}")]
    OverLimit(#[from] Exceeded),
}

fn js(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::JetStream(e.to_string())
}

/// Which messages to replay.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `EVENTS` or `DEADLETTER`.
    pub stream: String,
    /// A subject filter (e.g. `ifox.events.github.>` or `ifox.deadletter.router.no_route`).
    pub subject: Option<String>,
    pub start_seq: Option<u64>,
    pub end_seq: Option<u64>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

impl Selection {
    /// Dead letters of one reason (or all).
    pub fn deadletter(reason: Option<&str>) -> Selection {
        Selection {
            stream: "DEADLETTER".into(),
            subject: Some(reason.map_or("ifox.deadletter.>".to_owned(), |r| {
                format!("ifox.deadletter.*.{r}")
            })),
            ..Selection::default()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub force: bool,
    /// Messages per second; `None` = as fast as PubAcks come.
    pub rate: Option<u32>,
    /// `limits.replay_events` and `limits.replay_span` are checked before anything is replayed.
    pub limits: Limits,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub matched: u64,
    pub republished: u64,
    pub skipped: u64,
}

/// Whether an event's replay headers (if any) are signed by `ifox replay` with `key`. An event
/// without `Ifox-Replay-Of` and `Ifox-Replay-Force` needs no signature.
pub fn signed(ev: &Event<'_>, key: &[u8]) -> bool {
    let (of, force) = (ev.header(REPLAY_OF), ev.header(REPLAY_FORCE));
    if of.is_none() && force.is_none() {
        return true;
    }
    let (Some(of), Some(id), Some(sig)) = (of, ev.header(CE_ID), ev.header(REPLAY_SIG)) else {
        return false;
    };
    // The same reading of the flag as the verdict's.
    let force = force.is_some_and(|v| v.eq_ignore_ascii_case("true"));
    replay_sig::verify(key, sig, of, force, id, ev.subject)
}

/// Headers and subject of the replay of a message stored on `subject` at `stored_at`, signed with
/// `key`.
pub fn replayed(
    subject: &str,
    headers: Option<&HeaderMap>,
    stored_at: SystemTime,
    force: bool,
    key: &[u8],
) -> Result<(String, HeaderMap, String), ReplayError> {
    let get = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let target = get(dead_letter::SUBJECT).unwrap_or_else(|| subject.to_owned());
    if !target.starts_with("ifox.events.") {
        return Err(ReplayError::Invalid(format!(
            "{subject}: cannot tell the original event subject"
        )));
    }
    let stored_id = get(CE_ID).map(|id| id.trim().to_owned());
    // The root original of a replay of a replay, but only from a replay ifox signed: a forged
    // `Ifox-Replay-Of` (dead-lettered as unsigned) must not come back signed by this replay.
    let signed_root = match (get(REPLAY_OF), get(REPLAY_SIG), stored_id.as_deref()) {
        (Some(of), Some(sig), Some(id)) => {
            let force = get(REPLAY_FORCE).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            let of = of.trim().to_owned();
            replay_sig::verify(key, &sig, &of, force, id, &target).then_some(of)
        }
        _ => None,
    };
    let root = signed_root
        .or(stored_id)
        .ok_or_else(|| ReplayError::Invalid(format!("{subject}: no ce-id")))?;
    let new_id = format!("replay-{}", uuid::Uuid::now_v7());
    let mut out = HeaderMap::new();
    if let Some(headers) = headers {
        for (name, values) in headers.iter() {
            let name: &str = name.as_ref();
            let lower = name.to_ascii_lowercase();
            if lower.eq_ignore_ascii_case(NATS_MSG_ID)
                || lower == CE_ID
                || lower.starts_with(dead_letter::PREFIX)
                || lower.starts_with(REPLAY_PREFIX)
            {
                continue;
            }
            for v in values {
                out.append(name, v.as_str());
            }
        }
    }
    // The router gave an event without ce-time the stream's timestamp for its run id: keep it.
    if get(CE_TIME).is_none_or(|t| t.trim().is_empty()) {
        let at = humantime::format_rfc3339_millis(stored_at).to_string();
        out.insert(CE_TIME, at.as_str());
    }
    out.insert(CE_ID, new_id.as_str());
    out.insert(NATS_MSG_ID, format!("replay:{new_id}"));
    out.insert(REPLAY_OF, root.as_str());
    if force {
        out.insert(REPLAY_FORCE, "true");
    }
    let sig = replay_sig::sign(key, &root, force, &new_id, &target);
    out.insert(REPLAY_SIG, sig.as_str());
    Ok((target, out, root))
}

/// Replays the selection, signed with `key` ([`replay_sig::key`] of the admin token); `progress`
/// gets (done, total) now and then.
pub async fn replay(
    bus: &Bus,
    key: &[u8],
    sel: &Selection,
    opts: &Options,
    mut progress: impl FnMut(&Summary, u64),
) -> Result<Summary, ReplayError> {
    check_span(&opts.limits, sel, SystemTime::now())?;
    let mut stream = bus.jetstream().get_stream(&sel.stream).await.map_err(js)?;
    let info = stream.info().await.map_err(js)?;
    let last = sel
        .end_seq
        .unwrap_or(info.state.last_sequence)
        .min(info.state.last_sequence);
    let deliver_policy = match (sel.start_seq, sel.since) {
        (Some(seq), _) => DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
        (None, Some(t)) => DeliverPolicy::ByStartTime {
            // Nothing is older than the epoch; a time before it would not fit OffsetDateTime.
            start_time: time::OffsetDateTime::from(t.max(std::time::UNIX_EPOCH)),
        },
        (None, None) => DeliverPolicy::All,
    };
    let mut summary = Summary::default();
    if info.state.messages == 0 || sel.start_seq.is_some_and(|s| s > last) {
        return Ok(summary);
    }
    let selected = count(&stream, sel, deliver_policy, last).await?;
    opts.limits.check(Limit::ReplayEvents, selected)?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy,
            filter_subject: sel.subject.clone().unwrap_or_default(),
            ..Default::default()
        })
        .await
        .map_err(js)?;
    let mut messages = consumer.messages().await.map_err(js)?;
    let gap = opts
        .rate
        .filter(|r| *r > 0)
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    let mut last_report = Instant::now();
    let total = last;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), messages.next()).await;
        let msg = match next {
            Err(_) | Ok(None) => break, // nothing more within the range
            Ok(Some(m)) => m.map_err(js)?,
        };
        let info = msg.info().map_err(js)?;
        let seq = info.stream_sequence;
        let published_at = SystemTime::from(info.published);
        if seq > last {
            break;
        }
        if sel.until.is_some_and(|u| published_at > u) {
            break;
        }
        summary.matched += 1;
        match replayed(
            &msg.subject,
            msg.headers.as_ref(),
            published_at,
            opts.force,
            key,
        ) {
            Ok((subject, headers, _)) if !opts.dry_run => {
                bus.publish(subject, headers, msg.payload.clone())
                    .await
                    .map_err(js)?;
                summary.republished += 1;
            }
            Ok((subject, _, root)) => {
                eprintln!(
                    "dry-run: seq {seq} {} → {subject} (replay of {root})",
                    msg.subject
                );
            }
            Err(e) => {
                eprintln!("skipped seq {seq}: {e}");
                summary.skipped += 1;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            progress(&summary, total);
            last_report = Instant::now();
        }
        if let Some(gap) = gap {
            tokio::time::sleep(gap).await;
        }
        if seq >= last {
            break;
        }
    }
    progress(&summary, total);
    Ok(summary)
}

#[path = "replay_bounds.rs"]
mod bounds;
use bounds::{check_span, count};

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;

#[path = "replay_cli.rs"]
mod cli;
pub use cli::{OptionArgs, RangeArgs, ReplayCommand, run_cli};
