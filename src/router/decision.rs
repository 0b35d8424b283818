//! Shared or dedicated, from a team's effective config: a non-empty `agent_service_url` means the
//! team's own pods (subject `ifox.agent.dedicated.<org>.<team>`), otherwise the shared pool
//! (`ifox.agent.shared.<org>.<team>`). A malformed value is an invalid config — never a silent fallback.

use crate::domain::{NodeId, OrgId};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "deployment_mode", rename_all = "snake_case")]
pub enum Deployment {
    Shared,
    Dedicated { agent_service_url: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("agent_service_url must be an http(s) URL string, got {0}")]
    BadServiceUrl(String),
}

pub fn decide(effective: &Value) -> Result<Deployment, DecisionError> {
    match effective.get("agent_service_url") {
        None | Some(Value::Null) => Ok(Deployment::Shared),
        Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(Deployment::Dedicated {
                agent_service_url: url.clone(),
            })
        }
        Some(other) => Err(DecisionError::BadServiceUrl(other.to_string())),
    }
}

impl Deployment {
    pub fn mode(&self) -> &'static str {
        match self {
            Deployment::Shared => "shared",
            Deployment::Dedicated { .. } => "dedicated",
        }
    }

    /// The AGENT_RUNS subject of a run for this team.
    pub fn subject(&self, org: &OrgId, team: &NodeId) -> String {
        // Appended, not formatted: this runs for every routed event.
        let (mode, org, team) = (self.mode(), org.as_str(), team.as_str());
        let mut subject = String::with_capacity(13 + mode.len() + org.len() + team.len());
        for part in ["ifox.agent.", mode, ".", org, ".", team] {
            subject.push_str(part);
        }
        subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_url_makes_the_team_dedicated_and_its_absence_shared() {
        let (org, team) = (
            OrgId::parse("acme").unwrap(),
            NodeId::parse("payments").unwrap(),
        );
        let d = decide(&json!({"agent_service_url": "http://agent-dedicated-acme-payments.incidentfox.svc.cluster.local:8080"})).unwrap();
        assert_eq!(d.subject(&org, &team), "ifox.agent.dedicated.acme.payments");
        assert_eq!(
            decide(&json!({"llm": {}})).unwrap().subject(&org, &team),
            "ifox.agent.shared.acme.payments"
        );
    }

    #[test]
    fn a_malformed_service_url_is_an_error_not_a_fallback_to_shared() {
        assert!(decide(&json!({"agent_service_url": 42})).is_err());
        assert!(decide(&json!({"agent_service_url": "agent:8080"})).is_err());
    }
}
