//! The desired runtime of a team as stored in `provision_deployments.spec` (see
//! `store::deployments`) and read by `provision::build`: already validated by `provision::request`,
//! quantities canonical, requests filled in. Plain data, so the store can hold it without knowing
//! the provisioner.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Shared,
    Dedicated,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Dedicated => "dedicated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicatedSpec {
    pub replicas: i32,
    pub cpu_limit: String,
    pub memory_limit: String,
    pub cpu_request: String,
    pub memory_request: String,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub autoscaling: Option<Autoscaling>,
    #[serde(default)]
    pub network_policy: bool,
    #[serde(default)]
    pub resource_quota: Option<Quota>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub effect: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub min: i32,
    pub max: i32,
    #[serde(default = "default_cpu_percent")]
    pub cpu_percent: i32,
}

impl Autoscaling {
    /// The HPA a dedicated team gets unless its request turns it off (the design's
    /// troubleshooting: min 2, max 10, 70 % CPU).
    pub const DEFAULT: Autoscaling = Autoscaling {
        min: 2,
        max: 10,
        cpu_percent: 70,
    };
}

fn default_cpu_percent() -> i32 {
    70
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub cpu: String,
    pub memory: String,
    #[serde(default)]
    pub pods: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub schedule: String,
    #[serde(default)]
    pub image: Option<String>,
}
