//! Target `merge_patch`: config writes as the tenancy applies them (`domain::config`): RFC 7386 merge
//! patch, the diff kept in the history, the effective merge, and locked paths.

use crate::common::{json_object, json_value, key, text};
use ifox::domain::config::{
    apply_merge_patch, check_locks, check_pointer, diff, effective, patched, replaced,
};
use proptest::prelude::*;
use serde_json::Value;

/// A stored config: an object without `null` members (a write drops them, see `replaced`).
fn stored() -> impl Strategy<Value = Value> {
    json_object().prop_map(|v| replaced(&v).expect("an object"))
}

/// Whether any object member, at any depth of objects, is `null` (an array is a value a patch
/// sets whole, with whatever it holds).
fn has_null_member(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().any(|x| x.is_null() || has_null_member(x)),
        _ => false,
    }
}

/// A JSON Pointer into generated documents: through the shared key alphabet (escaped), sometimes
/// any text.
fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(key(), 1..4).prop_map(|parts| {
            parts.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect()
        }),
        1 => text(),
    ]
}

proptest! {
    /// Merge patch is idempotent: applying the same patch twice gives what applying it once gave.
    #[test]
    fn merge_patch_is_idempotent(target in json_value(), patch in json_value()) {
        let mut once = target;
        apply_merge_patch(&mut once, &patch);
        let mut twice = once.clone();
        apply_merge_patch(&mut twice, &patch);
        prop_assert_eq!(once, twice);
    }

    /// A write never stores a `null` member: patching a stored config with any object patch gives
    /// an object without one (`null` removes, it is never kept).
    #[test]
    fn a_patched_config_holds_no_null_member(current in stored(), patch in json_value()) {
        match patched(&current, &patch) {
            Ok(next) => {
                prop_assert!(next.is_object());
                prop_assert!(!has_null_member(&next), "{}", next);
            }
            Err(_) => prop_assert!(!patch.is_object()),
        }
    }

    /// The history's diff replays the write: patching the old config with `diff(old, new)` gives
    /// exactly the new one, and the diff of a config with itself is empty.
    #[test]
    fn the_diff_patches_old_into_new(old in stored(), new in stored()) {
        let d = diff(&old, &new);
        let mut replayed = old.clone();
        apply_merge_patch(&mut replayed, &d);
        prop_assert_eq!(&replayed, &new);
        prop_assert_eq!(diff(&new, &new), Value::Object(Default::default()));
    }

    /// The effective merge never loses what the deepest node set: every leaf of a team's raw config
    /// (a scalar, an array or an empty object... as a path) is in its effective config unchanged,
    /// whatever its ancestors hold.
    #[test]
    fn a_teams_own_values_win_in_its_effective_config(org in stored(), unit in stored(), team in stored()) {
        let eff = effective([&org, &unit, &team]);
        let mut leaves = Vec::new();
        leaf_paths(&team, String::new(), &mut leaves);
        for path in leaves {
            let own = team.pointer(&path);
            if own.is_some_and(|v| !v.is_object()) {
                prop_assert_eq!(eff.pointer(&path), own, "at {}", path);
            }
        }
    }

    /// A write can never change a locked path: when a team's write passes the locks of its
    /// ancestor, the team's effective value at every locked path is what it was before the write,
    /// or (when an older config hid it) the locking node's own value again.
    #[test]
    fn a_write_that_passes_the_locks_never_changes_a_locked_path(
        ancestor in stored(),
        paths in prop::collection::vec(pointer(), 1..3),
        old in stored(),
        patch in json_object(),
    ) {
        let paths: Vec<String> = paths.into_iter().filter(|p| check_pointer(p).is_ok()).collect();
        let new = patched(&old, &patch).expect("an object patch");
        if check_locks(&[("unit", paths.clone())], &old, &new).is_err() {
            return Ok(());
        }
        let before = effective([&ancestor, &old]);
        let after = effective([&ancestor, &new]);
        for p in &paths {
            let now = after.pointer(p);
            prop_assert!(
                now == before.pointer(p) || now == ancestor.pointer(p),
                "lock {} moved from {:?} to {:?} (locked value {:?}); old {} new {}",
                p, before.pointer(p), now, ancestor.pointer(p), old, new
            );
        }
    }

    /// A lock path is accepted exactly when it is a JSON Pointer naming at least one key; any text
    /// gets an answer, never a panic.
    #[test]
    fn lock_paths_are_pointers(path in text()) {
        prop_assert_eq!(check_pointer(&path).is_ok(), path.len() >= 2 && path.starts_with('/'));
    }
}

fn leaf_paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                leaf_paths(
                    child,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => out.push(at),
    }
}

/// Regression: a team wrote an object where its unit locked an array element (`/a/0` of
/// `{"a": [1]}`); the lock check passed (the ancestor "stays an object") and the effective merge
/// replaced the array, so the locked value was gone. Such a write now breaks the lock.
#[test]
fn an_object_written_over_a_locked_array_element_breaks_the_lock() {
    let unit = serde_json::json!({"a": [1]});
    let (old, new) = (serde_json::json!({}), serde_json::json!({"a": {}}));
    assert_eq!(
        effective([&unit, &new]).pointer("/a/0"),
        None,
        "the merge hides it"
    );
    let locks = [("unit", vec!["/a/0".to_owned()])];
    assert!(check_locks(&locks, &old, &new).is_err());
    // A sibling key under an object ancestor is still the team's own business.
    let locks = [("unit", vec!["/a/b".to_owned()])];
    assert!(check_locks(&locks, &old, &serde_json::json!({"a": {"c": 1}})).is_ok());
}
