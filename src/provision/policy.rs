//! What an org admin may ask of its team's pods, decided by the platform's settings (pure): the
//! images (by prefix), the node selector keys and toleration keys it may use, and the defaults for
//! what a `dedicated_config` leaves out. A `resource_quota` is allowed only with a namespace per
//! team (`provision.namespace_per_team`): a quota limits a whole namespace, and without that option
//! every team shares one with the other tenants and ifox itself. A request outside the policy is
//! refused with 400 `invalid_field` naming the field, before anything is written.

use super::request::{DedicatedSpec, Pipeline, RequestError, bad};
use crate::settings::provision::ProvisionSettings;

/// The provisioning policy in force, from [`ProvisionSettings`].
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub image_prefixes: Vec<String>,
    pub node_selector_keys: Vec<String>,
    pub toleration_keys: Vec<String>,
    pub default_replicas: i32,
    pub default_cpu: String,
    pub default_memory: String,
    /// Each team has a namespace of its own, so its quota limits only itself.
    pub namespace_per_team: bool,
}

impl Policy {
    pub fn from_settings(s: &ProvisionSettings) -> Policy {
        Policy {
            image_prefixes: s.image_prefixes(),
            node_selector_keys: s.allowed_node_selector_keys.clone(),
            toleration_keys: s.allowed_toleration_keys.clone(),
            default_replicas: s.default_replicas,
            default_cpu: s.default_cpu.clone(),
            default_memory: s.default_memory.clone(),
            namespace_per_team: s.namespace_per_team,
        }
    }

    fn image_allowed(&self, image: &str) -> bool {
        self.image_prefixes.iter().any(|p| image.starts_with(p))
    }
}

impl Default for Policy {
    /// The policy of the default settings.
    fn default() -> Self {
        Policy::from_settings(&ProvisionSettings::default())
    }
}

/// Refuses the first field of `spec` or `pipeline` the policy does not allow.
pub fn check(
    policy: &Policy,
    spec: Option<&DedicatedSpec>,
    pipeline: Option<&Pipeline>,
) -> Result<(), RequestError> {
    let f = "dedicated_config";
    if let Some(spec) = spec {
        if let Some(image) = &spec.image
            && !policy.image_allowed(image)
        {
            return Err(not_allowed(
                format!("{f}.image"),
                image,
                &policy.image_prefixes,
            ));
        }
        for key in spec.node_selector.keys() {
            if !policy.node_selector_keys.contains(key) {
                return Err(not_allowed(
                    format!("{f}.node_selector.{key}"),
                    key,
                    &policy.node_selector_keys,
                ));
            }
        }
        for (i, t) in spec.tolerations.iter().enumerate() {
            let field = format!("{f}.tolerations[{i}].key");
            // No key with `Exists` tolerates every taint, including those keeping nodes for others.
            let Some(key) = &t.key else {
                return Err(bad(field, "required: a toleration must name its taint key"));
            };
            if !policy.toleration_keys.contains(key) {
                return Err(not_allowed(field, key, &policy.toleration_keys));
            }
        }
        if spec.resource_quota.is_some() && !policy.namespace_per_team {
            return Err(bad(
                format!("{f}.resource_quota"),
                "not allowed: a quota limits its whole namespace, which this team shares with every \
                 other tenant and ifox itself (the platform allows quotas with \
                 provision.namespace_per_team)",
            ));
        }
    }
    if let Some(image) = pipeline.and_then(|p| p.image.as_ref())
        && !policy.image_allowed(image)
    {
        return Err(not_allowed("pipeline.image", image, &policy.image_prefixes));
    }
    Ok(())
}

fn not_allowed(field: impl Into<String>, value: &str, allowed: &[String]) -> RequestError {
    let allowed = if allowed.is_empty() {
        "none is allowed".to_owned()
    } else {
        format!("allowed: {}", allowed.join(", "))
    };
    bad(
        field,
        format!("{value:?} is not allowed by the platform ({allowed})"),
    )
}
