//! The tracing subscriber: the log layer (text or JSON) and, when `telemetry.otlp_endpoint` is set,
//! the OpenTelemetry layer whose spans a batch exporter sends as OTLP/HTTP protobuf (its own thread
//! and a blocking reqwest client, so export never runs on the async workers).

use super::TelemetryError;
use crate::settings::{LogFormat, LogSettings, TelemetrySettings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use std::time::Duration;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

/// How long one export request may take before the batch is dropped (the collector is down).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The span provider of the OTLP export; `shutdown` flushes what is still queued.
pub fn provider(t: &TelemetrySettings) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    let endpoint = t.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = Resource::builder()
        .with_service_name(t.service_name.clone())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// The subscriber of the given settings: logs to stderr, spans to `provider` when there is one.
pub fn subscriber(log: &LogSettings, provider: Option<&SdkTracerProvider>) -> Dispatch {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    let text_layer = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    if provider.is_some() {
        super::trace::exporting();
    }
    let otel_layer = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("ifox")));
    Dispatch::new(
        Registry::default()
            .with(filter)
            .with(json_layer)
            .with(text_layer)
            .with(otel_layer),
    )
}
