//! The bounds of one replay, checked before anything is republished: the time window
//! (`limits.replay_span`) and the number of messages selected (`limits.replay_events`), which
//! JetStream counts for the filter and range without delivering anything.

use super::{ReplayError, Selection, js};
use crate::domain::limits::{Exceeded, Limit, Limits};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::Stream;
use std::time::{Duration, SystemTime};

/// Refuses a time window longer than `limits.replay_span` (until defaults to `now`).
pub(super) fn check_span(
    limits: &Limits,
    sel: &Selection,
    now: SystemTime,
) -> Result<(), Exceeded> {
    let Some(since) = sel.since else {
        return Ok(());
    };
    let span = sel
        .until
        .unwrap_or(now)
        .duration_since(since)
        .unwrap_or_default();
    // Rounded up, so one second past the limit is past it.
    let secs = span.as_secs() + u64::from(span.subsec_nanos() > 0);
    limits.check(Limit::ReplaySpan, secs)
}

/// How many messages the selection holds from `from` to sequence `last` (and `until`): JetStream's
/// pending count of a consumer at the start minus that of one just past the end.
pub(super) async fn count(
    stream: &Stream,
    sel: &Selection,
    from: DeliverPolicy,
    last: u64,
) -> Result<u64, ReplayError> {
    let filter = sel.subject.clone().unwrap_or_default();
    let selected = pending(stream, &filter, from).await?;
    let past_seq = DeliverPolicy::ByStartSequence {
        start_sequence: last.saturating_add(1),
    };
    let mut after = pending(stream, &filter, past_seq).await?;
    if let Some(until) = sel.until {
        let past_until = until.max(std::time::UNIX_EPOCH) + Duration::from_nanos(1);
        let past_time = DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from(past_until),
        };
        after = after.max(pending(stream, &filter, past_time).await?);
    }
    Ok(selected.saturating_sub(after))
}

/// The messages matching `filter` from `policy` to the end of the stream, as a new consumer
/// counts them; the consumer is deleted at once (its inactivity threshold removes it otherwise).
async fn pending(stream: &Stream, filter: &str, policy: DeliverPolicy) -> Result<u64, ReplayError> {
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: policy,
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(js)?;
    let info = consumer.cached_info();
    if let Err(e) = stream.delete_consumer(&info.name).await {
        tracing::debug!(error = %e, "replay: counting consumer left to expire");
    }
    Ok(info.num_pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(since_s: u64, until_s: Option<u64>) -> Selection {
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        Selection {
            since: Some(at(since_s)),
            until: until_s.map(at),
            ..Selection::default()
        }
    }

    #[test]
    fn a_window_one_second_past_the_span_is_refused_naming_the_setting() {
        let limits = Limits {
            replay_span: Duration::from_secs(3600),
            ..Limits::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
        assert_eq!(check_span(&limits, &window(1000, Some(4600)), now), Ok(()));
        let e = check_span(&limits, &window(1000, Some(4601)), now).unwrap_err();
        assert_eq!((e.limit, e.max, e.value), (Limit::ReplaySpan, 3600, 3601));
        // Without --until the window ends now.
        assert!(check_span(&limits, &window(1000, None), now).is_err());
        assert_eq!(check_span(&limits, &window(99_000, None), now), Ok(()));
        // A sequence range has no time window.
        assert_eq!(check_span(&limits, &Selection::default(), now), Ok(()));
    }
}
