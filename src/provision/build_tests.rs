//! Snapshot tests of the built objects: the design's example (REFERENCE.md), a long-named team
//! with every optional object in a namespace of its own, and a shared team's pipeline. The
//! snapshots are committed YAML compared as text; run with `IFOX_BLESS=1` to rewrite them after an
//! intended change (and review the diff).

use super::build::{self, Input, OwnNamespace, object_name, service_url, shorten, team_namespace};
use super::manifests::to_yaml;
use super::objects::Kind;
use super::request;
use super::request::Mode;
use crate::domain::{NodeId, OrgId};
use serde_json::json;

fn render(objects: &[super::objects::Desired]) -> String {
    objects
        .iter()
        .map(|o| format!("---\n{}", to_yaml(&o.body)))
        .collect()
}

fn check_snapshot(file: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/provision/snapshots")
        .join(file);
    if std::env::var_os("IFOX_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with IFOX_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} drifted from the built objects; review and re-bless with IFOX_BLESS=1\n--- actual ---\n{actual}",
        path.display()
    );
}

fn parse(body: serde_json::Value) -> request::ProvisionRequest {
    // A platform that allows everything the examples use, quotas included (a namespace per team).
    let policy = super::policy::Policy {
        image_prefixes: vec!["registry.example.com/".into()],
        node_selector_keys: vec!["example.com/pool".into(), "node-type".into()],
        toleration_keys: vec!["dedicated".into()],
        namespace_per_team: true,
        ..Default::default()
    };
    request::parse_with(body, &policy).unwrap()
}

const OWN: OwnNamespace<'static> = OwnNamespace {
    platform_namespace: "incidentfox",
    provisioner_account: "ifox-provisioner",
};

/// The objects of a parsed dedicated request in namespace `incidentfox`.
fn build_request(
    req: &request::ProvisionRequest,
    default_image: &str,
    token: &str,
) -> Vec<super::objects::Desired> {
    build::build(&input(req, "incidentfox", None, default_image, token))
}

/// The build input of a parsed dedicated request in `namespace` (the team's own with `own`).
fn input<'a>(
    req: &'a request::ProvisionRequest,
    namespace: &'a str,
    own: Option<OwnNamespace<'a>>,
    default_image: &'a str,
    token: &'a str,
) -> Input<'a> {
    Input {
        org: &req.org,
        team: &req.team,
        namespace,
        own_namespace: own,
        default_image,
        mode: req.mode,
        spec: req.spec.as_ref().unwrap(),
        pipeline: req.pipeline.as_ref(),
        token,
    }
}

#[test]
fn the_designs_provisioning_example_builds_its_deployment_service_and_secret() {
    let req = parse(
        json!({"org_id":"acme","team_node_id":"enterprise-team","deployment_mode":"dedicated",
        "dedicated_config":{"replicas":2,"resources":{"cpu":"4","memory":"8Gi"},"node_selector":{"node-type":"high-memory"}},
        "routing":{"slack_channel_ids":["C0A4967KRBM"]}}),
    );
    let spec = req.spec.as_ref().unwrap();
    assert_eq!(
        (spec.cpu_request.as_str(), spec.memory_request.as_str()),
        ("2", "4Gi")
    );
    let objects = build::build(&Input {
        org: &req.org,
        team: &req.team,
        namespace: "incidentfox",
        own_namespace: None,
        default_image: "ghcr.io/incidentfox/agent:1.0.0",
        mode: Mode::Dedicated,
        spec,
        pipeline: None,
        token: "acme.enterprise-team.test-token",
    });
    let kinds: Vec<_> = objects.iter().map(|o| o.kind).collect();
    // The HPA is the default (min 2, max 10, 70 % CPU).
    assert_eq!(
        kinds,
        [
            Kind::Secret,
            Kind::Deployment,
            Kind::Service,
            Kind::HorizontalPodAutoscaler
        ]
    );
    assert!(
        objects
            .iter()
            .all(|o| o.name == "agent-dedicated-acme-enterprise-team")
    );
    assert_eq!(
        service_url(&req.org, &req.team, "incidentfox"),
        "http://agent-dedicated-acme-enterprise-team.incidentfox.svc.cluster.local:8080"
    );
    check_snapshot("design-example.yaml", &render(&objects));
}

#[test]
fn a_long_named_team_with_every_option_gets_shortened_names_and_all_objects() {
    let team = "a".repeat(30) + "-platform-reliability-engineering";
    let req = parse(
        json!({"org_id":"acme-corporation-international","team_node_id": team,
        "deployment_mode":"dedicated","pipeline":{"schedule":"0 */6 * * *"},
        "dedicated_config":{"replicas":3,"image":"registry.example.com/agent:2.1",
            "resources":{"cpu":"1500m","memory":"3Gi","requests":{"cpu":"250m"}},
            "node_selector":{"example.com/pool":"agents"},
            "tolerations":[{"key":"dedicated","operator":"Equal","value":"agents","effect":"NoSchedule"}],
            "autoscaling":{"min":2,"max":10,"cpu_percent":70},
            "network_policy":true,"resource_quota":{"cpu":"20","memory":"40Gi","pods":20}}}),
    );
    let namespace = team_namespace("incidentfox", &req.org, &req.team);
    let objects = build::build(&input(&req, &namespace, Some(OWN), "unused", "long-token"));
    let name = object_name(&req.org, &req.team);
    assert_eq!(name.len(), 63, "{name}");
    assert!(name.starts_with("agent-dedicated--acme-corporation-international-aaaa"));
    assert!(namespace.len() <= 63 && namespace.starts_with("incidentfox--acme-corporation-"));
    let kinds: Vec<_> = objects.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Namespace,
            Kind::RoleBinding,
            Kind::ResourceQuota,
            Kind::Secret,
            Kind::Deployment,
            Kind::Service,
            Kind::HorizontalPodAutoscaler,
            Kind::NetworkPolicy,
            Kind::CronJob
        ]
    );
    // Everything but the Namespace itself lives in the team's namespace.
    assert_eq!(objects[0].name, namespace);
    assert!(objects[1..].iter().all(|o| o.namespace == namespace));
    let cron = objects.last().unwrap();
    assert!(cron.name.len() <= 52, "{}", cron.name);
    // With an HPA the Deployment leaves replicas to the autoscaler.
    assert!(objects[4].body.pointer("/spec/replicas").is_none());
    // Only ifox's pods of the platform namespace reach the agent.
    let from = &objects[7].body["spec"]["ingress"][0]["from"][0];
    assert_eq!(
        from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "incidentfox"
    );
    check_snapshot("long-named-team.yaml", &render(&objects));
}

#[test]
fn shortened_names_are_stable_and_distinct_for_names_that_share_a_prefix() {
    let org = OrgId::parse("acme").unwrap();
    let a = NodeId::parse(format!("{}-one", "x".repeat(55))).unwrap();
    let b = NodeId::parse(format!("{}-two", "x".repeat(55))).unwrap();
    let (na, nb) = (object_name(&org, &a), object_name(&org, &b));
    assert_ne!(na, nb);
    assert_eq!(na, object_name(&org, &a));
    assert!(na.len() <= 63 && nb.len() <= 63);
    assert_eq!(shorten("short", 63), "short");
    assert!(crate::domain::ids::check_dns_label("name", &na).is_ok());
}

#[test]
fn building_twice_gives_identical_objects() {
    let req = parse(
        json!({"org_id":"acme","team_node_id":"web","deployment_mode":"dedicated",
        "dedicated_config":{"replicas":1}}),
    );
    let input = input(&req, "ns", Some(OWN), "img", "t");
    assert_eq!(build::build(&input), build::build(&input));
}

#[test]
fn names_of_tenants_that_spell_the_same_org_team_string_differ_and_plain_ones_stay_the_designs() {
    let id = |o: &str, t: &str| (OrgId::parse(o).unwrap(), NodeId::parse(t).unwrap());
    let (o1, t1) = id("acme", "x-y");
    let (o2, t2) = id("acme-x", "y");
    assert_eq!(object_name(&o1, &t1), "agent-dedicated-acme-x-y");
    let hashed = object_name(&o2, &t2);
    assert_ne!(hashed, object_name(&o1, &t1));
    assert!(hashed.starts_with("agent-dedicated--acme-x-y-"), "{hashed}");
    // A team of `acme` cannot reproduce the hashed name by spelling its hash: plain names never
    // have '-' right after the prefix.
    let suffix = &hashed["agent-dedicated--acme-".len()..];
    let (o3, t3) = id("acme", suffix);
    assert_ne!(object_name(&o3, &t3), hashed);
    for (o, t) in [(&o1, &t1), (&o2, &t2), (&o3, &t3)] {
        let name = object_name(o, t);
        assert!(
            name.len() <= 63 && name.starts_with("agent-dedicated-"),
            "{name}"
        );
        assert!(
            crate::domain::ids::check_dns_label("name", &name).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn every_pod_template_meets_the_restricted_pod_security_profile() {
    let req = parse(
        json!({"org_id":"acme","team_node_id":"web","deployment_mode":"dedicated",
        "pipeline":{"schedule":"@daily"}}),
    );
    let objects = build_request(&req, "img", "t");
    let templates: Vec<_> = objects
        .iter()
        .filter_map(|o| match o.kind {
            Kind::Deployment => o.body.pointer("/spec/template/spec"),
            Kind::CronJob => o.body.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => None,
        })
        .collect();
    assert_eq!(templates.len(), 2, "a Deployment and a CronJob");
    for pod in templates {
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{c}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(
                c["volumeMounts"],
                json!([{"name": "tmp", "mountPath": "/tmp"}])
            );
        }
    }
}

#[test]
fn a_quota_is_built_only_in_a_namespace_of_the_teams_own() {
    let req = parse(
        json!({"org_id":"acme","team_node_id":"web","deployment_mode":"dedicated",
        "dedicated_config":{"resource_quota":{"cpu":"8","memory":"16Gi"}}}),
    );
    // A stored spec with a quota, the option since turned off: the platform namespace gets none.
    let shared_ns = build_request(&req, "img", "t");
    assert!(shared_ns.iter().all(|o| o.kind != Kind::ResourceQuota));
    assert!(shared_ns.iter().all(|o| o.namespace == "incidentfox"));
    let namespace = team_namespace("incidentfox", &req.org, &req.team);
    assert_eq!(namespace, "incidentfox-acme-web");
    let own = build::build(&input(&req, &namespace, Some(OWN), "img", "t"));
    let quota = own.iter().find(|o| o.kind == Kind::ResourceQuota).unwrap();
    assert_eq!(quota.namespace, "incidentfox-acme-web");
    assert_eq!(
        quota.body["spec"]["hard"],
        json!({"limits.cpu": "8", "limits.memory": "16Gi"})
    );
    // The agent's service is in that namespace: the URL the bridge's default patterns admit.
    assert_eq!(
        service_url(&req.org, &req.team, &namespace),
        "http://agent-dedicated-acme-web.incidentfox-acme-web.svc.cluster.local:8080"
    );
}

#[test]
fn team_namespaces_of_tenants_that_spell_the_same_org_team_string_differ() {
    let id = |o: &str, t: &str| (OrgId::parse(o).unwrap(), NodeId::parse(t).unwrap());
    let (o1, t1) = id("acme", "x-y");
    let (o2, t2) = id("acme-x", "y");
    let (n1, n2) = (
        team_namespace("incidentfox", &o1, &t1),
        team_namespace("incidentfox", &o2, &t2),
    );
    assert_eq!(n1, "incidentfox-acme-x-y");
    assert_ne!(n1, n2);
    let long = id("acme", &"z".repeat(63));
    for n in [n1, n2, team_namespace("incidentfox", &long.0, &long.1)] {
        assert!(n.starts_with("incidentfox-") && n.len() <= 63, "{n}");
        assert!(
            crate::domain::ids::check_dns_label("namespace", &n).is_ok(),
            "{n}"
        );
    }
}

#[test]
fn a_shared_teams_pipeline_is_a_cron_job_with_its_secret_and_nothing_of_an_agent() {
    let req =
        parse(json!({"org_id":"acme","team_node_id":"web","pipeline":{"schedule":"0 3 * * *"}}));
    assert_eq!(req.mode, Mode::Shared);
    let defaults = request::default_spec(&super::policy::Policy::default()).unwrap();
    let input = Input {
        org: &req.org,
        team: &req.team,
        namespace: "incidentfox",
        own_namespace: None,
        default_image: "ghcr.io/incidentfox/agent:1.0.0",
        mode: req.mode,
        spec: &defaults,
        pipeline: req.pipeline.as_ref(),
        token: "acme.web.pipeline-token",
    };
    let objects = build::build(&input);
    let kinds: Vec<_> = objects.iter().map(|o| o.kind).collect();
    assert_eq!(kinds, [Kind::Secret, Kind::CronJob]);
    assert_eq!(objects[1].name, "agent-dedicated-acme-web-pipeline");
    check_snapshot("shared-team-pipeline.yaml", &render(&objects));
    // In a namespace of its own, the namespace and its RoleBinding come first.
    let namespace = team_namespace("incidentfox", &req.org, &req.team);
    let own = build::build(&Input {
        namespace: &namespace,
        own_namespace: Some(OWN),
        ..input.clone()
    });
    let kinds: Vec<_> = own.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Namespace,
            Kind::RoleBinding,
            Kind::Secret,
            Kind::CronJob
        ]
    );
    // Without a pipeline a shared team has no objects at all.
    assert!(
        build::build(&Input {
            pipeline: None,
            ..input
        })
        .is_empty()
    );
}
