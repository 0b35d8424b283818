//! Logs and spans (tracing: text on a terminal, JSON when asked or when not a terminal; spans over
//! OTLP when `telemetry.otlp_endpoint` is set, see [`otlp`]), the Prometheus recorder with
//! `ifox_build_info`, and the bound on per-team labels ([`teams`]). All are process-global and
//! installed once; tests that build several apps share them.

pub mod otlp;
pub mod teams;
pub mod trace;

use crate::settings::{LogSettings, TelemetrySettings};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;

pub use teams::{OTHER as OTHER_TEAM, team_labelled, team_labels};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// Flushes and stops the OTLP export when dropped (at exit); holds nothing when export is off.
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard(Option<SdkTracerProvider>);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("OTLP export: spans still queued at exit may be lost: {e}");
        }
    }
}

/// Installs the process's subscriber (logs; spans over OTLP when configured) and the per-team
/// label bound. Keep the guard until exit.
pub fn init(
    log: &LogSettings,
    telemetry: &TelemetrySettings,
) -> Result<TelemetryGuard, TelemetryError> {
    teams::install(telemetry);
    let provider = otlp::provider(telemetry)?;
    let _ = tracing::dispatcher::set_global_default(otlp::subscriber(log, provider.as_ref()));
    Ok(TelemetryGuard(provider))
}

/// `ifox_build_info`'s labels: the crate version and, when the build set `IFOX_GIT_SHA`, the commit.
pub const GIT_SHA: &str = match option_env!("IFOX_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// Seconds: 250 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes `/metrics`.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample until a render or an upkeep folds them into buckets;
/// without this, a process nobody scrapes (a local `just run`) would grow by 8 bytes a request.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded only when scraped");
    }
}

/// The process's Prometheus handle (installs the recorder on first use).
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // `*_seconds` latencies as Prometheus histograms (summaries cannot be aggregated across
            // replicas). The buckets are constant and non-empty, so this cannot fail.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test harness) may already be global; then ours only renders its own.
            let _ = metrics::set_global_recorder(recorder);
            spawn_upkeep(handle.clone());
            metrics::gauge!("ifox_build_info", "version" => env!("CARGO_PKG_VERSION"), "git_sha" => GIT_SHA)
                .set(1.0);
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    /// Upkeep folds pending histogram samples into buckets: nothing recorded is lost by it, and a
    /// scrape afterwards still counts every sample.
    #[test]
    fn upkeep_folds_histogram_samples_without_losing_them() {
        let handle = super::metrics();
        let h = metrics::histogram!("ifox_test_upkeep_seconds");
        for v in [0.001, 0.02, 0.3] {
            h.record(v);
        }
        handle.run_upkeep();
        h.record(4.0);
        let text = handle.render();
        assert!(
            text.contains("ifox_test_upkeep_seconds_count 4"),
            "all four samples are counted after an upkeep:\n{text}"
        );
        assert!(text.contains("ifox_test_upkeep_seconds_bucket{le=\"+Inf\"} 4"));
    }
}
