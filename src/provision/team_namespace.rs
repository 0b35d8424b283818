//! A team's own namespace (`provision.namespace_per_team`): the Namespace itself, labelled for the
//! team and enforcing the `restricted` Pod Security profile; a RoleBinding that grants the
//! provisioner's service account the ClusterRole [`TEAM_OBJECTS_ROLE`] in this namespace only (ifox
//! holds no cluster-wide rights over team objects, see `deploy/components/namespace-per-team`);
//! and, when the request asks for one, the team's ResourceQuota. A quota can only ever be built
//! here: in the platform namespace it would limit every tenant and ifox itself.
//!
//! Pure, like [`super::build`], which calls [`objects`] first so the namespace exists before
//! anything is applied into it.

use super::build::{Input, OwnNamespace, labels, meta, object_name};
use super::objects::{Desired, Kind};
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The ClusterRole (in `deploy/`) with the provisioner's rights over the kinds it builds, bound in
/// each team namespace by the namespace's RoleBinding.
pub const TEAM_OBJECTS_ROLE: &str = "ifox-team-objects";

/// Namespace, RoleBinding and the optional ResourceQuota, in apply order.
pub fn objects(input: &Input<'_>, own: OwnNamespace<'_>) -> Vec<Desired> {
    let name = object_name(input.org, input.team);
    let mut ns_labels = labels(input.org, input.team, "namespace");
    // Pods that do not meet the profile are refused by the API server, whoever creates them.
    ns_labels.insert(
        "pod-security.kubernetes.io/enforce".to_owned(),
        "restricted".to_owned(),
    );
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(input.namespace.to_owned()),
            labels: Some(ns_labels),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut out = vec![Desired::new(Kind::Namespace, input.namespace, &namespace)];

    let binding = RoleBinding {
        metadata: meta(input, &name, "rbac"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: TEAM_OBJECTS_ROLE.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: own.provisioner_account.to_owned(),
            namespace: Some(own.platform_namespace.to_owned()),
            ..Default::default()
        }]),
    };
    out.push(Desired::new(Kind::RoleBinding, &name, &binding));

    if let Some(q) = &input.spec.resource_quota {
        let mut hard = BTreeMap::from([
            ("limits.cpu".to_owned(), Quantity(q.cpu.clone())),
            ("limits.memory".to_owned(), Quantity(q.memory.clone())),
        ]);
        if let Some(pods) = q.pods {
            hard.insert("pods".to_owned(), Quantity(pods.to_string()));
        }
        let quota = ResourceQuota {
            metadata: meta(input, &name, "quota"),
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard),
                ..Default::default()
            }),
            ..Default::default()
        };
        out.push(Desired::new(Kind::ResourceQuota, &name, &quota));
    }
    out
}
