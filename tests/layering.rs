//! The module layering of docs/architecture.md, checked: every `crate::…` path in `src/` points
//! to a module in the same layer or below, and no modules import each other in a cycle. A new
//! top-level module must be given a layer here (and in docs/architecture.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers, lowest first. Within a layer, imports are allowed as long as they form no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["http", "secret", "db", "calibrate", "clock"]),
    ("config", &["config"]),
    ("cookies, password", &["cookies", "password"]),
    ("domain", &["users", "session", "csrf", "mfa", "passkeys", "identity", "ratelimit", "mail", "audit"]),
    ("services", &["api", "proxy", "spa", "cors", "metrics"]),
    ("server", &["server", "listener", "devcert"]),
    ("cli", &["cli"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// `crate::x` and `crate::{x, y::z}` paths in `code`, comments removed.
fn imports(code: &str) -> BTreeSet<String> {
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `mycrate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Only the group's top-level items name modules: in `{a, b::{c, d}}`, `c` and `d`
            // are inside `b`.
            let (mut depth, mut item, mut naming) = (0usize, String::new(), true);
            for c in group.chars() {
                match c {
                    '}' if depth == 0 => break,
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(std::mem::take(&mut item));
                        naming = true;
                    }
                    c if depth == 0 && naming && (c.is_alphanumeric() || c == '_') => item.push(c),
                    c if depth == 0 && naming && c.is_whitespace() && item.is_empty() => {}
                    _ => naming = false,
                }
            }
            out.insert(item);
        } else {
            out.insert(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out.retain(|m| !m.is_empty() && m != "self" && m != "super");
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let targets = imports(&std::fs::read_to_string(&file).unwrap());
        edges.entry(module.clone()).or_default().extend(targets.into_iter().filter(|t| *t != module));
    }
    edges
}

#[test]
fn every_module_has_a_layer_and_imports_point_down() {
    let edges = graph();
    let mut problems = Vec::new();
    for (from, targets) in &edges {
        let Some(lf) = layer_of(from) else {
            problems.push(format!("src/{from}: no layer; add it to LAYERS in tests/layering.rs"));
            continue;
        };
        for to in targets.iter().filter(|t| edges.contains_key(*t)) {
            match layer_of(to) {
                Some(lt) if lt > lf => {
                    problems.push(format!("{from} ({}) imports {to} ({}), a higher layer", LAYERS[lf].0, LAYERS[lt].0))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn no_module_cycles() {
    let edges = graph();
    // Depth-first search for a back edge; report one cycle path.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for t in edges.get(m).into_iter().flatten().filter(|t| edges.contains_key(*t)) {
            match state.get(t.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == t).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(t.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(t, edges, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m.as_str()) {
            let cycle = visit(m, &edges, &mut state, &mut Vec::new());
            assert!(cycle.is_none(), "module cycle: {}", cycle.unwrap().join(" → "));
        }
    }
}

#[test]
fn the_parser_reads_paths_and_groups() {
    let found = imports("use crate::{a, b::c};\nlet x = crate::d::e(); // crate::f\nuse mycrate::g;");
    assert_eq!(found, ["a", "b", "d"].iter().map(|s| s.to_string()).collect());
    let nested = imports("use crate::{\n    h::{x, y},\n    i,\n};");
    assert_eq!(nested, ["h", "i"].iter().map(|s| s.to_string()).collect());
}

/// The two migration folders describe one schema: the same numbers and names, so a change made
/// for one backend is not forgotten for the other.
#[test]
fn sqlite_and_postgres_migrations_match() {
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}
