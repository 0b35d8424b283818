//! The `kube` and `provision` settings sections (`IFOX__KUBE__…`, `IFOX__PROVISION__…`), read by the
//! `provisioner` role and the provisioning API. Every key has a default, so a process that never
//! provisions needs none of them.

use super::bridge::list;
use super::humantime_serde_compat as duration;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A Kubernetes API server (kubeconfig, in-cluster service account, or `kube.url`).
    Kube,
    /// YAML files in `kube.manifests_dir`.
    Manifests,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeSettings {
    /// `IFOX__KUBE__BACKEND`: `kube` or `manifests`.
    pub backend: BackendKind,
    /// `IFOX__KUBE__MANIFESTS_DIR`: where the `manifests` backend writes.
    pub manifests_dir: PathBuf,
    /// `IFOX__KUBE__NAMESPACE`: the namespace of every team object.
    pub namespace: String,
    /// `IFOX__KUBE__URL`: an API server URL; unset means kubeconfig or in-cluster.
    pub url: Option<String>,
    /// `IFOX__KUBE__TIMEOUT`: bound on one API request.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            backend: BackendKind::Manifests,
            manifests_dir: PathBuf::from("manifests"),
            namespace: "incidentfox".to_owned(),
            url: None,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionSettings {
    /// `IFOX__PROVISION__GRACE`: how long a team's objects outlive its move back to shared.
    #[serde(with = "duration")]
    pub grace: Duration,
    /// The agent image when a request names none.
    pub image: String,
    /// How often the resync compares the cluster with the database.
    #[serde(with = "duration")]
    pub resync_interval: Duration,
    /// How often due deletions and removed URLs are looked for (bounds the lateness of a deletion).
    #[serde(with = "duration")]
    pub tick: Duration,
    /// How long a Deployment may take to become available before the run fails.
    #[serde(with = "duration")]
    pub availability_timeout: Duration,
    /// Prices for `ifox cost`.
    pub vcpu_hour_usd: f64,
    pub gib_hour_usd: f64,
    pub hours_per_month: f64,
    /// What the shared runtime costs a month in total, split by each team's share of runs.
    pub shared_monthly_usd: f64,
    /// `IFOX__PROVISION__ALLOWED_IMAGE_PREFIXES` (comma-separated): the only images a request may
    /// name start with one of these. Empty: the repository of `image` (everything up to its last
    /// '/', e.g. `ghcr.io/incidentfox/`).
    #[serde(deserialize_with = "list")]
    pub allowed_image_prefixes: Vec<String>,
    /// `IFOX__PROVISION__ALLOWED_NODE_SELECTOR_KEYS`: the node selector keys a request may set.
    /// Default `node-type` (the design's example); set to an empty string to allow none.
    #[serde(deserialize_with = "list")]
    pub allowed_node_selector_keys: Vec<String>,
    /// `IFOX__PROVISION__ALLOWED_TOLERATION_KEYS`: the taint keys a request may tolerate (a
    /// toleration without a key, which tolerates every taint, is never allowed). Default
    /// `node-type`; an empty string allows none.
    #[serde(deserialize_with = "list")]
    pub allowed_toleration_keys: Vec<String>,
    /// The dedicated runtime a request gets for what its `dedicated_config` leaves out (the
    /// design's example: 2 replicas of 4 vCPU / 8Gi; requests are half the limits).
    /// `IFOX__PROVISION__DEFAULT_REPLICAS`, `…__DEFAULT_CPU`, `…__DEFAULT_MEMORY`.
    pub default_replicas: i32,
    pub default_cpu: String,
    pub default_memory: String,
    /// `IFOX__PROVISION__NAMESPACE_PER_TEAM`: every provisioned team gets a namespace of its own,
    /// `{kube.namespace}-{org}-{team}` (collision-free like object names), created before its
    /// objects, labelled for the team, enforcing the `restricted` Pod Security profile, with a
    /// RoleBinding of the ClusterRole `ifox-team-objects` to the provisioner's service account, and
    /// deleted with the team after the grace. Only then is `resource_quota` accepted (it limits the
    /// team's namespace alone). Off by default: every team object lives in `kube.namespace`. Needs
    /// the ClusterRole of `deploy/components/namespace-per-team`.
    pub namespace_per_team: bool,
    /// `IFOX__PROVISION__SERVICE_ACCOUNT`: the provisioner's own service account (in
    /// `kube.namespace`), named by each team namespace's RoleBinding.
    pub service_account: String,
}

impl ProvisionSettings {
    /// The image prefixes in force: the setting, else the repository of the default image.
    pub fn image_prefixes(&self) -> Vec<String> {
        if !self.allowed_image_prefixes.is_empty() {
            return self.allowed_image_prefixes.clone();
        }
        match self.image.rfind('/') {
            Some(i) => vec![self.image[..=i].to_owned()],
            // An image without a repository ("agent:1"): only exactly that name.
            None => vec![self.image.split(':').next().unwrap_or_default().to_owned()],
        }
    }
}

impl Default for ProvisionSettings {
    fn default() -> Self {
        ProvisionSettings {
            grace: Duration::from_secs(24 * 3600),
            image: "ghcr.io/incidentfox/agent:latest".to_owned(),
            resync_interval: Duration::from_secs(300),
            tick: Duration::from_secs(1),
            availability_timeout: Duration::from_secs(600),
            vcpu_hour_usd: 0.031,
            gib_hour_usd: 0.0035,
            hours_per_month: 730.0,
            shared_monthly_usd: 220.0,
            allowed_image_prefixes: vec![],
            allowed_node_selector_keys: vec!["node-type".to_owned()],
            allowed_toleration_keys: vec!["node-type".to_owned()],
            default_replicas: 2,
            default_cpu: "4".to_owned(),
            default_memory: "8Gi".to_owned(),
            namespace_per_team: false,
            service_account: "ifox-provisioner".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::Settings;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, crate::settings::SettingsError> {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_from(Some(std::path::Path::new("/nonexistent/ifox.toml")), env)
    }

    #[test]
    fn the_kube_and_provision_keys_come_from_the_environment_with_defaults() {
        let s = load(&[]).unwrap();
        assert_eq!(s.kube.backend, super::BackendKind::Manifests);
        assert_eq!(s.kube.namespace, "incidentfox");
        assert_eq!(s.provision.grace, std::time::Duration::from_secs(86_400));
        assert!(!s.provision.namespace_per_team);
        assert_eq!(s.provision.service_account, "ifox-provisioner");
        let s = load(&[
            ("IFOX__PROVISION__NAMESPACE_PER_TEAM", "true"),
            ("IFOX__PROVISION__SERVICE_ACCOUNT", "ifox"),
        ])
        .unwrap();
        assert!(s.provision.namespace_per_team);
        assert_eq!(s.provision.service_account, "ifox");
        let s = load(&[
            ("IFOX__KUBE__BACKEND", "kube"),
            ("IFOX__KUBE__MANIFESTS_DIR", "/tmp/m"),
            ("IFOX__KUBE__NAMESPACE", "agents"),
            ("IFOX__PROVISION__GRACE", "2s"),
        ])
        .unwrap();
        assert_eq!(s.kube.backend, super::BackendKind::Kube);
        assert_eq!(s.kube.manifests_dir, std::path::PathBuf::from("/tmp/m"));
        assert_eq!(s.kube.namespace, "agents");
        assert_eq!(s.provision.grace, std::time::Duration::from_secs(2));
    }

    #[test]
    fn the_pod_spec_allow_lists_default_to_the_images_repository_and_node_type() {
        let s = load(&[]).unwrap();
        assert_eq!(s.provision.image_prefixes(), ["ghcr.io/incidentfox/"]);
        assert_eq!(s.provision.allowed_node_selector_keys, ["node-type"]);
        assert_eq!(s.provision.allowed_toleration_keys, ["node-type"]);
        let s = load(&[
            (
                "IFOX__PROVISION__ALLOWED_IMAGE_PREFIXES",
                "registry.example/agents/, ghcr.io/x/",
            ),
            ("IFOX__PROVISION__ALLOWED_NODE_SELECTOR_KEYS", ""),
            ("IFOX__PROVISION__ALLOWED_TOLERATION_KEYS", "gpu,dedicated"),
        ])
        .unwrap();
        assert_eq!(
            s.provision.image_prefixes(),
            ["registry.example/agents/", "ghcr.io/x/"]
        );
        assert!(s.provision.allowed_node_selector_keys.is_empty());
        assert_eq!(s.provision.allowed_toleration_keys, ["gpu", "dedicated"]);
    }

    #[test]
    fn a_bad_backend_or_grace_is_refused_naming_the_key() {
        let err = load(&[("IFOX__KUBE__BACKEND", "helm")]).unwrap_err();
        assert!(err.to_string().contains("backend"), "{err}");
        let err = load(&[("IFOX__PROVISION__GRACE", "soon")]).unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
    }
}
