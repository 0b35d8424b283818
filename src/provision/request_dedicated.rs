//! The parts of a provisioning request that describe the runtime: `dedicated_config` (resources,
//! autoscaling, quota, node selector, tolerations) and `pipeline`, each refusal naming its field.
//! What a request leaves out takes the [`Policy`]'s defaults; the HPA is on unless turned off.

use super::*;

pub(super) fn dedicated(cfg: &Value, policy: &Policy) -> Result<DedicatedSpec, RequestError> {
    let f = "dedicated_config";
    let map = object(cfg, f)?;
    only_keys(
        map,
        f,
        &[
            "replicas",
            "resources",
            "node_selector",
            "tolerations",
            "image",
            "autoscaling",
            "network_policy",
            "resource_quota",
        ],
    )?;
    let replicas = int(map, f, "replicas")?.unwrap_or(policy.default_replicas.into());
    if !(0..=1000).contains(&replicas) {
        return Err(bad(format!("{f}.replicas"), "must be between 0 and 1000"));
    }
    let rf = format!("{f}.resources");
    let empty = serde_json::Map::new();
    let res = match map.get("resources") {
        None | Some(Value::Null) => &empty,
        Some(v) => object(v, &rf)?,
    };
    only_keys(res, &rf, &["cpu", "memory", "requests"])?;
    let cpu_limit = cpu(
        string(res, &rf, "cpu")?.unwrap_or(&policy.default_cpu),
        &format!("{rf}.cpu"),
    )?;
    let memory_limit = memory(
        string(res, &rf, "memory")?.unwrap_or(&policy.default_memory),
        &format!("{rf}.memory"),
    )?;
    let qf = format!("{rf}.requests");
    let req = match res.get("requests") {
        None | Some(Value::Null) => &empty,
        Some(v) => object(v, &qf)?,
    };
    only_keys(req, &qf, &["cpu", "memory"])?;
    let cpu_request = match string(req, &qf, "cpu")? {
        Some(q) => cpu(q, &format!("{qf}.cpu"))?,
        None => Cpu(cpu_limit.0 / 2),
    };
    let memory_request = match string(req, &qf, "memory")? {
        Some(q) => memory(q, &format!("{qf}.memory"))?,
        None => Memory(memory_limit.0 / 2),
    };
    if cpu_request.0 > cpu_limit.0 {
        return Err(bad(format!("{qf}.cpu"), "must not exceed the cpu limit"));
    }
    if memory_request.0 > memory_limit.0 {
        return Err(bad(
            format!("{qf}.memory"),
            "must not exceed the memory limit",
        ));
    }
    let node_selector = selector(map.get("node_selector"), &format!("{f}.node_selector"))?;
    let tolerations = tolerations(map.get("tolerations"), &format!("{f}.tolerations"))?;
    let image = string(map, f, "image")?.map(str::to_owned);
    if let Some(image) = &image
        && (image.is_empty() || image.len() > 512 || image.chars().any(char::is_whitespace))
    {
        return Err(bad(
            format!("{f}.image"),
            "must be an image reference without spaces",
        ));
    }
    // The HPA is on unless the request turns it off with `false` or `null` (the design's
    // troubleshooting recommends it); `true` or an absent key takes min 2, max 10, 70 % CPU.
    let autoscaling = match map.get("autoscaling") {
        Some(Value::Null) | Some(Value::Bool(false)) => None,
        None | Some(Value::Bool(true)) => Some(Autoscaling::DEFAULT),
        Some(v) => Some(autoscaling(v, &format!("{f}.autoscaling"))?),
    };
    let network_policy = match map.get("network_policy") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad(format!("{f}.network_policy"), "must be true or false")),
    };
    let resource_quota = match map.get("resource_quota") {
        None | Some(Value::Null) => None,
        Some(v) => Some(quota(v, &format!("{f}.resource_quota"))?),
    };
    Ok(DedicatedSpec {
        replicas: replicas as i32,
        cpu_limit: cpu_limit.to_string(),
        memory_limit: memory_limit.to_string(),
        cpu_request: cpu_request.to_string(),
        memory_request: memory_request.to_string(),
        node_selector,
        tolerations,
        image,
        autoscaling,
        network_policy,
        resource_quota,
    })
}

fn autoscaling(v: &Value, f: &str) -> Result<Autoscaling, RequestError> {
    let map = object(v, f)?;
    only_keys(map, f, &["min", "max", "cpu_percent"])?;
    let min = int(map, f, "min")?.unwrap_or(1);
    let max = int(map, f, "max")?.ok_or_else(|| bad(format!("{f}.max"), "required"))?;
    let cpu_percent = int(map, f, "cpu_percent")?.unwrap_or(70);
    if !(1..=1000).contains(&min) {
        return Err(bad(format!("{f}.min"), "must be between 1 and 1000"));
    }
    if !(1..=1000).contains(&max) {
        return Err(bad(format!("{f}.max"), "must be between 1 and 1000"));
    }
    if min > max {
        return Err(bad(
            format!("{f}.min"),
            format!("min ({min}) must not exceed max ({max})"),
        ));
    }
    if !(1..=100).contains(&cpu_percent) {
        return Err(bad(format!("{f}.cpu_percent"), "must be between 1 and 100"));
    }
    Ok(Autoscaling {
        min: min as i32,
        max: max as i32,
        cpu_percent: cpu_percent as i32,
    })
}

fn quota(v: &Value, f: &str) -> Result<Quota, RequestError> {
    let map = object(v, f)?;
    only_keys(map, f, &["cpu", "memory", "pods"])?;
    let c = string(map, f, "cpu")?.ok_or_else(|| bad(format!("{f}.cpu"), "required"))?;
    let m = string(map, f, "memory")?.ok_or_else(|| bad(format!("{f}.memory"), "required"))?;
    let pods = int(map, f, "pods")?;
    if pods.is_some_and(|p| !(1..=10_000).contains(&p)) {
        return Err(bad(format!("{f}.pods"), "must be between 1 and 10000"));
    }
    Ok(Quota {
        cpu: cpu(c, &format!("{f}.cpu"))?.to_string(),
        memory: memory(m, &format!("{f}.memory"))?.to_string(),
        pods: pods.map(|p| p as i32),
    })
}

pub(super) fn pipeline(v: &Value) -> Result<Pipeline, RequestError> {
    let f = "pipeline";
    let map = object(v, f)?;
    only_keys(map, f, &["schedule", "image"])?;
    let schedule =
        string(map, f, "schedule")?.ok_or_else(|| bad("pipeline.schedule", "required"))?;
    let fields: Vec<_> = schedule.split_whitespace().collect();
    let cron_char = |c: char| c.is_ascii_alphanumeric() || "*/,-?".contains(c);
    let macro_ok = fields.len() == 1 && fields[0].starts_with('@');
    if !macro_ok && (fields.len() != 5 || !fields.iter().all(|x| x.chars().all(cron_char))) {
        return Err(bad(
            "pipeline.schedule",
            format!("{schedule:?} is not a 5-field cron schedule"),
        ));
    }
    let image = string(map, f, "image")?.map(str::to_owned);
    Ok(Pipeline {
        schedule: fields.join(" "),
        image,
    })
}

fn selector(v: Option<&Value>, f: &str) -> Result<BTreeMap<String, String>, RequestError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (k, val) in object(v, f)? {
        let field = format!("{f}.{k}");
        check_label_key(k).map_err(|m| bad(&field, m))?;
        let val = val
            .as_str()
            .ok_or_else(|| bad(&field, "must be a string"))?;
        check_label_value(val).map_err(|m| bad(&field, m))?;
        out.insert(k.clone(), val.to_owned());
    }
    Ok(out)
}

fn tolerations(v: Option<&Value>, f: &str) -> Result<Vec<Toleration>, RequestError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![]);
    };
    let list = v.as_array().ok_or_else(|| bad(f, "must be a list"))?;
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let field = format!("{f}[{i}]");
        let t: Toleration =
            serde_json::from_value(t.clone()).map_err(|e| bad(&field, e.to_string()))?;
        if let Some(op) = &t.operator
            && op != "Equal"
            && op != "Exists"
        {
            return Err(bad(format!("{field}.operator"), "must be Equal or Exists"));
        }
        if let Some(effect) = &t.effect
            && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect.as_str())
        {
            return Err(bad(
                format!("{field}.effect"),
                "must be NoSchedule, PreferNoSchedule or NoExecute",
            ));
        }
        if let Some(key) = &t.key {
            check_label_key(key).map_err(|m| bad(format!("{field}.key"), m))?;
        }
        out.push(t);
    }
    Ok(out)
}
