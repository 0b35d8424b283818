//! `ifox replay …`: the command line of the replay (its arguments, the times `--since` and
//! `--until` take — RFC 3339 or an age like `2h` — and the progress line on stderr).

use super::*;

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
    SystemTime::now()
        .checked_sub(age)
        .map(Some)
        .ok_or_else(|| ReplayError::Invalid(format!("{text:?} reaches too far back")))
}

/// Runs `ifox replay …` within `limits`, signing with `key` ([`replay_sig::key`] of the admin
/// token).
pub async fn run_cli(
    bus: &Bus,
    key: &[u8],
    limits: &Limits,
    cmd: ReplayCommand,
) -> Result<Summary, ReplayError> {
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
        limits: *limits,
    };
    replay(bus, key, &sel, &options, |s, last| {
        eprintln!(
            "replay: {} matched, {} republished, {} skipped (stream up to seq {last})",
            s.matched, s.republished, s.skipped
        );
    })
    .await
}
