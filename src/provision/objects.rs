//! The kinds the provisioner manages and a desired object as plain JSON: what [`super::build`]
//! produces and every backend consumes. Keeping one untyped shape at the IO seam lets one backend
//! method serve every kind; the typed k8s-openapi structs stay inside `build`.

use serde::Serialize;
use serde_json::Value;

/// The kinds the provisioner creates, in apply order (deletion goes the other way, the team's
/// Namespace last). The Role in `deploy/` grants the namespaced ones; `Namespace` and `RoleBinding`
/// exist only with `provision.namespace_per_team` (the ClusterRole of
/// `deploy/components/namespace-per-team`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    RoleBinding,
    ResourceQuota,
    Secret,
    Deployment,
    Service,
    HorizontalPodAutoscaler,
    NetworkPolicy,
    CronJob,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Namespace,
        Kind::RoleBinding,
        Kind::ResourceQuota,
        Kind::Secret,
        Kind::Deployment,
        Kind::Service,
        Kind::HorizontalPodAutoscaler,
        Kind::NetworkPolicy,
        Kind::CronJob,
    ];

    /// The API resource (group, version, kind, plural) as k8s-openapi's types define it, through
    /// kube's `ApiResource::erase`: no hand-kept table to drift from the API.
    pub fn api_resource(self) -> kube::core::ApiResource {
        use k8s_openapi::api::{apps, autoscaling, batch, core, networking, rbac};
        use kube::core::ApiResource as R;
        match self {
            Kind::Namespace => R::erase::<core::v1::Namespace>(&()),
            Kind::RoleBinding => R::erase::<rbac::v1::RoleBinding>(&()),
            Kind::Secret => R::erase::<core::v1::Secret>(&()),
            Kind::Deployment => R::erase::<apps::v1::Deployment>(&()),
            Kind::Service => R::erase::<core::v1::Service>(&()),
            Kind::HorizontalPodAutoscaler => {
                R::erase::<autoscaling::v2::HorizontalPodAutoscaler>(&())
            }
            Kind::NetworkPolicy => R::erase::<networking::v1::NetworkPolicy>(&()),
            Kind::ResourceQuota => R::erase::<core::v1::ResourceQuota>(&()),
            Kind::CronJob => R::erase::<batch::v1::CronJob>(&()),
        }
    }

    /// The kind's name (`Deployment`), from the same types.
    pub fn name(self) -> &'static str {
        use k8s_openapi::Resource;
        use k8s_openapi::api::{apps, autoscaling, batch, core, networking, rbac};
        match self {
            Kind::Namespace => core::v1::Namespace::KIND,
            Kind::RoleBinding => rbac::v1::RoleBinding::KIND,
            Kind::Secret => core::v1::Secret::KIND,
            Kind::Deployment => apps::v1::Deployment::KIND,
            Kind::Service => core::v1::Service::KIND,
            Kind::HorizontalPodAutoscaler => autoscaling::v2::HorizontalPodAutoscaler::KIND,
            Kind::NetworkPolicy => networking::v1::NetworkPolicy::KIND,
            Kind::ResourceQuota => core::v1::ResourceQuota::KIND,
            Kind::CronJob => batch::v1::CronJob::KIND,
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(self) -> String {
        self.api_resource().api_version
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether objects of the kind live in a namespace (every kind but `Namespace`).
    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }
}

/// One desired object: its kind, namespace (empty for a `Namespace`), name and full body
/// (`apiVersion`, `kind`, `metadata`, `spec`…).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub body: Value,
}

impl Desired {
    /// The object of a typed k8s-openapi value; its namespace is its `metadata.namespace`.
    pub fn new(kind: Kind, name: &str, typed: &impl Serialize) -> Desired {
        // k8s-openapi types always serialize (they hold only strings, numbers, maps and lists).
        let body = serde_json::to_value(typed).unwrap_or(Value::Null);
        Desired {
            kind,
            namespace: namespace_of(&body).unwrap_or_default().to_owned(),
            name: name.to_owned(),
            body,
        }
    }
}

/// True when every field of `desired` is in `live` with the same value (objects key by key, lists
/// element by element): the live object already says what we would apply, so applying is skipped.
/// Fields the server added (defaults, status, managedFields) do not count as a difference.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        _ => live == desired,
    }
}

/// A live object's `metadata.labels[key]`.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")?.get(key)?.as_str()
}

/// A live object's `metadata.name`.
pub fn name_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/name")?.as_str()
}

/// A live object's `metadata.namespace` (none for a `Namespace`).
pub fn namespace_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace")?.as_str()
}

/// A Deployment that reports itself available: the controller has seen the latest spec and its
/// `Available` condition is true.
pub fn deployment_available(obj: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = obj
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let seen = match (generation, observed) {
        (Some(g), Some(o)) => o >= g,
        (None, _) => true,
        (Some(_), None) => false,
    };
    let available = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Available")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        });
    seen && available
}

/// Refuses to apply over a live object that is not labelled for this very team: its name may be
/// taken by another tenant (a hash collision, an object from before the naming rule, a hand-made
/// one), and applying would hand that tenant's Deployment, Service or token to this team. The
/// team's own Namespace is guarded the same way: a namespace of that name labelled for another
/// tenant (or for none) is never adopted.
pub fn refuse_foreign(
    obj: &Desired,
    live: &serde_json::Value,
    org: &crate::domain::OrgId,
    team: &crate::domain::NodeId,
) -> Result<(), super::backend::BackendError> {
    let (o, t) = (
        label(live, super::build::ORG_LABEL),
        label(live, super::build::TEAM_LABEL),
    );
    if o == Some(org.as_str()) && t == Some(team.as_str()) {
        return Ok(());
    }
    Err(super::backend::BackendError::OwnedByAnotherTenant {
        kind: obj.kind.name(),
        name: obj.name.clone(),
        org: o.unwrap_or_default().to_owned(),
        team: t.unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_live_object_with_server_defaults_still_contains_the_desired_one() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 8080}]}});
        let live = json!({"metadata": {"uid": "u"}, "spec": {"replicas": 2, "ports": [{"port": 8080, "protocol": "TCP"}]}, "status": {}});
        assert!(contains(&live, &desired));
        let edited = json!({"spec": {"replicas": 7, "ports": [{"port": 8080}]}});
        assert!(!contains(&edited, &desired));
        let extra_port =
            json!({"spec": {"replicas": 2, "ports": [{"port": 8080}, {"port": 9090}]}});
        assert!(!contains(&extra_port, &desired));
    }

    #[test]
    fn a_deployment_is_available_only_when_its_controller_saw_the_latest_spec() {
        let ok = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3,
            "conditions": [{"type": "Available", "status": "True"}]}});
        assert!(deployment_available(&ok));
        let stale = json!({"metadata": {"generation": 4}, "status": {"observedGeneration": 3,
            "conditions": [{"type": "Available", "status": "True"}]}});
        assert!(!deployment_available(&stale));
        let down = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
            "conditions": [{"type": "Available", "status": "False"}]}});
        assert!(!deployment_available(&down));
        assert!(!deployment_available(
            &json!({"metadata": {"generation": 1}})
        ));
    }
}
