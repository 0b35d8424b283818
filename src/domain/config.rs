//! Configuration semantics, pure: JSON Merge Patch (RFC 7386) for writes, the deep merge that makes a
//! node's effective config from its chain (org → units → node), "explain" (which node set each leaf),
//! the diff kept in the history, and locked paths.
//!
//! Paths (locks, explain) are JSON Pointers (RFC 6901): `/llm/model`. They are unambiguous for keys that
//! contain dots, and `serde_json::Value::pointer` reads them.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a config must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("{path:?} is not a JSON Pointer: it must start with '/' and name at least one key")]
    BadPointer { path: String },
}

/// The JSON type name, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Demands a JSON object (every stored config is one).
pub fn require_object(value: &Value) -> Result<&Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or(ConfigError::NotAnObject(type_name(value)))
}

/// RFC 7386 in place: objects merge, `null` removes a key, anything else replaces.
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            apply_merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A node's new raw config after a merge patch; the patch itself must be an object.
pub fn patched(current: &Value, patch: &Value) -> Result<Value, ConfigError> {
    require_object(patch)?;
    let mut next = current.clone();
    apply_merge_patch(&mut next, patch);
    Ok(next)
}

/// A full replace: the body becomes the config (nulls dropped, as a patch onto `{}` would).
pub fn replaced(body: &Value) -> Result<Value, ConfigError> {
    patched(&Value::Object(Map::new()), body)
}

/// The merge patch that turns `old` into `new` (what the history records as the diff).
pub fn diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in new {
                match old.get(key) {
                    Some(prev) if prev == value => {}
                    Some(prev @ Value::Object(_)) if value.is_object() => {
                        patch.insert(key.clone(), diff(prev, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// The effective-config merge: objects merge key by key, arrays and scalars from `overlay` replace,
/// an empty object changes nothing.
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(slot) => deep_merge(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The effective config of the last node of `chain` (ordered from the org down).
pub fn effective<'a>(chain: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut out = Value::Object(Map::new());
    for raw in chain {
        deep_merge(&mut out, raw);
    }
    out
}

/// For each leaf of `effective` (a scalar, an array or an empty object), the deepest node of `chain`
/// whose raw config holds that path: that node set the value everyone below inherits.
pub fn explain<'a, N: Clone>(
    effective: &Value,
    chain: &'a [(N, &'a Value)],
) -> BTreeMap<String, N> {
    let mut sources = BTreeMap::new();
    let mut leaves = Vec::new();
    collect_leaves(effective, &mut String::new(), &mut leaves);
    for path in leaves {
        if let Some((node, _)) = chain
            .iter()
            .rev()
            .find(|(_, raw)| raw.pointer(&path).is_some())
        {
            sources.insert(path, node.clone());
        }
    }
    sources
}

fn collect_leaves(value: &Value, prefix: &mut String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let len = prefix.len();
                prefix.push('/');
                prefix.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect_leaves(child, prefix, out);
                prefix.truncate(len);
            }
        }
        _ => out.push(prefix.clone()),
    }
}

/// Validates a lock path (a JSON Pointer naming at least one key).
pub fn check_pointer(path: &str) -> Result<(), ConfigError> {
    if path.len() < 2 || !path.starts_with('/') {
        return Err(ConfigError::BadPointer {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// A write below a node that locked `path` changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockViolation<N> {
    pub path: String,
    pub locked_by: N,
}

/// Checks a write from `old` to `new` (the writing node's raw config) against the locks of the node's
/// ancestors (`(node, paths)`, any order). See [`breaks_lock`] for what counts.
pub fn check_locks<N: Clone>(
    locks: &[(N, Vec<String>)],
    old: &Value,
    new: &Value,
) -> Result<(), LockViolation<N>> {
    for (node, paths) in locks {
        for path in paths {
            if breaks_lock(path, old, new) {
                return Err(LockViolation {
                    path: path.clone(),
                    locked_by: node.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Whether a write from `old` to `new` breaks the lock on `path`: the value (or absence) at the path
/// itself changed — a write to it or anything below it — or an ANCESTOR of it was removed, or
/// replaced by something that is not an object. The effective merge lets a deeper node's scalar, array
/// or missing object hide the locked value set above, so comparing the path alone (`{"security":
/// false}` leaves `/security/pii_redaction` absent before and after) let a team drop a locked value.
/// An ancestor that stays an object (a sibling key written) is the writer's own business — unless
/// the next step of the path is a number: there the locking node may hold an array, which an object
/// written below replaces in the effective merge (`{"a": {}}` hides a locked `/a/0`), so any change
/// of that ancestor breaks the lock.
pub fn breaks_lock(path: &str, old: &Value, new: &Value) -> bool {
    if old.pointer(path) != new.pointer(path) {
        return true;
    }
    ancestors(path).any(|(at, next)| {
        let now = new.pointer(at);
        let may_index_an_array = !next.is_empty() && next.bytes().all(|b| b.is_ascii_digit());
        old.pointer(at) != now && (may_index_an_array || !now.is_some_and(Value::is_object))
    })
}

/// The proper ancestors of a JSON Pointer, outermost first, each with the path's next token
/// (`/a/b/c` → (`/a`, `b`), (`/a/b`, `c`)); the root is left out (every config is an object).
fn ancestors(path: &str) -> impl Iterator<Item = (&str, &str)> {
    path.match_indices('/').skip(1).map(move |(at, _)| {
        let next = path[at + 1..].split('/').next().unwrap_or_default();
        (&path[..at], next)
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
