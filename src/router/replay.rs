//! `ifox replay`: republish stored events — from EVENTS (a sequence range, a time window, a subject
//! filter) or from DEADLETTER (by reason) — so the router processes them again.
//!
//! Each replayed message gets a new `ce-id`, `Ifox-Replay-Of: <the original ce-id>` (the root
//! original when replaying a replay) and `Nats-Msg-Id: replay:<new ce-id>`; dead-letter headers are
//! dropped and the message goes back to its original subject (`Ifox-DL-Subject`); every other header,
//! `ce-time` included, is kept. The router derives the run id from `Ifox-Replay-Of` and `ce-time`, so
//! replaying an already-dispatched event makes no second run;
//! `--force` adds `Ifox-Replay-Force: true`, and the router then makes a new run that records which
//! run it replays.
//!
//! The range is fixed when the replay starts (the stream's last sequence then), so messages the replay
//! itself appends are never replayed again. `--dry-run` lists without publishing; `--rate` caps
//! messages per second; a progress line goes to stderr every 2 s.

use crate::bus::Bus;
use crate::domain::headers::{
    CE_ID, NATS_MSG_ID, REPLAY_FORCE, REPLAY_OF, REPLAY_PREFIX, dead_letter,
};
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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub matched: u64,
    pub republished: u64,
    pub skipped: u64,
}

/// Headers and subject of the replay of a message stored on `subject`.
pub fn replayed(
    subject: &str,
    headers: Option<&HeaderMap>,
    force: bool,
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
    let root = get(REPLAY_OF)
        .or_else(|| get(CE_ID))
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
    out.insert(CE_ID, new_id.as_str());
    out.insert(NATS_MSG_ID, format!("replay:{new_id}"));
    out.insert(REPLAY_OF, root.as_str());
    if force {
        out.insert(REPLAY_FORCE, "true");
    }
    Ok((target, out, root))
}

/// Replays the selection; `progress` gets (done, total) now and then.
pub async fn replay(
    bus: &Bus,
    sel: &Selection,
    opts: &Options,
    mut progress: impl FnMut(&Summary, u64),
) -> Result<Summary, ReplayError> {
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
            start_time: time::OffsetDateTime::from(t),
        },
        (None, None) => DeliverPolicy::All,
    };
    let mut summary = Summary::default();
    if info.state.messages == 0 || sel.start_seq.is_some_and(|s| s > last) {
        return Ok(summary);
    }
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
        match replayed(&msg.subject, msg.headers.as_ref(), opts.force) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_gets_a_new_id_names_the_root_original_and_drops_dead_letter_headers() {
        let mut h = HeaderMap::new();
        h.insert("ce-id", "ev1");
        h.insert("ce-source", "github");
        h.insert("ce-time", "2026-11-28T12:00:00.000Z");
        h.insert("Nats-Msg-Id", "dl:router:EVENTS:7");
        h.insert(dead_letter::SUBJECT, "ifox.events.github.issues");
        h.insert(dead_letter::REASON, "no_route");
        let (subject, out, root) =
            replayed("ifox.deadletter.router.no_route", Some(&h), false).unwrap();
        assert_eq!(
            (subject.as_str(), root.as_str()),
            ("ifox.events.github.issues", "ev1")
        );
        assert_ne!(out.get("ce-id").unwrap().as_str(), "ev1");
        assert!(out.get(dead_letter::REASON).is_none() && out.get(REPLAY_FORCE).is_none());
        assert_eq!(out.get("ce-source").unwrap().as_str(), "github");
        assert_eq!(
            out.get("ce-time").unwrap().as_str(),
            "2026-11-28T12:00:00.000Z",
            "the run id derives from ce-time"
        );
        // replaying the replay still names the first original
        let (_, again, root) = replayed("ifox.events.github.issues", Some(&out), true).unwrap();
        assert_eq!(root, "ev1");
        assert_eq!(again.get(REPLAY_FORCE).unwrap().as_str(), "true");
    }
}

/// `ifox replay …`
#[derive(Debug, clap::Subcommand)]
pub enum ReplayCommand {
    /// Replay from EVENTS.
    Events {
        #[command(flatten)]
        range: RangeArgs,
        /// Subject filter, e.g. `ifox.events.github.>`.
        #[arg(long)]
        subject: Option<String>,
        #[command(flatten)]
        opts: OptionArgs,
    },
    /// Replay from DEADLETTER (e.g. after adding the missing claim).
    Deadletter {
        /// Only this reason (`no_route`, `ambiguous_route`, `invalid_event`, `max_deliveries`, …).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        range: RangeArgs,
        #[command(flatten)]
        opts: OptionArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct RangeArgs {
    /// First stream sequence.
    #[arg(long)]
    pub start_seq: Option<u64>,
    /// Last stream sequence.
    #[arg(long)]
    pub end_seq: Option<u64>,
    /// Start time: RFC 3339 (`2026-11-28T10:00:00Z`) or an age (`2h`).
    #[arg(long)]
    pub since: Option<String>,
    /// End time, same forms.
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OptionArgs {
    /// List what would be replayed; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Make new runs even for events already dispatched.
    #[arg(long)]
    pub force: bool,
    /// At most this many messages per second.
    #[arg(long)]
    pub rate: Option<u32>,
}

fn when(arg: &Option<String>) -> Result<Option<SystemTime>, ReplayError> {
    let Some(text) = arg else { return Ok(None) };
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(Some(t));
    }
    let age = humantime::parse_duration(text).map_err(|e| {
        ReplayError::Invalid(format!(
            "{text:?} is neither RFC 3339 nor an age like 2h: {e}"
        ))
    })?;
    Ok(Some(SystemTime::now() - age))
}

/// Runs `ifox replay …`.
pub async fn run_cli(bus: &Bus, cmd: ReplayCommand) -> Result<Summary, ReplayError> {
    let (mut sel, range, opts) = match cmd {
        ReplayCommand::Events {
            range,
            subject,
            opts,
        } => (
            Selection {
                stream: "EVENTS".into(),
                subject,
                ..Selection::default()
            },
            range,
            opts,
        ),
        ReplayCommand::Deadletter {
            reason,
            range,
            opts,
        } => (Selection::deadletter(reason.as_deref()), range, opts),
    };
    sel.start_seq = range.start_seq;
    sel.end_seq = range.end_seq;
    sel.since = when(&range.since)?;
    sel.until = when(&range.until)?;
    let options = Options {
        dry_run: opts.dry_run,
        force: opts.force,
        rate: opts.rate,
    };
    replay(bus, &sel, &options, |s, last| {
        eprintln!(
            "replay: {} matched, {} republished, {} skipped (stream up to seq {last})",
            s.matched, s.republished, s.skipped
        );
    })
    .await
}
