//! Desired Kubernetes objects of one dedicated team, built in pure code (no client, no clock, no
//! randomness): the same input always gives the same objects, byte for byte, which is what the
//! snapshot tests and the "reconcile twice changes nothing" rule rely on.
//!
//! Objects of a dedicated team: Deployment, ClusterIP Service and Secret named
//! `agent-dedicated-{org}-{team}`; optional HorizontalPodAutoscaler and NetworkPolicy (same name)
//! and AI-pipeline CronJob (`…-pipeline`, [`pipeline`]). A shared team with a pipeline gets only the
//! Secret and the CronJob. With a namespace of its own ([`OwnNamespace`], [`super::team_namespace`])
//! the team's objects start with that Namespace, the RoleBinding that lets the provisioner manage
//! it and, when asked for, its ResourceQuota. Names are unambiguous across tenants and fit their
//! limit ([`super::names`]). Every object carries the [`MANAGED_BY`] label plus name, component,
//! org and team labels, which is how the resync finds them again.

pub use super::names::{
    NAME_PREFIX, object_name, service_url, shorten, team_namespace, tenant_name,
};
use super::objects::{Desired, Kind};
use super::request::{DedicatedSpec, Mode, Pipeline};
use crate::domain::{NodeId, OrgId};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret,
    SecretEnvSource, SecurityContext, Service, ServicePort, ServiceSpec, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "ifox");
pub const ORG_LABEL: &str = "ifox.dev/org";
pub const TEAM_LABEL: &str = "ifox.dev/team";
/// The port of the agent container and of its Service.
pub use crate::domain::kube_names::AGENT_PORT;
/// The env var of the Secret that carries the team's token.
pub const TOKEN_ENV: &str = "IFOX_TEAM_TOKEN";

#[path = "build_pipeline.rs"]
mod pipeline;

/// Everything the objects depend on.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub org: &'a OrgId,
    pub team: &'a NodeId,
    /// Where the team's objects go: the platform namespace, or the team's own one when
    /// `own_namespace` is set.
    pub namespace: &'a str,
    /// Set when `namespace` belongs to this team alone (`provision.namespace_per_team`).
    pub own_namespace: Option<OwnNamespace<'a>>,
    /// Used when the spec names no image.
    pub default_image: &'a str,
    /// Dedicated: the agent's objects (and the pipeline's); shared: the pipeline's only.
    pub mode: Mode,
    /// The pods' runtime: the team's dedicated spec, or for a shared team's pipeline the platform's
    /// defaults.
    pub spec: &'a DedicatedSpec,
    pub pipeline: Option<&'a Pipeline>,
    /// The team token handed to the pods through the Secret.
    pub token: &'a str,
}

/// The platform side of a team namespace: where ifox runs (the bridge that calls the agent, the
/// provisioner's service account that the namespace's RoleBinding names).
#[derive(Debug, Clone, Copy)]
pub struct OwnNamespace<'a> {
    pub platform_namespace: &'a str,
    pub provisioner_account: &'a str,
}

/// The labels every managed object of the team carries.
pub fn labels(org: &OrgId, team: &NodeId, component: &str) -> BTreeMap<String, String> {
    let name = object_name(org, team);
    BTreeMap::from([
        ("app".to_owned(), name.clone()),
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        ("app.kubernetes.io/name".to_owned(), "ifox-agent".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), name),
        (
            "app.kubernetes.io/component".to_owned(),
            component.to_owned(),
        ),
        (ORG_LABEL.to_owned(), org.to_string()),
        (TEAM_LABEL.to_owned(), team.to_string()),
    ])
}

pub(super) fn meta(input: &Input<'_>, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(input.namespace.to_owned()),
        labels: Some(labels(input.org, input.team, component)),
        ..Default::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(cpu.to_owned())),
        ("memory".to_owned(), Quantity(memory.to_owned())),
    ])
}

/// A container's limits and requests from the spec.
fn resources(spec: &DedicatedSpec) -> ResourceRequirements {
    ResourceRequirements {
        limits: Some(quantities(&spec.cpu_limit, &spec.memory_limit)),
        requests: Some(quantities(&spec.cpu_request, &spec.memory_request)),
        ..Default::default()
    }
}

/// The env every pod of the team gets: its ids, and its token from the Secret.
fn env(input: &Input<'_>, secret: &str) -> (Vec<EnvVar>, Vec<EnvFromSource>) {
    let var = |name: &str, value: &str| EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    };
    let env = vec![
        var("ORG_ID", input.org.as_str()),
        var("TEAM_ID", input.team.as_str()),
    ];
    let from = vec![EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name: secret.to_owned(),
            optional: Some(false),
        }),
        ..Default::default()
    }];
    (env, from)
}

/// The scratch volume mounted at `/tmp`: the root filesystem is read-only.
const TMP_VOLUME: &str = "tmp";

/// A pod of the team (the agent's or the pipeline's), meeting the Kubernetes `restricted` Pod
/// Security profile: not root, the runtime's default seccomp profile, no privilege escalation, no
/// capabilities, a read-only root filesystem with an `emptyDir` at `/tmp`; no service account token
/// (the agent talks to ifox with its team token, never to the API server).
fn pod_spec(spec: &DedicatedSpec, mut container: Container, restart: Option<&str>) -> PodSpec {
    container.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        read_only_root_filesystem: Some(true),
        ..Default::default()
    });
    container.volume_mounts = Some(vec![VolumeMount {
        name: TMP_VOLUME.to_owned(),
        mount_path: "/tmp".to_owned(),
        ..Default::default()
    }]);
    let tolerations: Vec<Toleration> = spec
        .tolerations
        .iter()
        .map(|t| Toleration {
            key: t.key.clone(),
            operator: t.operator.clone(),
            value: t.value.clone(),
            effect: t.effect.clone(),
            ..Default::default()
        })
        .collect();
    PodSpec {
        containers: vec![container],
        restart_policy: restart.map(str::to_owned),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: (!tolerations.is_empty()).then_some(tolerations),
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volumes: Some(vec![Volume {
            name: TMP_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// Every desired object of the team, in apply order (its Namespace first, the Secret before the
/// pods that read it). Nothing for a shared team without a pipeline.
pub fn build(input: &Input<'_>) -> Vec<Desired> {
    let name = object_name(input.org, input.team);
    let spec = input.spec;
    let mut out = Vec::new();
    if input.mode == Mode::Shared && input.pipeline.is_none() {
        return out;
    }
    if let Some(own) = input.own_namespace {
        out.extend(super::team_namespace::objects(input, own));
    }

    let secret = Secret {
        metadata: meta(input, &name, "credentials"),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            TOKEN_ENV.to_owned(),
            ByteString(input.token.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    out.push(Desired::new(Kind::Secret, &name, &secret));

    let image = spec.image.as_deref().unwrap_or(input.default_image);
    if input.mode == Mode::Dedicated {
        agent(input, &name, image, &mut out);
    }
    if let Some(p) = input.pipeline {
        out.push(pipeline::cron_job(input, &name, image, p));
    }
    out
}

/// The dedicated agent: Deployment, Service, and the optional HPA and NetworkPolicy.
fn agent(input: &Input<'_>, name: &str, image: &str, out: &mut Vec<Desired>) {
    let name = name.to_owned();
    let spec = input.spec;
    let selector = BTreeMap::from([("app".to_owned(), name.clone())]);
    let (env, env_from) = env(input, &name);
    let container = Container {
        name: "agent".to_owned(),
        image: Some(image.to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: AGENT_PORT,
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]),
        env: Some(env),
        env_from: Some(env_from),
        resources: Some(resources(spec)),
        ..Default::default()
    };
    let agent_pod = pod_spec(spec, container, None);
    let mut pod_labels = labels(input.org, input.team, "agent");
    pod_labels.insert("app".to_owned(), name.clone());
    let deployment = Deployment {
        metadata: meta(input, &name, "agent"),
        spec: Some(DeploymentSpec {
            // With an HPA the replica count is the autoscaler's field, not ours: leaving it out of the
            // apply keeps the two field managers from fighting.
            replicas: spec.autoscaling.is_none().then_some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(agent_pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    out.push(Desired::new(Kind::Deployment, &name, &deployment));

    let service = Service {
        metadata: meta(input, &name, "agent"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: AGENT_PORT,
                target_port: Some(IntOrString::Int(AGENT_PORT)),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    out.push(Desired::new(Kind::Service, &name, &service));

    if let Some(a) = spec.autoscaling {
        let hpa = HorizontalPodAutoscaler {
            metadata: meta(input, &name, "agent"),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_owned()),
                    kind: "Deployment".to_owned(),
                    name: name.clone(),
                },
                min_replicas: Some(a.min),
                max_replicas: a.max,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".to_owned(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".to_owned(),
                        target: MetricTarget {
                            type_: "Utilization".to_owned(),
                            average_utilization: Some(a.cpu_percent),
                            ..Default::default()
                        },
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        out.push(Desired::new(Kind::HorizontalPodAutoscaler, &name, &hpa));
    }

    if spec.network_policy {
        // Only ifox itself (the bridge) reaches the agent's port; egress stays open (the agent calls
        // LLM and tool APIs). In a team namespace, ifox's pods are those of the platform namespace.
        let namespace_selector = input.own_namespace.map(|own| LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                own.platform_namespace.to_owned(),
            )])),
            ..Default::default()
        });
        let policy = NetworkPolicy {
            metadata: meta(input, &name, "agent"),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/name".to_owned(),
                                "ifox".to_owned(),
                            )])),
                            ..Default::default()
                        }),
                        namespace_selector,
                        ..Default::default()
                    }]),
                    ports: Some(vec![NetworkPolicyPort {
                        port: Some(IntOrString::Int(AGENT_PORT)),
                        protocol: Some("TCP".to_owned()),
                        ..Default::default()
                    }]),
                }]),
                ..Default::default()
            }),
        };
        out.push(Desired::new(Kind::NetworkPolicy, &name, &policy));
    }
}
