//! The layout of the workspace's crates, checked by `tests/layout.rs`: which file imports which
//! (from `crate::` and `super::` paths in the sources), so a test can say that imports run one
//! way between levels and that no import circle forms between files.
//!
//! Imports are read from the sources outside comments and outside a file's trailing unit tests,
//! each resolved to the file of the longest module path it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path, e.g. `["http", "connect"]`; `[]` is `lib.rs`.
pub type Module = Vec<String>;

/// A crate's files and the files each imports.
pub struct Graph {
    /// Every module and its file.
    pub files: BTreeMap<Module, PathBuf>,
    /// Module -> the modules it imports (itself excluded).
    pub edges: BTreeMap<Module, BTreeSet<Module>>,
}

/// The import graph of the crate whose sources are in `src`.
pub fn graph(src: &Path) -> Graph {
    let files = modules(src);
    let mut edges = BTreeMap::new();
    for (module, file) in &files {
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
            let target = resolve(&path, &files);
            if &target != module {
                to.insert(target);
            }
        }
        edges.insert(module.clone(), to);
    }
    Graph { files, edges }
}

impl Graph {
    /// Imports from a lower level to a higher one, as "a (level) imports b (level)" lines; a file
    /// at no level (0) is reported too.
    pub fn upward(&self, level: impl Fn(&Module) -> (usize, &'static str)) -> Vec<String> {
        let mut wrong = Vec::new();
        for (from, tos) in &self.edges {
            let (lf, nf) = level(from);
            if lf == 0 {
                wrong.push(format!("{} is at no level: {nf}", name(from)));
            }
            for to in tos {
                let (lt, nt) = level(to);
                if lt > lf {
                    wrong.push(format!("{} ({nf}) imports {} ({nt})", name(from), name(to)));
                }
            }
        }
        wrong
    }

    /// An import circle, if there is one: its modules, the first repeated at the end.
    pub fn circle(&self) -> Option<Vec<String>> {
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
        self.edges.keys().find_map(|m| {
            visit(m, &self.edges, &mut state, &mut Vec::new()).map(|c| c.iter().map(name).collect())
        })
    }
}

pub fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
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
            if module == ["main"] || module.first().is_some_and(|m| m == "bin") {
                continue; // binaries: they see the library from outside
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
pub fn paths_in(line: &str, this: &Module) -> Vec<Module> {
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
        if rest[ident.len()..].starts_with('!') {
            return; // a macro (`crate::embedded!`): exported at the root, no file's import
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

pub fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}
