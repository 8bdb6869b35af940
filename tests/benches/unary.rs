//! Benchmark: edge's state Get over TLS with a valid token, against a bare axum+rustls "hello"
//! server, in the same run on the same machine, 64 connections each. Prints req/s, p50, p99 and the
//! ratios. Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench unary`.
//! `BENCH_SECS` (default 10) sets the measured time per target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use edge_e2e::load::{self, Shape, Stats};
use edge_e2e::{Client, Edge, run_edge};
use http::Method;
use serde_json::json;

const CONNS: usize = 64;

fn row(name: &str, s: &Stats) {
    println!(
        "{name:<34} {:>10.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}",
        s.rps,
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.errors
    );
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let (warmup, measure) = (Duration::from_secs(2), Duration::from_secs(secs));
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let (code, _, err) = run_edge(&["certs", "dev", "--out", certs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (cert, key, ca) = (
        certs.join("cert.pem"),
        certs.join("key.pem"),
        certs.join("ca.pem"),
    );

    // Baseline.
    let mut bare = Command::new(env!("CARGO_BIN_EXE_bare-hello"))
        .args([cert.to_str().unwrap(), key.to_str().unwrap(), "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(bare.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let bare_addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap()
        .parse()
        .unwrap();
    let bare_client = Client::new(&ca, bare_addr);
    let hello = Shape {
        method: Method::GET,
        path: "/hello".into(),
        headers: vec![],
        body: Bytes::new(),
    };

    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut results = Vec::new();
    for (name, extra) in [
        ("edge state Get (defaults)", vec![]),
        (
            "edge state Get (access log on)",
            vec!["--access-log", "true"],
        ),
    ] {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend(extra);
        let edge = Edge::start(&args);
        let c = Client::new(&ca, edge.https);
        c.call(
            "/aicore.auth.v1.AuthService/Register",
            None,
            json!({"username": "bench", "password": "bench-password"}),
        )
        .await;
        let login = c
            .call(
                "/aicore.auth.v1.AuthService/Login",
                None,
                json!({"username": "bench", "password": "bench-password"}),
            )
            .await
            .json();
        let token = login["accessToken"].as_str().unwrap().to_owned();
        let put = c
            .call(
                "/aicore.state.v1.StateService/Put",
                Some(&token),
                json!({"key": "save.slot1", "value": {"hp": 10, "name": "hero"}}),
            )
            .await;
        assert_eq!(put.status, 200);
        let shape = Shape {
            method: Method::POST,
            path: "/aicore.state.v1.StateService/Get".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {token}")),
            ],
            body: Bytes::from_static(br#"{"key":"save.slot1"}"#),
        };
        // Alternate with the baseline so drift on a shared machine hits both alike.
        let base = load::run(&bare_client, &hello, CONNS, warmup, measure).await;
        let stats = load::run(&c, &shape, CONNS, warmup, measure).await;
        results.push((name, base, stats));
    }
    let _ = bare.kill();
    let _ = bare.wait();

    println!(
        "\nunary benchmark: {CONNS} connections, HTTP/1.1 over TLS, {secs}s measured per run, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, base, stats) in &results {
        row("bare axum+rustls hello", base);
        row(name, stats);
        println!(
            "{:<34} {:>10.2}x req/s   p99 {:.2} ms (goal >= 0.60x, p99 < 5 ms)\n",
            "ratio",
            stats.rps / base.rps,
            stats.p99.as_secs_f64() * 1e3
        );
    }
}
