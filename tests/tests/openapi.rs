//! End-to-end: the OpenAPI description, served by the real binary, validated by an OpenAPI
//! validator, and held to by the edge under a property-based conformance run (schemathesis).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use edge_e2e::{Edge, run_edge, scenarios, tool};

fn show(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn served_without_auth_equal_to_the_command_and_valid() {
    let edge = Edge::start(&[]);
    let r = edge.client().get("/openapi.json").await;
    assert_eq!(r.status, 200, "no token needed: {}", r.text());
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/json",
        "{:?}",
        r.headers
    );
    let served = r.json();
    let (code, out, err) = run_edge(&["openapi"]);
    assert_eq!(code, 0, "{err}");
    let written: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(served, written, "one document, served and written");
    assert_eq!(served["openapi"], "3.1.0");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    let (code, _, err) = run_edge(&["openapi", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let out = Command::new(tool("api/bin/openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "not valid OpenAPI: {}", show(&out));
}

/// One schemathesis run against `edge` as `token`: positive and negative data, and every check
/// that needs no extra data. Event subscriptions never end by design, so they are left out here
/// (tests/tests/events.rs covers them); the deadline header is fixed so timing is not fuzzed (a
/// 1 ms deadline rightly answers 504).
fn schemathesis(edge: &Edge, schema: &std::path::Path, token: &str) -> Output {
    let seed = std::env::var("EDGE_FUZZ_SEED").unwrap_or_else(|_| "20261130".into());
    // Its crash cache (.schemathesis/) replays earlier runs' failures first: each run gets a
    // fresh one, so no run depends on another's leftovers.
    let cwd = tempfile::tempdir().unwrap();
    Command::new(tool("api/bin/schemathesis"))
        .current_dir(cwd.path())
        .args(["run", schema.to_str().unwrap()])
        .args(["--url", &format!("https://localhost:{}", edge.https.port())])
        .args(["--tls-verify", edge.ca().to_str().unwrap()])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Connect-Timeout-Ms: 20000"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
        ])
        .args([
            "--exclude-operation-id-regex",
            r"^(events\.Subscribe|events\.stream)$",
        ])
        .args(["--mode", "all", "-n", "25", "--seed", &seed])
        .args(["--request-timeout", "25", "--generation-database", "none"])
        // One worker per run: hypothesis shares caches between a run's threads, and two
        // workers made a run fail on its own (a FlakyFailure inside hypothesis, not an answer of
        // the edge). The player and service runs still go side by side, as two processes.
        .args(["--no-color", "--workers", "1"])
        .output()
        .unwrap()
}

/// The Connect operations an edge answered 2xx, from its `edge_http_requests_total`.
async fn answered_2xx(edge: &Edge) -> std::collections::BTreeSet<String> {
    edge.admin_text("/metrics")
        .await
        .lines()
        .filter(|l| l.starts_with("edge_http_requests_total{"))
        .filter(|l| l.contains("status=\"2"))
        .filter_map(|l| {
            let route = l.split("route=\"").nth(1)?.split('"').next()?;
            route.starts_with("/aicore.").then(|| route.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_run_finds_no_5xx_and_no_schema_break() {
    // Rate limits off: the run is about answers, not about the limiter (tested elsewhere). One
    // edge per principal, so each run's answers can be counted on its own.
    let for_player = Edge::start(&["--rate-limit", "false"]);
    let for_service = Edge::start(&["--rate-limit", "false"]);
    let player = scenarios::login(&for_player.client(), "fuzzer").await;
    let key = for_service.service_key("fuzzer", "*");
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, for_player.client().get("/openapi.json").await.body).unwrap();

    // As a player and as a service (the service-only methods), side by side.
    let (as_player, as_service) = std::thread::scope(|s| {
        let p = s.spawn(|| schemathesis(&for_player, &schema, &player.access));
        let k = s.spawn(|| schemathesis(&for_service, &schema, &key));
        (p.join().unwrap(), k.join().unwrap())
    });
    // A run whose every call were refused (401, 403) would pass the checks above and prove
    // nothing: each principal must have had most of what it may call answered 2xx.
    for (who, out, edge, floor) in [
        ("player", as_player, &for_player, 18),
        ("service", as_service, &for_service, 10),
    ] {
        assert!(
            out.status.success(),
            "as a {who}: {}\n(edge log)\n{}",
            show(&out),
            edge.logs()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("passed"), "as a {who}: {text}");
        let ok = answered_2xx(edge).await;
        println!("as a {who}: {} operations answered 2xx", ok.len());
        assert!(
            ok.len() >= floor,
            "as a {who}, only {} operations were answered 2xx (at least {floor} expected): {ok:?}",
            ok.len()
        );
    }
}

/// `edge openapi | head`: a reader that stops early ends the command quietly, no panic.
#[test]
fn a_reader_that_stops_early_is_no_error() {
    use std::io::Read as _;
    let mut child = Command::new(edge_e2e::edge_bin())
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's reading end is closed here; the document is larger than the pipe's buffer.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        show(&out)
    );
}
