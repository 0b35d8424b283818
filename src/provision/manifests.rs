//! The `manifests` backend: one YAML file per object in `kube.manifests_dir`, GitOps style
//! (`<name>.<kind>.yaml`, e.g. `agent-dedicated-acme-web.deployment.yaml`), written atomically
//! (temporary file, then rename) and removed when the object is removed. A file whose content would
//! not change is not rewritten. Names are unique across tenants and namespaces (see
//! [`super::names`]), so the folder stays flat; a file answers for the namespace its object names.
//!
//! This backend cannot observe a cluster: a Deployment counts as available as soon as its file is
//! written ([`Backend::observes_status`] is false), so the team's `agent_service_url` is set right
//! after the files are. Whatever applies the folder to a cluster (Argo CD, Flux, `kubectl apply -f`)
//! owns the rollout from there.

use super::backend::{Backend, BackendError};
use super::build::MANAGED_BY;
use super::objects::{Desired, Kind, label};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct ManifestsBackend {
    dir: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> BackendError {
    // A full disk or a missing permission may be fixed by an operator: retry rather than fail runs.
    BackendError::Transient(format!("{what} {}: {e}", path.display()))
}

impl ManifestsBackend {
    pub fn new(dir: impl Into<PathBuf>) -> ManifestsBackend {
        ManifestsBackend { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn suffix(kind: Kind) -> String {
        format!(".{}.yaml", kind.name().to_ascii_lowercase())
    }

    fn path(&self, kind: Kind, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{}", Self::suffix(kind)))
    }

    /// The file of `kind`/`name` when its object is in `namespace` (any, for a cluster-scoped kind).
    async fn read_in(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, BackendError> {
        let obj = Self::read(&self.path(kind, name)).await?;
        Ok(obj.filter(|o| in_namespace(kind, o, namespace)))
    }

    async fn read(path: &Path) -> Result<Option<Value>, BackendError> {
        match tokio::fs::read_to_string(path).await {
            Ok(text) => serde_saphyr::from_str::<Value>(&text)
                .map(Some)
                .map_err(|e| BackendError::Transient(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", path, e)),
        }
    }
}

fn in_namespace(kind: Kind, obj: &Value, namespace: &str) -> bool {
    !kind.namespaced() || super::objects::namespace_of(obj).unwrap_or_default() == namespace
}

/// The YAML text of an object, as written to its file.
pub fn to_yaml(body: &Value) -> String {
    serde_saphyr::to_string(body).unwrap_or_default()
}

impl Backend for ManifestsBackend {
    async fn get(&self, kind: Kind, ns: &str, name: &str) -> Result<Option<Value>, BackendError> {
        self.read_in(kind, ns, name).await
    }

    async fn apply(&self, obj: &Desired) -> Result<Value, BackendError> {
        let path = self.path(obj.kind, &obj.name);
        let text = to_yaml(&obj.body);
        if tokio::fs::read_to_string(&path).await.ok().as_deref() == Some(text.as_str()) {
            return Ok(obj.body.clone());
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io("cannot create", &self.dir, e))?;
        let tmp = self.dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, text.as_bytes())
            .await
            .map_err(|e| io("cannot write", &tmp, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io("cannot rename to", &path, e))?;
        Ok(obj.body.clone())
    }

    async fn list_managed(&self, kind: Kind, ns: &str) -> Result<Vec<Value>, BackendError> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io("cannot list", &self.dir, e)),
        };
        let suffix = Self::suffix(kind);
        let mut out = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io("cannot list", &self.dir, e))?
        {
            let file = entry.file_name();
            if !file.to_string_lossy().ends_with(&suffix) {
                continue;
            }
            if let Some(obj) = Self::read(&entry.path()).await?
                && label(&obj, MANAGED_BY.0) == Some(MANAGED_BY.1)
                && in_namespace(kind, &obj, ns)
            {
                out.push(obj);
            }
        }
        Ok(out)
    }

    async fn delete(&self, kind: Kind, ns: &str, name: &str) -> Result<bool, BackendError> {
        if self.read_in(kind, ns, name).await?.is_none() {
            return Ok(false);
        }
        let path = self.path(kind, name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("cannot remove", &path, e)),
        }
    }

    fn observes_status(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(replicas: i64) -> Desired {
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "agent-dedicated-acme-web", "namespace": "ns", "labels": {"app.kubernetes.io/managed-by": "ifox"}},
            "spec": {"replicas": replicas}});
        Desired {
            kind: Kind::Deployment,
            namespace: "ns".into(),
            name: "agent-dedicated-acme-web".into(),
            body,
        }
    }

    #[tokio::test]
    async fn one_file_per_object_is_written_once_listed_and_removed_with_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let backend = ManifestsBackend::new(dir.path().join("out"));
        let path = dir
            .path()
            .join("out/agent-dedicated-acme-web.deployment.yaml");
        backend.apply(&object(2)).await.unwrap();
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        backend.apply(&object(2)).await.unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written,
            "rewritten unchanged"
        );
        let name = "agent-dedicated-acme-web";
        let live = backend.get(Kind::Deployment, "ns", name).await.unwrap();
        assert_eq!(live, Some(object(2).body));
        // The file answers for its own namespace only.
        assert_eq!(
            backend.get(Kind::Deployment, "other", name).await.unwrap(),
            None
        );
        let listed = backend.list_managed(Kind::Deployment, "ns").await.unwrap();
        assert_eq!(listed.len(), 1);
        let elsewhere = backend
            .list_managed(Kind::Deployment, "other")
            .await
            .unwrap();
        assert!(elsewhere.is_empty());
        assert!(
            backend
                .list_managed(Kind::Service, "ns")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !backend
                .delete(Kind::Deployment, "other", name)
                .await
                .unwrap()
        );
        assert!(path.exists());
        assert!(backend.delete(Kind::Deployment, "ns", name).await.unwrap());
        assert!(!path.exists());
        assert!(!backend.delete(Kind::Deployment, "ns", name).await.unwrap());
        assert!(!backend.observes_status());
    }
}
