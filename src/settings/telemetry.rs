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

#[cfg(test)]
mod tests {
    use crate::settings::Settings;

    fn load(env: &[(&str, &str)]) -> Result<Settings, crate::settings::SettingsError> {
        Settings::load_from(
            Some(std::path::Path::new("/nonexistent/ifox.toml")),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn export_is_off_by_default_and_the_keys_come_from_the_environment() {
        let s = load(&[]).unwrap();
        assert_eq!(s.telemetry.otlp_endpoint, "");
        assert_eq!(s.telemetry.max_team_labels, 50);
        let s = load(&[
            (
                "IFOX__TELEMETRY__OTLP_ENDPOINT",
                "http://collector:4318/v1/traces",
            ),
            ("IFOX__TELEMETRY__SERVICE_NAME", "ifox-router"),
            ("IFOX__TELEMETRY__TEAM_LABELS", "acme/sre, acme/db"),
            ("IFOX__TELEMETRY__MAX_TEAM_LABELS", "0"),
        ])
        .unwrap();
        assert_eq!(s.telemetry.otlp_endpoint, "http://collector:4318/v1/traces");
        assert_eq!(s.telemetry.service_name, "ifox-router");
        assert_eq!(s.telemetry.team_labels, ["acme/sre", "acme/db"]);
        assert_eq!(s.telemetry.max_team_labels, 0);
    }

    #[test]
    fn a_bad_endpoint_or_team_label_is_refused_naming_the_key() {
        for (key, value, named) in [
            (
                "IFOX__TELEMETRY__OTLP_ENDPOINT",
                "collector:4318",
                "telemetry.otlp_endpoint",
            ),
            (
                "IFOX__TELEMETRY__TEAM_LABELS",
                "acme",
                "telemetry.team_labels",
            ),
            (
                "IFOX__TELEMETRY__TEAM_LABELS",
                "acme/sre/x",
                "telemetry.team_labels",
            ),
            (
                "IFOX__TELEMETRY__MAX_TEAM_LABELS",
                "20000",
                "telemetry.max_team_labels",
            ),
        ] {
            let e = load(&[(key, value)]).unwrap_err().to_string();
            assert!(e.contains(named), "{value}: {e}");
        }
    }
}
