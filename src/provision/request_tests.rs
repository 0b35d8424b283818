//! Validation of the provisioning body: every refusal names its field.

use super::policy::Policy;
use super::request::{Autoscaling, Mode, parse, parse_with};
use serde_json::{Value, json};

fn dedicated(config: Value) -> Value {
    json!({"org_id": "acme", "team_node_id": "web", "deployment_mode": "dedicated", "dedicated_config": config})
}

fn refused_field(body: Value) -> String {
    parse(body).expect_err("should be refused").field
}

#[test]
fn a_cpu_that_is_not_a_quantity_is_refused_naming_the_field() {
    let body = dedicated(json!({"resources": {"cpu": "four", "memory": "8Gi"}}));
    assert_eq!(refused_field(body), "dedicated_config.resources.cpu");
    let body = dedicated(json!({"resources": {"cpu": "4", "memory": "8 GB"}}));
    assert_eq!(refused_field(body), "dedicated_config.resources.memory");
}

#[test]
fn quantities_in_cores_millicores_and_binary_units_parse_and_requests_default_to_half() {
    let spec = parse(dedicated(
        json!({"resources": {"cpu": "500m", "memory": "1Gi"}}),
    ))
    .unwrap()
    .spec
    .unwrap();
    assert_eq!(
        (spec.cpu_limit.as_str(), spec.cpu_request.as_str()),
        ("500m", "250m")
    );
    assert_eq!(
        (spec.memory_limit.as_str(), spec.memory_request.as_str()),
        ("1Gi", "512Mi")
    );
    let spec = parse(dedicated(json!({"resources": {"cpu": "0.5", "memory": "8Gi", "requests": {"cpu": "100m", "memory": "1Gi"}}})))
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(
        (spec.cpu_limit.as_str(), spec.cpu_request.as_str()),
        ("500m", "100m")
    );
    assert_eq!(spec.memory_request, "1Gi");
}

#[test]
fn negative_replicas_are_refused() {
    assert_eq!(
        refused_field(dedicated(json!({"replicas": -1}))),
        "dedicated_config.replicas"
    );
    assert!(parse(dedicated(json!({"replicas": 0}))).is_ok());
}

#[test]
fn an_autoscaling_minimum_above_its_maximum_is_refused() {
    let body = dedicated(json!({"autoscaling": {"min": 5, "max": 2}}));
    assert_eq!(refused_field(body), "dedicated_config.autoscaling.min");
}

#[test]
fn node_selectors_that_are_not_label_valid_are_refused() {
    let body = dedicated(json!({"node_selector": {"node type": "x"}}));
    assert_eq!(
        refused_field(body),
        "dedicated_config.node_selector.node type"
    );
    let body = dedicated(json!({"node_selector": {"node-type": "high memory"}}));
    assert_eq!(
        refused_field(body),
        "dedicated_config.node_selector.node-type"
    );
    let body = dedicated(json!({"node_selector": {"example.com/pool": "agents-1"}}));
    let policy = Policy {
        node_selector_keys: vec!["example.com/pool".into()],
        ..Policy::default()
    };
    assert!(parse_with(body, &policy).is_ok());
}

#[test]
fn requests_above_limits_bad_tolerations_and_bad_schedules_are_refused() {
    let body = dedicated(json!({"resources": {"cpu": "1", "requests": {"cpu": "2"}}}));
    assert_eq!(
        refused_field(body),
        "dedicated_config.resources.requests.cpu"
    );
    let body = dedicated(json!({"tolerations": [{"key": "k", "operator": "Maybe"}]}));
    assert_eq!(
        refused_field(body),
        "dedicated_config.tolerations[0].operator"
    );
    let mut body = dedicated(json!({}));
    body["pipeline"] = json!({"schedule": "every day"});
    assert_eq!(refused_field(body), "pipeline.schedule");
}

#[test]
fn unknown_fields_and_mode_mismatches_are_refused() {
    assert_eq!(
        refused_field(dedicated(json!({"replica": 2}))),
        "dedicated_config.replica"
    );
    let body = json!({"org_id": "acme", "team_node_id": "web", "colour": "red"});
    assert_eq!(refused_field(body), "colour");
    let body = json!({"org_id": "acme", "team_node_id": "web", "dedicated_config": {}});
    assert_eq!(refused_field(body), "dedicated_config");
    let body = json!({"org_id": "acme", "team_node_id": "Web"});
    assert_eq!(refused_field(body), "team_node_id");
    let body = json!({"org_id": "acme", "team_node_id": "web", "deployment_mode": "hybrid"});
    assert_eq!(refused_field(body), "deployment_mode");
}

#[test]
fn a_shared_request_needs_no_dedicated_config() {
    let req = parse(
        json!({"org_id": "acme", "team_node_id": "web", "routing": {"slack_channel_ids": ["C1"]}}),
    )
    .unwrap();
    assert_eq!(req.mode, Mode::Shared);
    assert!(req.spec.is_none());
}

#[test]
fn the_designs_migration_body_gets_the_default_runtime_with_the_hpa() {
    let body = json!({"org_id": "acme", "team_node_id": "web", "deployment_mode": "dedicated"});
    let spec = parse(body).unwrap().spec.unwrap();
    assert_eq!(spec.replicas, 2);
    assert_eq!(
        (spec.cpu_limit.as_str(), spec.memory_limit.as_str()),
        ("4", "8Gi")
    );
    assert_eq!(
        (spec.cpu_request.as_str(), spec.memory_request.as_str()),
        ("2", "4Gi")
    );
    assert_eq!(spec.autoscaling, Some(Autoscaling::DEFAULT));
    assert_eq!(
        (
            Autoscaling::DEFAULT.min,
            Autoscaling::DEFAULT.max,
            Autoscaling::DEFAULT.cpu_percent
        ),
        (2, 10, 70)
    );
    for off in [json!(false), json!(null)] {
        let spec = parse(dedicated(json!({"autoscaling": off})))
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(spec.autoscaling, None, "{off}");
    }
    let spec = parse(dedicated(json!({"autoscaling": true})))
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.autoscaling, Some(Autoscaling::DEFAULT));
}

#[test]
fn a_pod_spec_outside_the_platforms_policy_is_refused_naming_the_field() {
    let cases = [
        (
            json!({"image": "evil.example/miner:1"}),
            "dedicated_config.image",
        ),
        (
            json!({"node_selector": {"kubernetes.io/hostname": "ifox-node"}}),
            "dedicated_config.node_selector.kubernetes.io/hostname",
        ),
        (
            json!({"tolerations": [{"operator": "Exists"}]}),
            "dedicated_config.tolerations[0].key",
        ),
        (
            json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}),
            "dedicated_config.tolerations[0].key",
        ),
        (
            json!({"resource_quota": {"cpu": "1", "memory": "1Gi"}}),
            "dedicated_config.resource_quota",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(refused_field(dedicated(config.clone())), field, "{config}");
    }
    let mut body = dedicated(json!({}));
    body["pipeline"] = json!({"schedule": "@daily", "image": "docker.io/evil/pipeline"});
    assert_eq!(refused_field(body), "pipeline.image");
    // Inside the defaults: the default image's repository, the `node-type` key.
    let ok = dedicated(
        json!({"image": "ghcr.io/incidentfox/agent:2", "node_selector": {"node-type": "high-memory"},
        "tolerations": [{"key": "node-type", "operator": "Equal", "value": "agents", "effect": "NoSchedule"}]}),
    );
    assert!(parse(ok).is_ok());
}

#[test]
fn a_quota_is_accepted_only_with_a_namespace_per_team_and_a_shared_team_may_have_a_pipeline() {
    let body = dedicated(json!({"resource_quota": {"cpu": "8", "memory": "16Gi", "pods": 20}}));
    let err = parse(body.clone()).unwrap_err();
    assert_eq!(err.field, "dedicated_config.resource_quota");
    assert!(err.message.contains("namespace_per_team"), "{err}");
    let policy = super::policy::Policy {
        namespace_per_team: true,
        ..Default::default()
    };
    let spec = super::request::parse_with(body, &policy)
        .unwrap()
        .spec
        .unwrap();
    let quota = spec.resource_quota.unwrap();
    assert_eq!(
        (quota.cpu.as_str(), quota.memory.as_str(), quota.pods),
        ("8", "16Gi", Some(20))
    );
    let shared = json!({"org_id": "acme", "team_node_id": "web",
        "pipeline": {"schedule": "0  3 * * *"}});
    let req = parse(shared).unwrap();
    assert_eq!(req.mode, Mode::Shared);
    assert_eq!(req.pipeline.unwrap().schedule, "0 3 * * *");
    assert!(req.spec.is_none());
    // The defaults a shared team's pipeline pods run with are valid.
    let defaults = super::request::default_spec(&super::policy::Policy::default()).unwrap();
    assert_eq!(
        (defaults.cpu_limit.as_str(), defaults.memory_limit.as_str()),
        ("4", "8Gi")
    );
}
