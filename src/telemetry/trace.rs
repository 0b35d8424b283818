//! Trace context across the pipeline: the event's W3C `traceparent` (a CloudEvents extension on
//! every EVENTS and AGENT_RUNS message) becomes the parent of the span that handles it, so the
//! webhook, routed-event and delivery spans of one event share one trace id in the OTLP export.
//! Without the OTLP layer (the default) these are no-ops and the ids stay as the headers carry them.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once a subscriber with the OTLP layer is built: until then (export off, the default) the
/// functions below return at once, costing the hot paths nothing.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(super) fn exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// `00-<trace id>-<span id>-<flags>` → its span context (remote), when well-formed and not zero.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let cx = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    cx.is_valid().then_some(cx)
}

/// The `traceparent` naming `cx` (its trace id, its span id as the parent of what follows).
pub fn format_traceparent(cx: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags().to_u8()
    )
}

/// Makes the event's trace context the parent of `span`. Call before the span is first entered
/// (an entered span has started and keeps the parent it had). Nothing happens without a valid
/// `traceparent` or without the OTLP layer.
pub fn parent_on(span: &tracing::Span, traceparent: Option<&str>) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    let Some(remote) = traceparent.and_then(parse_traceparent) else {
        return;
    };
    let cx = opentelemetry::Context::new().with_remote_span_context(remote);
    // Errors mean no OTLP layer (export off) or a span filtered out: nothing to parent then.
    let _ = span.set_parent(cx);
}

/// The `traceparent` to pass on from inside `span`: the span's own context when spans are exported
/// (so the next stage's span is its child), otherwise `None` (the caller keeps what it had).
pub fn outgoing(span: &tracing::Span) -> Option<String> {
    if !EXPORTING.load(Ordering::Relaxed) {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| format_traceparent(&sc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_malformed_or_zero_ones_are_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = parse_traceparent(tp).expect("valid");
        assert!(cx.is_remote() && cx.is_sampled());
        assert_eq!(format_traceparent(&cx), tp);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn without_the_otlp_layer_nothing_is_passed_on() {
        // Past the gate (as after a subscriber with export was built somewhere in the process),
        // a span of a subscriber without the layer still passes nothing on.
        exporting();
        let span = tracing::info_span!("t");
        parent_on(
            &span,
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(outgoing(&span), None);
    }
}
