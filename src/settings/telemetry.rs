//! `telemetry.*`: OTLP export of the spans (off unless an endpoint is set) and the bound on per-team
//! metric labels.

use serde::Deserialize;

/// `IFOX__TELEMETRY__…`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`; empty = no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Teams (`org/team`) that always get their own labels in per-team metrics.
    #[serde(deserialize_with = "super::bridge::list")]
    pub team_labels: Vec<String>,
    /// How many further teams get their own labels, first seen first served; the rest share
    /// `org="other", team="other"`. Bounds the series a Prometheus server holds per metric.
    pub max_team_labels: usize,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: String::new(),
            service_name: "ifox".into(),
            team_labels: Vec::new(),
            max_team_labels: 50,
        }
    }
}

impl TelemetrySettings {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        let endpoint = self.otlp_endpoint.trim();
        if !endpoint.is_empty() {
            match url::Url::parse(endpoint) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err((
                        "telemetry.otlp_endpoint",
                        format!("{endpoint:?} is not an http(s) URL"),
                    ));
                }
            }
        }
        if self.service_name.trim().is_empty() {
            return Err(("telemetry.service_name", "must not be empty".into()));
        }
        if let Some(bad) = self.team_labels.iter().find(|t| {
            let mut parts = t.split('/');
            !matches!((parts.next(), parts.next(), parts.next()), (Some(o), Some(t), None) if !o.is_empty() && !t.is_empty())
        }) {
            return Err((
                "telemetry.team_labels",
                format!("{bad:?} is not org/team"),
            ));
        }
        if self.max_team_labels > 10_000 {
            return Err(("telemetry.max_team_labels", "must be at most 10000".into()));
        }
        Ok(())
    }
}
