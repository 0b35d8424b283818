//! Target `quantities`: Kubernetes quantities (`"4"`, `"500m"`, `"8Gi"`) and label rules in
//! provisioning requests (`provision::units`), and whole provisioning bodies (`provision::request`).

use crate::common::{json_value, text, with_paths};
use ifox::provision::request::{
    self, Cpu, Memory, check_label_key, check_label_value, cpu, memory,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text near a quantity: digits, a fraction, any suffix, or anything.
fn quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ("[0-9]{0,22}(\\.[0-9]{0,8})?", "(|m|k|M|G|T|Ki|Mi|Gi|Ti|Pi|E|e3|u|n|i)")
            .prop_map(|(n, s)| format!("{n}{s}")),
        1 => "[-+ .0-9a-zA-Z]{0,12}",
        1 => text(),
    ]
}

fn dedicated_config() -> impl Strategy<Value = Value> {
    let q = || prop_oneof![3 => quantity().prop_map(Value::String), 1 => json_value()];
    (
        json_value(),
        q(),
        q(),
        q(),
        q(),
        prop_oneof![json_value(), (-5i64..1000).prop_map(Value::from)],
        json_value(),
    )
        .prop_map(|(base, c, m, rc, rm, replicas, selector)| {
            let base = if base.is_object() { base } else { json!({}) };
            with_paths(
                base,
                vec![
                    ("/resources/cpu", c),
                    ("/resources/memory", m),
                    ("/resources/requests/cpu", rc),
                    ("/resources/requests/memory", rm),
                    ("/replicas", replicas),
                    ("/node_selector", selector),
                ],
            )
        })
}

proptest! {
    /// parse(render(x)) == x: any CPU in millicores and any memory in bytes inside the accepted
    /// range prints in canonical form and parses back to itself.
    #[test]
    fn a_rendered_quantity_parses_back(millis in 1u64..=1_000_000_000, bytes in (1u64 << 20)..=1_000_000_000_000_000) {
        prop_assert_eq!(cpu(&Cpu(millis).to_string(), "cpu").map(|c| c.0).ok(), Some(millis), "{}", Cpu(millis));
        prop_assert_eq!(memory(&Memory(bytes).to_string(), "memory").map(|m| m.0).ok(), Some(bytes), "{}", Memory(bytes));
    }

    /// Any text as a quantity gives a value or a refusal naming the field, never a panic; what is
    /// accepted is inside the bounds (1m to 10⁶ cores, 1 MiB to 10¹⁵ bytes) and its canonical form
    /// means the same amount.
    #[test]
    fn any_quantity_text_gives_a_bounded_value_or_a_refusal(q in quantity()) {
        match cpu(&q, "resources.cpu") {
            Ok(c) => {
                prop_assert!((1..=1_000_000_000).contains(&c.0), "{} -> {:?}", q, c);
                prop_assert_eq!(cpu(&c.to_string(), "cpu").map(|x| x.0).ok(), Some(c.0));
            }
            Err(e) => prop_assert_eq!(e.field, "resources.cpu"),
        }
        match memory(&q, "resources.memory") {
            Ok(m) => {
                prop_assert!(((1 << 20)..=1_000_000_000_000_000).contains(&m.0), "{} -> {:?}", q, m);
                prop_assert_eq!(memory(&m.to_string(), "memory").map(|x| x.0).ok(), Some(m.0));
            }
            Err(e) => prop_assert_eq!(e.field, "resources.memory"),
        }
    }

    /// Any text as a label key or value gets an answer, never a panic; an accepted value is at most
    /// 63 characters of `[A-Za-z0-9._-]`.
    #[test]
    fn any_label_text_gets_an_answer(k in text(), v in text()) {
        let _ = check_label_key(&k);
        if check_label_value(&v).is_ok() {
            prop_assert!(v.len() <= 63 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        }
    }

    /// Any provisioning body with a hostile `dedicated_config` is accepted or refused naming a field,
    /// never a panic; an accepted one holds its limits in canonical form (they parse back to the
    /// same text).
    #[test]
    fn any_provisioning_body_is_accepted_with_canonical_limits_or_refused(cfg in dedicated_config()) {
        let body = json!({"org_id": "acme", "team_node_id": "web", "deployment_mode": "dedicated", "dedicated_config": cfg});
        match request::parse(body) {
            Ok(req) => {
                let spec = req.spec.expect("dedicated has a spec");
                prop_assert_eq!(cpu(&spec.cpu_limit, "l").map(|c| c.to_string()).ok(), Some(spec.cpu_limit.clone()));
                prop_assert_eq!(memory(&spec.memory_limit, "l").map(|m| m.to_string()).ok(), Some(spec.memory_limit.clone()));
            }
            Err(e) => prop_assert!(!e.field.is_empty() && !e.message.is_empty()),
        }
    }
}

/// Regression: `528989026m`, the canonical form of an accepted CPU, was refused ("must be a whole
/// number of millicores"): it computes to 528989025.99999994, and the check read `fract()`.
#[test]
fn a_canonical_quantity_just_below_a_whole_number_in_floating_point_is_accepted() {
    assert_eq!(
        cpu("528989026m", "cpu").map(|c| c.0).ok(),
        Some(528_989_026)
    );
    assert_eq!(
        cpu(&Cpu(528_989_026).to_string(), "cpu").map(|c| c.0).ok(),
        Some(528_989_026)
    );
    assert!(cpu("1.5m", "cpu").is_err(), "still whole millicores only");
}
