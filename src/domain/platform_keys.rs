//! The config keys the platform owns: where a team's runs go and how they are run. A team token (every
//! dedicated pod holds one) must not set, change or remove them — a team pointing its own
//! `agent_service_url` at a cloud metadata address, rewriting `routing` to take another team's events,
//! or removing the URL so the provisioner deletes its runtime. Org admins, the global admin and the
//! provisioner write them. Pure: the tenancy write path asks [`first_touched`] for team writes.

use serde_json::Value;

/// Every platform-owned top-level key, the one documented list (README, "Tenancy model").
pub const PLATFORM_OWNED_KEYS: [&str; 8] = [
    // Where runs are delivered (a dedicated runtime's in-cluster URL, set by the provisioner).
    "agent_service_url",
    // Routing claims: which events a team receives.
    "routing",
    // The dedicated runtime: mode, its provisioning config and any deployment setting.
    "deployment",
    "deployment_mode",
    "dedicated_config",
    // How the bridge delivers and bounds runs.
    "agent_protocol",
    "max_concurrent_agents",
    "agent_timeout_seconds",
];

/// The first platform-owned key a write touches: named by the written body (`written`, the patch or
/// the replacing body; `Value::Null` for a rollback) — even with an unchanged value or `null` — or whose
/// value differs between the raw config `old` and `new`.
pub fn first_touched(old: &Value, new: &Value, written: &Value) -> Option<&'static str> {
    PLATFORM_OWNED_KEYS
        .into_iter()
        .find(|key| written.get(key).is_some() || old.get(key) != new.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_named_changed_or_removed_platform_key_is_touched() {
        let old = json!({"agent_service_url": "http://a:8080", "llm": {"model": "m"}});
        let set = json!({"agent_service_url": "http://169.254.169.254/"});
        let mut new = old.clone();
        crate::domain::config::apply_merge_patch(&mut new, &set);
        assert_eq!(first_touched(&old, &new, &set), Some("agent_service_url"));
        let remove = json!({"agent_service_url": null});
        assert_eq!(
            first_touched(&old, &json!({"llm": {"model": "m"}}), &remove),
            Some("agent_service_url")
        );
        // named with its current value, or removed while absent: still touched
        assert_eq!(
            first_touched(&old, &old, &json!({"routing": null})),
            Some("routing")
        );
        // a rollback names nothing but changes the key
        assert_eq!(
            first_touched(&old, &json!({}), &Value::Null),
            Some("agent_service_url")
        );
    }

    #[test]
    fn the_teams_own_keys_are_not_touched() {
        let old = json!({"agent_service_url": "http://a:8080", "llm": {"model": "m"}});
        let patch = json!({"llm": {"model": "n"}, "security": {"x": 1}});
        let mut new = old.clone();
        crate::domain::config::apply_merge_patch(&mut new, &patch);
        assert_eq!(first_touched(&old, &new, &patch), None);
    }
}
