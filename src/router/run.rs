//! The agent-run document (schema `ifox.agent_run.v1`), published to AGENT_RUNS. It carries ids,
//! the decision and the config version — never a secret or a token.
//!
//! The run id derives from the event id (UUIDv5), so a redelivered or replayed event names the same
//! run and collapses on `Nats-Msg-Id` and on the database's uniqueness rule; a forced replay derives
//! from the replayed run id and the replay's own event id, so it makes a new run that records which
//! run it replays.

use super::decision::Deployment;
use crate::domain::routing::Identifier;
use crate::domain::{NodeId, OrgId};
use serde::Serialize;
use uuid::Uuid;

pub const SCHEMA: &str = "ifox.agent_run.v1";

/// Namespace of run ids (a fixed random UUID).
const RUN_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_0b5e_9a43_4f0e_8d2b_51a7_c3e9_0f12);

/// The run id of an event (stable across redeliveries and plain replays).
pub fn run_id(event_id: &str) -> Uuid {
    Uuid::new_v5(&RUN_NAMESPACE, event_id.as_bytes())
}

/// The run id of a forced replay.
pub fn forced_run_id(replayed_run: &Uuid, replay_event_id: &str) -> Uuid {
    Uuid::new_v5(replayed_run, replay_event_id.as_bytes())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRun {
    pub schema: &'static str,
    pub run_id: Uuid,
    pub event_id: String,
    pub org_id: OrgId,
    pub team_id: NodeId,
    pub source: String,
    pub event_type: String,
    pub matched: Identifier,
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The entrance agent named by the team's effective config (`entrance_agent`), default `planner`.
    pub entrance_agent: String,
    /// The effective config's chain version (see the tenancy catalog).
    pub config_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::IdentifierKind;
    use serde_json::json;

    #[test]
    fn the_same_event_always_names_the_same_run_and_a_forced_replay_a_new_one() {
        assert_eq!(run_id("slack:Ev1"), run_id("slack:Ev1"));
        assert_ne!(run_id("slack:Ev1"), run_id("slack:Ev2"));
        let first = run_id("slack:Ev1");
        assert_ne!(forced_run_id(&first, "replay-1"), first);
        assert_eq!(
            forced_run_id(&first, "replay-1"),
            forced_run_id(&first, "replay-1")
        );
    }

    #[test]
    fn the_document_has_the_documented_fields_and_no_secret() {
        let run = AgentRun {
            schema: SCHEMA,
            run_id: run_id("e1"),
            event_id: "e1".into(),
            org_id: OrgId::parse("acme").unwrap(),
            team_id: NodeId::parse("payments").unwrap(),
            source: "github".into(),
            event_type: "issues".into(),
            matched: Identifier::new(IdentifierKind::GithubRepos, "acme/pay"),
            deployment: Deployment::Dedicated {
                agent_service_url: "http://svc:8080".into(),
            },
            entrance_agent: "planner".into(),
            config_version: "3.1.2".into(),
            replay_of: None,
        };
        let v = serde_json::to_value(&run).unwrap();
        assert_eq!(v["deployment_mode"], "dedicated");
        assert_eq!(v["agent_service_url"], "http://svc:8080");
        assert_eq!(
            v["matched"],
            json!({"kind": "github_repos", "value": "acme/pay"})
        );
        assert_eq!(v["schema"], SCHEMA);
        assert!(v.get("replay_of").is_none());
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert!(
            keys.iter()
                .all(|k| !k.contains("token") && !k.contains("secret")),
            "{keys:?}"
        );
    }
}
