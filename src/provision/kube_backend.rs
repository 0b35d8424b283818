//! The `kube` backend: a real Kubernetes API server through kube-rs, with objects as
//! [`DynamicObject`]s so one code path serves every [`Kind`]. Applies are server-side apply with
//! field manager `ifox`, forced (ifox is the one owner of what it builds).
//!
//! The client comes from `kube.url` when set (tests point it at a fake API server), else from the
//! kubeconfig or the in-cluster service account (`kube::Config::infer`).

use super::backend::{Backend, BackendError};
use super::build::MANAGED_BY;
use super::objects::{Desired, Kind};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "ifox";

#[derive(Clone)]
pub struct KubeBackend {
    client: kube::Client,
}

impl KubeBackend {
    /// A client for `url` (plain or TLS), or inferred from the environment when `url` is `None`;
    /// `namespace` is the client's default (every object names its own).
    pub async fn connect(
        url: Option<&str>,
        namespace: &str,
        timeout: Duration,
    ) -> Result<KubeBackend, BackendError> {
        let mut config = match url {
            Some(url) => {
                let uri = url
                    .parse()
                    .map_err(|e| BackendError::Config(format!("kube.url {url:?}: {e}")))?;
                kube::Config::new(uri)
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| BackendError::Config(e.to_string()))?,
        };
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        config.default_namespace = namespace.to_owned();
        // Retries are ours (reconcile's backoff, then the worker's delayed redelivery); kube-rs's own
        // retry layer would multiply them and hide how long a pass really waits.
        config.default_retry = false;
        let client =
            kube::Client::try_from(config).map_err(|e| BackendError::Config(e.to_string()))?;
        Ok(KubeBackend { client })
    }

    fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        let resource: ApiResource = kind.api_resource();
        if kind.namespaced() {
            Api::namespaced_with(self.client.clone(), namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        }
    }
}

/// Sorts kube-rs errors into retry-or-not.
fn classify(kind: Kind, name: &str, e: kube::Error) -> BackendError {
    match e {
        kube::Error::Api(status) => {
            let code = status.code;
            // Only a refusal of the object itself is final. Everything else (5xx, 409, 429, but also
            // 401/403/404: a rotated credential, a missing RBAC rule or namespace) is retried until an
            // operator fixes it, rather than failing every run meanwhile.
            if !matches!(code, 400 | 413 | 415 | 422) {
                BackendError::Transient(format!(
                    "{} {name}: {code} {}",
                    kind.name(),
                    status.message
                ))
            } else {
                BackendError::Rejected {
                    kind: kind.name(),
                    name: name.to_owned(),
                    status: code,
                    message: status.message,
                }
            }
        }
        // Connection refused, timeouts, TLS hiccups: the server may answer next time.
        other => BackendError::Transient(format!("{} {name}: {other}", kind.name())),
    }
}

fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

impl Backend for KubeBackend {
    async fn get(&self, kind: Kind, ns: &str, name: &str) -> Result<Option<Value>, BackendError> {
        let api = self.api(kind, ns);
        let got = api
            .get_opt(name)
            .await
            .map_err(|e| classify(kind, name, e))?;
        Ok(got.as_ref().map(to_value))
    }

    async fn apply(&self, obj: &Desired) -> Result<Value, BackendError> {
        let api = self.api(obj.kind, &obj.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api
            .patch(&obj.name, &params, &Patch::Apply(&obj.body))
            .await
            .map_err(|e| classify(obj.kind, &obj.name, e))?;
        Ok(to_value(&applied))
    }

    async fn list_managed(&self, kind: Kind, ns: &str) -> Result<Vec<Value>, BackendError> {
        let api = self.api(kind, ns);
        let params = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
        let list = api
            .list(&params)
            .await
            .map_err(|e| classify(kind, "(list)", e))?;
        Ok(list.items.iter().map(to_value).collect())
    }

    async fn delete(&self, kind: Kind, ns: &str, name: &str) -> Result<bool, BackendError> {
        let api = self.api(kind, ns);
        // Background propagation: the Deployment's ReplicaSets and Pods go with it (and a
        // Namespace's objects with it).
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(classify(kind, name, e)),
        }
    }

    fn observes_status(&self) -> bool {
        true
    }
}
