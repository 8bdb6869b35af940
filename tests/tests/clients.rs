//! End-to-end: clients generated from the served `/openapi.json` by the usual generators,
//! openapi-python-client and openapi-typescript (pinned in `scripts/tools clients`). Every
//! operation of the document must come out of both, with no warning about the document; then
//! part of a player's session is played through the generated Python client, over real TLS.
//!
//! Streaming (SSE) methods, as the document describes them (`text/event-stream`, the schema of
//! one event), in each generator:
//! - openapi-python-client generates them like the others (a module with `sync_detailed`, the
//!   required `Accept: text/event-stream` header as an argument), but reads a 200 as one JSON
//!   object, so its parsed answer fails on a stream: read the stream with the generated client's
//!   own `httpx` client (`client.get_httpx_client().stream(...)`) instead.
//! - openapi-typescript types them like the others; the 200's `text/event-stream` content is the
//!   shape of one event (`data`, `event`, `id`, `retry`), which an SSE reader yields one by one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edge_e2e::{Edge, tool};
use serde_json::Value;

/// One operation of the document.
struct Operation {
    id: String,
    tag: String,
    method: String,
    path: String,
    /// Its 200 is an event stream only (the chat endpoint, which also answers JSON, is not).
    streaming: bool,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let content = op["responses"]["200"]["content"].as_object();
            let streaming = content
                .is_some_and(|c| c.keys().all(|k| k == "text/event-stream") && !c.is_empty());
            out.push(Operation {
                id: op["operationId"].as_str().unwrap().to_owned(),
                tag: op["tags"][0].as_str().unwrap().to_owned(),
                method: method.clone(),
                path: path.clone(),
                streaming,
            });
        }
    }
    out
}

/// openapi-python-client's `snake_case` (its `strings.split_words`): when the name has capitals,
/// each `[A-Z]?[a-z]+` run is a word; then `.`, ` `, `_` and `-` split words; lower-cased, joined
/// by `_`. `quest.ListAvailable` -> `quest_list_available`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut spaced = String::new();
    if chars.iter().any(|c| c.is_ascii_uppercase()) {
        let mut i = 0;
        while i < chars.len() {
            let lower_at = |j: usize| chars.get(j).is_some_and(|c| c.is_ascii_lowercase());
            let start = if chars[i].is_ascii_uppercase() && lower_at(i + 1) {
                Some(i + 1)
            } else if lower_at(i) {
                Some(i)
            } else {
                None
            };
            match start {
                Some(mut j) => {
                    while lower_at(j) {
                        j += 1;
                    }
                    spaced.push(' ');
                    spaced.extend(&chars[i..j]);
                    spaced.push(' ');
                    i = j;
                }
                None => {
                    spaced.push(chars[i]);
                    i += 1;
                }
            }
        }
    } else {
        spaced = name.to_owned();
    }
    spaced
        .split(['.', ' ', '_', '-'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

#[test]
fn snake_case_is_the_generators() {
    assert_eq!(snake_case("quest.ListAvailable"), "quest_list_available");
    assert_eq!(
        snake_case("auth.IssueStreamTicket"),
        "auth_issue_stream_ticket"
    );
    assert_eq!(snake_case("probe.healthz"), "probe_healthz");
    assert_eq!(snake_case("openapi"), "openapi");
    assert_eq!(snake_case("npc.GetNPC"), "npc_get_npc");
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A generator's run in `dir`: it must succeed and say nothing about problems in the document.
fn generated(what: &str, out: Output, dir: &Path) {
    let said = show(&out);
    assert!(out.status.success(), "{what} failed: {said}");
    // Paths it echoes are left out: a random temporary name could spell a word below.
    let lower = said.replace(dir.to_str().unwrap(), "DIR").to_lowercase();
    for word in ["warn", "error", "skipping", "unsupported", "⚠"] {
        assert!(!lower.contains(word), "{what} says {word:?}: {said}");
    }
}

/// The Python client, as the package `edge_client` in `dir`. The virtualenv's `bin` goes first
/// on PATH: the generator formats its output with the pinned `ruff` from there.
fn python_client(schema: &Path, dir: &Path) -> PathBuf {
    let generator = tool("python-client/bin/openapi-python-client");
    let bin = generator.parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let package = dir.join("edge_client");
    let out = Command::new(&generator)
        .env("PATH", path)
        .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
        .arg(schema)
        .arg("--output-path")
        .arg(&package)
        .output()
        .unwrap();
    generated("openapi-python-client", out, dir);
    package
}

/// The TypeScript types, as one `.d.ts` file.
fn typescript_types(schema: &Path, dir: &Path) -> String {
    let file = dir.join("schema.d.ts");
    let out = Command::new(tool(
        "openapi-typescript/node_modules/.bin/openapi-typescript",
    ))
    .arg(schema)
    .arg("-o")
    .arg(&file)
    .output()
    .unwrap();
    generated("openapi-typescript", out, dir);
    std::fs::read_to_string(file).unwrap()
}

/// The block of `interface` NAME in the generated TypeScript.
fn interface<'a>(ts: &'a str, name: &str) -> &'a str {
    let start = ts
        .find(&format!("export interface {name} {{\n"))
        .unwrap_or_else(|| panic!("no `{name}` interface"));
    let end = ts[start..].find("\n}\n").unwrap();
    &ts[start..start + end]
}

/// The TypeScript of operation `id` in the `operations` interface (a key is quoted unless it is
/// an identifier).
fn ts_operation<'a>(operations: &'a str, id: &str) -> Option<&'a str> {
    let start = operations
        .find(&format!("\n    \"{id}\": {{\n"))
        .or_else(|| operations.find(&format!("\n    {id}: {{\n")))?;
    let end = operations[start + 1..]
        .find("\n    }")
        .map_or(operations.len(), |e| start + 1 + e);
    Some(&operations[start..end])
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_clients_take_every_operation_and_play_a_session() {
    let edge = Edge::start(&[]);
    let r = edge.client().get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.json();
    let work = tempfile::tempdir().unwrap();
    let schema = work.path().join("openapi.json");
    std::fs::write(&schema, &r.body).unwrap();

    // Each generator once, side by side.
    let (package, ts) = std::thread::scope(|s| {
        let py = s.spawn(|| python_client(&schema, work.path()));
        let ts = s.spawn(|| typescript_types(&schema, work.path()));
        (py.join().unwrap(), ts.join().unwrap())
    });

    let ops = operations(&doc);
    let unary = ops.iter().filter(|o| !o.streaming).count();
    assert!(unary > 80, "only {unary} unary operations in the document");
    let paths = interface(&ts, "paths");
    let ts_ops = interface(&ts, "operations");
    let mut missing = Vec::new();
    for op in &ops {
        // Python: api/<tag>/<operation>.py, sending this method to this path.
        let module = package
            .join("api")
            .join(snake_case(&op.tag))
            .join(format!("{}.py", snake_case(&op.id)));
        let code = std::fs::read_to_string(&module).unwrap_or_default();
        let python = code.contains(&format!("\"method\": \"{}\"", op.method))
            && code.contains(&format!("\"url\": \"{}\"", op.path))
            && code.contains("def sync_detailed(")
            && (!op.streaming || op.method == "get" || code.contains("accept:"));
        if !python {
            missing.push(format!("python {} ({})", op.id, module.display()));
        }
        // TypeScript: the path names the operation, whose 200 has the document's content type.
        let typed = paths.contains(&format!("\n    \"{}\": {{\n", op.path))
            && paths.contains(&format!("{}: operations[\"{}\"];", op.method, op.id))
            && ts_operation(ts_ops, &op.id).is_some_and(|t| {
                let kind = if op.streaming {
                    "\"text/event-stream\": "
                } else {
                    "\"application/json\": "
                };
                t.contains(kind)
            });
        if !typed {
            missing.push(format!("typescript {}", op.id));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} operations ({unary} unary) not generated: {missing:#?}",
        missing.len(),
        ops.len()
    );
    println!(
        "{} operations ({unary} unary, {} streaming) in both clients",
        ops.len(),
        ops.len() - unary
    );

    // The session, through the generated Python client, as a new player.
    let script = work.path().join("session.py");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/session.py"),
        &script,
    )
    .unwrap();
    let base = format!("https://localhost:{}", edge.https.port());
    let out = tokio::task::spawn_blocking({
        let (script, ca) = (script.clone(), edge.ca());
        move || {
            Command::new(tool("python-client/bin/python"))
                .arg(&script)
                .args([base.as_str(), ca.to_str().unwrap(), "wren_of_hearth"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the session failed: {}\n(edge log)\n{}",
        show(&out),
        edge.logs()
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("session ok"), "{said}");
    println!("{said}");
}
