//! The pure measures and the range checks of the limits.

use super::*;
use serde_json::json;

/// `{"a":{"a":…}}` nested `levels` times, built without recursion.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

#[test]
fn depth_counts_objects_and_arrays_and_stops_at_the_cap() {
    assert_eq!(json_depth(&json!(1), 10), 0);
    assert_eq!(json_depth(&json!({}), 10), 1);
    assert_eq!(json_depth(&json!({"a": [1, {"b": {}}]}), 10), 4);
    assert_eq!(json_depth(&nested(5), 10), 5);
    assert_eq!(json_depth(&nested(50), 10), 10);
}

#[test]
fn length_is_that_of_the_compact_text() {
    let v = json!({"a": [1, "two", null], "b": {"c": true}});
    assert_eq!(json_len(&v), serde_json::to_string(&v).unwrap().len());
}

#[test]
fn a_config_one_level_too_deep_names_the_depth_setting() {
    let limits = Limits {
        config_depth: 4,
        ..Limits::default()
    };
    assert_eq!(limits.check_config(&nested(4)), Ok(()));
    let e = limits.check_config(&nested(5)).unwrap_err();
    assert_eq!((e.limit, e.max, e.value), (Limit::ConfigDepth, 4, 5));
    assert!(e.to_string().contains("limits.config_depth"), "{e}");
}

#[test]
fn a_config_one_byte_too_large_names_the_size_setting() {
    let limits = Limits {
        config_bytes: 1024,
        ..Limits::default()
    };
    // {"k":"…"} is 8 bytes around the text.
    assert_eq!(limits.check_config(&json!({"k": "x".repeat(1016)})), Ok(()));
    let e = limits
        .check_config(&json!({"k": "x".repeat(1017)}))
        .unwrap_err();
    assert_eq!((e.limit, e.max, e.value), (Limit::ConfigBytes, 1024, 1025));
}

#[test]
fn the_defaults_are_valid_and_each_ceiling_is_enforced() {
    assert_eq!(Limits::default().validate(), Ok(()));
    let too_deep = Limits {
        tree_depth: MAX_TREE_DEPTH + 1,
        ..Limits::default()
    };
    assert_eq!(too_deep.validate().unwrap_err().0, "limits.tree_depth");
    let past_serde = Limits {
        config_depth: 200,
        ..Limits::default()
    };
    assert_eq!(past_serde.validate().unwrap_err().0, "limits.config_depth");
    let more_headers = Limits {
        explain_headers: MAX_EXPLAIN_HEADERS + 1,
        ..Limits::default()
    };
    assert_eq!(
        more_headers.validate().unwrap_err().0,
        "limits.explain_headers"
    );
    let no_span = Limits {
        replay_span: Duration::ZERO,
        ..Limits::default()
    };
    assert_eq!(no_span.validate().unwrap_err().0, "limits.replay_span");
}

#[test]
fn every_limit_has_its_own_reason_and_setting() {
    use std::collections::BTreeSet;
    let all = [
        Limit::TreeDepth,
        Limit::NodesPerOrg,
        Limit::ClaimsPerTeam,
        Limit::ConfigBytes,
        Limit::ConfigDepth,
        Limit::TokensPerTeam,
        Limit::TokenLifetime,
        Limit::ExplainHeaders,
        Limit::ExplainHeaderBytes,
        Limit::ExplainPayloadBytes,
        Limit::ReplayEvents,
        Limit::ReplaySpan,
        Limit::WebhookSourcesPerOrg,
        Limit::WebhookSecretBytes,
        Limit::ConfigHistory,
    ];
    let reasons: BTreeSet<_> = all.iter().map(|l| l.reason()).collect();
    let settings: BTreeSet<_> = all.iter().map(|l| l.setting()).collect();
    assert_eq!((reasons.len(), settings.len()), (all.len(), all.len()));
}
