//! Snapshot tests of the built objects: the design's example (REFERENCE.md) and a long-named team
//! with every optional object. The snapshots are committed YAML compared as text; run with
//! `IFOX_BLESS=1` to rewrite them after an intended change (and review the diff).

use super::build::{self, Input, object_name, service_url, shorten};
use super::manifests::to_yaml;
use super::objects::Kind;
use super::request;
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
    // A platform that allows everything the examples use (a quota cannot be requested; the stored
    // spec of the long-named example still carries one, to snapshot the object).
    let policy = super::policy::Policy {
        image_prefixes: vec!["registry.example.com/".into()],
        node_selector_keys: vec!["example.com/pool".into(), "node-type".into()],
        toleration_keys: vec!["dedicated".into()],
        ..Default::default()
    };
    let quota = body.pointer("/dedicated_config/resource_quota").cloned();
    let mut body = body;
    if let Some(c) = body["dedicated_config"].as_object_mut() {
        c.remove("resource_quota");
    }
    let mut req = request::parse_with(body, &policy).unwrap();
    if let (Some(q), Some(spec)) = (quota, req.spec.as_mut()) {
        spec.resource_quota = Some(serde_json::from_value(q).unwrap());
    }
    req
}

/// The objects of a parsed dedicated request in namespace `incidentfox`.
fn build_request(
    req: &request::ProvisionRequest,
    default_image: &str,
    token: &str,
) -> Vec<super::objects::Desired> {
    build::build(&Input {
        org: &req.org,
        team: &req.team,
        namespace: "incidentfox",
        default_image,
        spec: req.spec.as_ref().unwrap(),
        pipeline: req.pipeline.as_ref(),
        token,
    })
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
        default_image: "ghcr.io/incidentfox/agent:1.0.0",
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
    let objects = build_request(&req, "unused", "long-token");
    let name = object_name(&req.org, &req.team);
    assert_eq!(name.len(), 63, "{name}");
    assert!(name.starts_with("agent-dedicated--acme-corporation-international-aaaa"));
    let kinds: Vec<_> = objects.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Secret,
            Kind::Deployment,
            Kind::Service,
            Kind::HorizontalPodAutoscaler,
            Kind::NetworkPolicy,
            Kind::ResourceQuota,
            Kind::CronJob
        ]
    );
    let cron = objects.last().unwrap();
    assert!(cron.name.len() <= 52, "{}", cron.name);
    // With an HPA the Deployment leaves replicas to the autoscaler.
    assert!(objects[1].body.pointer("/spec/replicas").is_none());
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
    let input = Input {
        org: &req.org,
        team: &req.team,
        namespace: "ns",
        default_image: "img",
        spec: req.spec.as_ref().unwrap(),
        pipeline: None,
        token: "t",
    };
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
