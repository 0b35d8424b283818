//! The ingest's Prometheus metrics, per source: received, accepted, duplicate, handshake (answered,
//! not stored), rejected by reason, and the publish-to-PubAck latency histogram.
//!
//! Handles are registered once per source and cached, so the hot path is an atomic add rather than
//! a registry lookup. Only configured sources ever become labels: a request naming an unknown source
//! is counted under `generic`, so callers cannot grow the label set.

use metrics::{Counter, Histogram, SharedString};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub const RECEIVED: &str = "ifox_ingest_received_total";
pub const ACCEPTED: &str = "ifox_ingest_accepted_total";
pub const DUPLICATE: &str = "ifox_ingest_duplicate_total";
pub const REJECTED: &str = "ifox_ingest_rejected_total";
pub const HANDSHAKE: &str = "ifox_ingest_handshake_total";
pub const PUBLISH_SECONDS: &str = "ifox_ingest_publish_seconds";

/// One source's handles.
pub struct SourceMetrics {
    label: SharedString,
    pub received: Counter,
    pub accepted: Counter,
    pub duplicate: Counter,
    pub handshake: Counter,
    pub publish_seconds: Histogram,
}

impl SourceMetrics {
    fn register(label: SharedString) -> SourceMetrics {
        let l = || [("source", label.clone())];
        SourceMetrics {
            received: metrics::counter!(RECEIVED, &l()),
            accepted: metrics::counter!(ACCEPTED, &l()),
            duplicate: metrics::counter!(DUPLICATE, &l()),
            handshake: metrics::counter!(HANDSHAKE, &l()),
            publish_seconds: metrics::histogram!(PUBLISH_SECONDS, &l()),
            label,
        }
    }

    pub fn rejected(&self, reason: &'static str) {
        metrics::counter!(REJECTED, "source" => self.label.clone(), "reason" => reason)
            .increment(1);
    }
}

/// The cache of per-source handles.
#[derive(Default)]
pub struct IngestMetrics {
    sources: RwLock<HashMap<String, Arc<SourceMetrics>>>,
}

impl IngestMetrics {
    pub fn new() -> IngestMetrics {
        // The recorder must exist before handles are taken, or they would count into nothing.
        crate::telemetry::metrics();
        describe();
        IngestMetrics::default()
    }

    /// The handles of a configured source (registered on first use).
    pub fn source(&self, name: &str) -> Arc<SourceMetrics> {
        if let Some(m) = self.sources.read().ok().and_then(|s| s.get(name).cloned()) {
            return m;
        }
        let m = Arc::new(SourceMetrics::register(SharedString::from(name.to_owned())));
        if let Ok(mut sources) = self.sources.write() {
            sources.insert(name.to_owned(), m.clone());
        }
        m
    }
}

fn describe() {
    metrics::describe_counter!(RECEIVED, "Webhook requests received, by source");
    metrics::describe_counter!(
        ACCEPTED,
        "Webhooks stored in EVENTS (PubAck received), by source"
    );
    metrics::describe_counter!(
        DUPLICATE,
        "Webhooks the stream already held (a provider retry), by source"
    );
    metrics::describe_counter!(
        REJECTED,
        "Webhooks refused and not stored, by source and reason"
    );
    metrics::describe_counter!(
        HANDSHAKE,
        "Handshakes answered and not stored (url_verification, ping)"
    );
    metrics::describe_histogram!(
        PUBLISH_SECONDS,
        metrics::Unit::Seconds,
        "Publish-to-PubAck latency of webhooks"
    );
}
