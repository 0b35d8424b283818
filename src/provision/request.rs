//! The provisioning API's body, parsed and validated before anything is written.
//!
//! Every refusal names the field (`dedicated_config.resources.cpu`, …) so the caller knows what to fix.
//! The validated [`DedicatedSpec`] is what the database stores as the desired runtime and what
//! [`super::build`] turns into objects; it holds quantities in their canonical Kubernetes form, with
//! requests filled in (half the limits unless given).

use super::policy::Policy;
use crate::domain::{NodeId, OrgId};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub use super::units::{Cpu, Memory, check_label_key, check_label_value, cpu, memory};
pub use crate::domain::runtime::{Autoscaling, DedicatedSpec, Mode, Pipeline, Quota, Toleration};

#[path = "request_dedicated.rs"]
mod dedicated;
use dedicated::{dedicated, pipeline};

/// A refused field: `field` is a dotted path into the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub field: String,
    pub message: String,
}

pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.into(),
        message: message.into(),
    }
}

/// The body as sent. Unknown fields are refused (a typo must not silently do nothing).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    org_id: String,
    team_node_id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    routing: Option<Value>,
    #[serde(default)]
    deployment_mode: Option<String>,
    #[serde(default)]
    dedicated_config: Option<Value>,
    #[serde(default)]
    pipeline: Option<Value>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// A validated provisioning request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionRequest {
    pub org: OrgId,
    pub team: NodeId,
    pub parent: Option<NodeId>,
    pub name: Option<String>,
    /// The `routing` object for the team's config (its claims), when given.
    pub routing: Option<Value>,
    pub mode: Mode,
    /// Present exactly when `mode` is dedicated.
    pub spec: Option<DedicatedSpec>,
    pub pipeline: Option<Pipeline>,
    pub idempotency_key: Option<String>,
}

/// Parses and validates a body under the default settings' [`Policy`].
pub fn parse(body: Value) -> Result<ProvisionRequest, RequestError> {
    parse_with(body, &Policy::default())
}

/// Parses and validates a body: its shape, then what the platform's `policy` allows.
pub fn parse_with(body: Value, policy: &Policy) -> Result<ProvisionRequest, RequestError> {
    let raw: RawRequest = serde_json::from_value(body).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"))
            .unwrap_or("body")
            .to_owned();
        bad(field, msg)
    })?;
    let org = OrgId::parse(raw.org_id).map_err(|e| bad("org_id", e.to_string()))?;
    let team = NodeId::parse(raw.team_node_id).map_err(|e| bad("team_node_id", e.to_string()))?;
    let parent = raw
        .parent_id
        .map(NodeId::parse)
        .transpose()
        .map_err(|e| bad("parent_id", e.to_string()))?;
    if let Some(name) = &raw.name
        && (name.trim().is_empty() || name.len() > 200)
    {
        return Err(bad("name", "must be 1 to 200 characters"));
    }
    if let Some(routing) = &raw.routing {
        let as_config = serde_json::json!({ "routing": routing });
        crate::domain::routing::claims_of(&as_config).map_err(|e| bad("routing", e.to_string()))?;
    }
    let mode = match raw.deployment_mode.as_deref() {
        None | Some("shared") => Mode::Shared,
        Some("dedicated") => Mode::Dedicated,
        Some(other) => {
            return Err(bad(
                "deployment_mode",
                format!("{other:?} is neither \"shared\" nor \"dedicated\""),
            ));
        }
    };
    let spec = match (mode, raw.dedicated_config) {
        (Mode::Dedicated, Some(cfg)) => Some(dedicated(&cfg, policy)?),
        // The design's migration body names only the mode: every field takes the platform's default.
        (Mode::Dedicated, None) => Some(default_spec(policy)?),
        (Mode::Shared, Some(_)) => {
            return Err(bad(
                "dedicated_config",
                "only allowed when deployment_mode is dedicated",
            ));
        }
        (Mode::Shared, None) => None,
    };
    // A shared team's pipeline runs with the platform's default resources (see
    // [`default_spec`]); a dedicated team's with its own.
    let pipeline = raw.pipeline.map(|p| pipeline(&p)).transpose()?;
    super::policy::check(policy, spec.as_ref(), pipeline.as_ref())?;
    if let Some(key) = &raw.idempotency_key {
        check_idempotency_key("idempotency_key", key)?;
    }
    Ok(ProvisionRequest {
        org,
        team,
        parent,
        name: raw.name,
        routing: raw.routing,
        mode,
        spec,
        pipeline,
        idempotency_key: raw.idempotency_key,
    })
}

/// The runtime a dedicated request gets when its `dedicated_config` says nothing: the policy's
/// defaults (refused when a default setting is not a valid quantity). A shared team's pipeline pods
/// run with it too.
pub fn default_spec(policy: &Policy) -> Result<DedicatedSpec, RequestError> {
    dedicated(&Value::Object(Default::default()), policy)
}

/// Keys are opaque to us but bounded: 1 to 200 visible ASCII characters.
pub fn check_idempotency_key(field: &str, key: &str) -> Result<(), RequestError> {
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(field, "must be 1 to 200 visible ASCII characters"));
    }
    Ok(())
}

fn object<'a>(
    v: &'a Value,
    field: &str,
) -> Result<&'a serde_json::Map<String, Value>, RequestError> {
    v.as_object()
        .ok_or_else(|| bad(field, "must be a JSON object"))
}

fn only_keys(
    map: &serde_json::Map<String, Value>,
    field: &str,
    allowed: &[&str],
) -> Result<(), RequestError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(
            format!("{field}.{k}"),
            format!("unknown field; expected one of {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn string<'a>(
    map: &'a serde_json::Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<&'a str>, RequestError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{field}.{key}"), "must be a string")),
    }
}

fn int(
    map: &serde_json::Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<i64>, RequestError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("{field}.{key}"), "must be an integer")),
    }
}
