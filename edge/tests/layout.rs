//! The layout of `edge/src`, checked: imports run one way, from the composition root down to the
//! shared modules, and no import circle forms between files. See the module doc of `lib.rs`.
//!
//! Imports are read from the sources (`crate::…` and `super::…` paths outside comments), each
//! resolved to the file of the longest module path it names.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path, e.g. `["http", "connect"]`; `[]` is `lib.rs`.
type Module = Vec<String>;

/// Levels, top first. A file may import files of its own level or below.
fn level(module: &Module) -> (usize, &'static str) {
    let first = module.first().map(String::as_str).unwrap_or("");
    let second = module.get(1).map(String::as_str).unwrap_or("");
    match (first, second) {
        ("" | "cli" | "config" | "state" | "stack" | "worker" | "ops", _) | ("http", "server") => {
            (5, "the composition root, ops and the server")
        }
        ("http", _) => (4, "the protocol adapters"),
        ("layers" | "router" | "store", _) => (3, "the layers, the router and the store"),
        ("nats", _) => (2, "NATS"),
        ("error" | "stats" | "trace" | "private_files", _) => (1, "the shared modules"),
        _ => (0, "unknown: add it to the layout test"),
    }
}

fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut module: Module = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module == ["main"] {
                continue; // the binary: it sees the library from outside
            }
            if module.last().is_some_and(|l| l == "mod" || l == "lib") {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

/// The paths a line names, as segments after `crate::` or resolved from `super::`.
fn paths_in(line: &str, this: &Module) -> Vec<Module> {
    let mut out = Vec::new();
    for (start, prefix) in [("crate::", 0usize), ("super::", 1)] {
        let mut rest = line;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            rest = &rest[at + start.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
                continue; // `foo::super::`, `$crate::`
            }
            let mut base: Module = if prefix == 0 {
                Vec::new()
            } else {
                // `super` is the parent module, whether this is `x.rs` or `x/mod.rs`.
                let mut b = this.clone();
                b.pop();
                b
            };
            let mut tail = rest;
            while let Some(t) = tail.strip_prefix("super::") {
                base.pop();
                tail = t;
            }
            expand(tail, base, &mut out);
        }
    }
    out
}

/// Reads one path from `tail` onto `base`, expanding `{a, b::c}` groups at any depth.
fn expand(tail: &str, mut base: Module, out: &mut Vec<Module>) {
    let mut rest = tail.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&item, base.clone(), out);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            if !item.trim().is_empty() {
                expand(&item, base, out);
            }
            return;
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() || ident == "self" {
            break;
        }
        base.push(ident.clone());
        match rest[ident.len()..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    if !base.is_empty() {
        out.push(base);
    }
}

/// The longest known module that `path` starts with.
fn resolve(path: &Module, known: &BTreeMap<Module, PathBuf>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| known.contains_key(m))
        .unwrap_or_default()
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    let mut edges = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests sit at the end of a file, and may reach anywhere. Comments are no imports;
        // a `use` may span lines, so the rest is read as one.
        let code: Vec<&str> = text
            .lines()
            .take_while(|l| l.trim() != "#[cfg(test)]")
            .map(str::trim)
            .filter(|l| !l.starts_with("//"))
            .map(|l| l.split(" //").next().unwrap_or(l))
            .collect();
        let mut to = BTreeSet::new();
        for path in paths_in(&code.join(" "), module) {
            let target = resolve(&path, &known);
            if &target != module {
                to.insert(target);
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

#[test]
fn imports_run_one_way() {
    let edges = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &edges {
        let (lf, nf) = level(from);
        assert!(lf > 0, "{} is at no level: {nf}", name(from));
        for to in tos {
            let (lt, nt) = level(to);
            if lt > lf {
                wrong.push(format!("{} ({nf}) imports {} ({nt})", name(from), name(to)));
            }
        }
    }
    assert!(wrong.is_empty(), "imports upward:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_circle() {
    let edges = graph();
    // Depth-first search with colours; a grey node reached again closes a circle.
    fn visit(
        m: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, u8>,
        path: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match state.get(m) {
            Some(1) => {
                let from = path.iter().position(|p| p == m).unwrap_or(0);
                let mut circle = path[from..].to_vec();
                circle.push(m.clone());
                return Some(circle);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(m.clone(), 1);
        path.push(m.clone());
        for to in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(to, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if let Some(circle) = visit(m, &edges, &mut state, &mut Vec::new()) {
            let names: Vec<String> = circle.iter().map(name).collect();
            panic!("import circle: {}", names.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_imports() {
    // The parser itself: a group, a nested path, `super` from a file and from a folder's mod.rs.
    let this: Module = vec!["http".into(), "connect".into()];
    let got = paths_in(
        "use crate::{error::status_response, router, AppState};",
        &this,
    );
    assert_eq!(
        got,
        vec![
            vec!["error".to_string(), "status_response".into()],
            vec!["router".into()],
            vec!["AppState".into()],
        ]
    );
    assert_eq!(
        paths_in("use super::sse::frame;", &this),
        vec![vec!["http".to_string(), "sse".into(), "frame".into()]]
    );
    let this_mod: Module = vec!["router".into(), "idempotency".into()];
    assert_eq!(
        paths_in("super::route_method(m, p)", &this_mod),
        vec![vec!["router".to_string(), "route_method".into()]]
    );
    let edges = graph();
    assert!(
        edges[&vec!["http".to_string(), "connect".into()]].contains(&vec!["error".to_string()]),
        "connect's use of error is seen"
    );
}
