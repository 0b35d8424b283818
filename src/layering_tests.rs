//! The module layering, checked: every `crate::<module>` reference in a top-level module's source
//! must be an edge of [`ALLOWED`], and [`ALLOWED`] has no cycle, so no cycle between top-level
//! modules can come back. A new top-level module fails this test until it is added to the table.
//!
//! The source tree is read with `std::fs`; every mention counts (code, `use` lists, doc links), since
//! a doc link is a dependency too. `super::` never leaves a top-level module, so only `crate::`
//! paths are read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may use ("may use" = may name `crate::<it>`). Levels, bottom up:
/// - `domain`: pure rules and the event contract; uses nothing of ours.
/// - `store` (database access) over `domain`; `tenancy` (the service and catalog) over `store`.
///   Neither uses the infrastructure: the store gets plain values, tenancy's change notices go to a
///   `ChangeSink` that the bus side implements.
/// - Infrastructure: `settings` (the settings of every role, so it never imports a role), then
///   `telemetry`, then `bus`. None uses tenancy, a role, http, app or cli.
/// - `http`: state, error answer and extractors every HTTP surface shares; it names no role (app
///   merges the roles' routes), so the roles can use it.
/// - Roles: `ingest`, `router`, `provision`, `admin`, `bridge`. A role uses no other role except:
///   `admin` uses `router` (route explain runs the router's pure core) and `bridge` (the runs API
///   and agents' status reports go through the run lifecycle), and `bridge` uses `router` (the
///   agent-run document it delivers is the router's).
/// - `app` assembles the roles; `cli` runs everything.
const ALLOWED: &[(&str, &[&[&str]])] = &[
    ("domain", &[]),
    ("store", &[&["domain"]]),
    ("tenancy", &[&["domain", "store"]]),
    ("settings", &[&["domain"]]),
    ("telemetry", &[&["domain", "settings"]]),
    ("bus", &[&["domain", "settings", "telemetry"]]),
    ("http", &[BELOW_HTTP]),
    ("ingest", &[BELOW_ROLES]),
    ("router", &[BELOW_ROLES]),
    ("provision", &[BELOW_ROLES]),
    ("admin", &[BELOW_ROLES, &["router", "bridge"]]),
    ("bridge", &[BELOW_ROLES, &["router"]]),
    ("app", &[BELOW_ROLES, ROLES]),
    ("cli", &[BELOW_ROLES, ROLES, &["app"]]),
];
/// Everything under `http`: the data levels and the infrastructure.
const BELOW_HTTP: &[&str] = &["domain", "store", "tenancy", "settings", "telemetry", "bus"];
/// What every role may use.
const BELOW_ROLES: &[&str] = &[
    "domain",
    "store",
    "tenancy",
    "settings",
    "telemetry",
    "bus",
    "http",
];
const ROLES: &[&str] = &["ingest", "router", "provision", "admin", "bridge"];

/// Files of the crate root itself, not of a module: the module list, the binary, the crate-wide
/// tests (this one, the metrics catalog's).
const ROOT_FILES: [&str; 4] = [
    "lib.rs",
    "main.rs",
    "layering_tests.rs",
    "metrics_catalog_tests.rs",
];

fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(m, groups)| (*m, groups.iter().flat_map(|g| g.iter().copied()).collect()))
        .collect()
}

/// The top-level modules named by `crate::` paths in `text` (`crate::a::b`, `crate::{a, c::d}`;
/// `$crate::` of macros and `othercrate::` are not ours).
fn references(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..i].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (user, used) → the first file that makes the reference.
fn edges() -> BTreeMap<(String, String), PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let first = first.as_os_str().to_str().expect("utf-8 path");
        if ROOT_FILES.contains(&first) {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for used in references(&text) {
            if used != module {
                out.entry((module.clone(), used))
                    .or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    out
}

#[test]
fn every_reference_between_top_level_modules_follows_the_layering() {
    let allowed = allowed();
    let mut wrong = Vec::new();
    for ((user, used), file) in edges() {
        let Some(may_use) = allowed.get(user.as_str()) else {
            wrong.push(format!(
                "{user} (in {}) is not in ALLOWED; give it a level",
                file.display()
            ));
            continue;
        };
        if !allowed.contains_key(used.as_str()) {
            wrong.push(format!(
                "{} names crate::{used}, which is not in ALLOWED",
                file.display()
            ));
        } else if !may_use.contains(used.as_str()) {
            wrong.push(format!(
                "{} ({user}) uses crate::{used}, against the layering",
                file.display()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "layering violations:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_allowed_table_has_no_cycle() {
    // Depth-first search for a back edge; the path found is printed.
    fn visit<'a>(
        m: &'a str,
        allowed: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == m) {
            panic!("cycle in ALLOWED: {} → {m}", path[i..].join(" → "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m);
        for used in allowed.get(m).into_iter().flatten() {
            assert!(allowed.contains_key(used), "{m} may use unknown {used}");
            visit(used, allowed, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let allowed = allowed();
    let mut done = BTreeSet::new();
    for m in allowed.keys() {
        visit(m, &allowed, &mut Vec::new(), &mut done);
    }
}

#[test]
fn references_are_read_from_paths_and_use_lists_but_not_other_crates() {
    let found = references(
        "use crate::{a::b, c::{d, e}, f};\n crate::g::h(); $crate::i; mycrate::j; /// [`crate::k`]",
    );
    let want: BTreeSet<String> = ["a", "c", "f", "g", "k"].map(String::from).into();
    assert_eq!(found, want);
}
