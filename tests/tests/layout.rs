//! The workspace's layout, checked: in `edge` and `handlers` imports run one way, from the
//! composition root down to the shared modules, and in every crate (`edge`, `handlers`, `proto`
//! and this one) no import circle forms between files. The reading of imports is
//! `edge_e2e::layout`; the levels are here, one function per crate.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use edge_e2e::layout::{Module, graph, paths_in};

fn src(krate: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

/// `edge/src`, levels top first: a file may import files of its own level or below. See the
/// module doc of `edge/src/lib.rs`.
fn edge_level(module: &Module) -> (usize, &'static str) {
    let first = module.first().map(String::as_str).unwrap_or("");
    let second = module.get(1).map(String::as_str).unwrap_or("");
    match (first, second) {
        ("" | "cli" | "config" | "state" | "stack" | "worker" | "ops", _) | ("http", "server") => {
            (5, "the composition root, ops and the server")
        }
        ("http", _) => (4, "the protocol adapters"),
        ("layers" | "router" | "store", _) => (3, "the layers, the router and the store"),
        ("nats", _) => (2, "NATS"),
        ("error" | "stats" | "trace" | "log_lines" | "private_files", _) => {
            (1, "the shared modules")
        }
        _ => (0, "unknown: add it to the layout test"),
    }
}

/// `handlers/src`, levels top first. See the module doc of `handlers/src/lib.rs`.
fn handlers_level(module: &Module) -> (usize, &'static str) {
    match module.first().map(String::as_str).unwrap_or("") {
        "" => (4, "the registry (lib.rs)"),
        "content" => (3, "the content of every service, loaded together"),
        "services" => (2, "the services"),
        "kit" => (1, "the kit"),
        _ => (0, "unknown: add it to the layout test"),
    }
}

#[test]
fn edge_imports_run_one_way() {
    let wrong = graph(&src("edge")).upward(edge_level);
    assert!(wrong.is_empty(), "imports upward:\n{}", wrong.join("\n"));
}

#[test]
fn handlers_imports_run_one_way() {
    let g = graph(&src("handlers"));
    let wrong = g.upward(handlers_level);
    assert!(wrong.is_empty(), "imports upward:\n{}", wrong.join("\n"));
    // Every service has the same shape: a folder with its handler in mod.rs.
    let services: Vec<&Module> = g
        .files
        .keys()
        .filter(|m| m.len() == 2 && m[0] == "services")
        .collect();
    for s in proto::SERVICES {
        let m: Module = vec!["services".into(), s.short.into()];
        assert!(
            g.files.get(&m).is_some_and(|f| f.ends_with("mod.rs")),
            "handlers/src/services/{}/mod.rs holds the {} service",
            s.short,
            s.short
        );
    }
    assert!(services.len() >= proto::SERVICES.len());
}

#[test]
fn no_import_circle_in_any_crate() {
    for krate in ["edge", "handlers", "proto", "tests"] {
        if let Some(circle) = graph(&src(krate)).circle() {
            panic!("import circle in {krate}: {}", circle.join(" -> "));
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
    let edges = graph(&src("edge")).edges;
    assert!(
        edges[&vec!["http".to_string(), "connect".into()]].contains(&vec!["error".to_string()]),
        "connect's use of error is seen"
    );
    let handlers = graph(&src("handlers")).edges;
    assert!(
        handlers[&vec!["services".to_string(), "state".into()]]
            .contains(&vec!["kit".to_string(), "store".into()]),
        "state's use of the store is seen"
    );
}
