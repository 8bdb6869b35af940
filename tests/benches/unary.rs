//! Benchmark: edge's state Get over TLS with a valid token, against a bare axum+rustls "hello"
//! server, in the same run on the same machine, 64 connections each. Prints req/s, p50, p99 and the
//! ratios. Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench unary`.
//! `BENCH_SECS` (default 10) sets the measured time per target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use edge_e2e::bench::{certs, hello, ratio, row, start_bare, state_get};
use edge_e2e::load;
use edge_e2e::{Client, Edge};

const CONNS: usize = 64;

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let (warmup, measure) = (Duration::from_secs(2), Duration::from_secs(secs));
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certs(tmp.path());
    let (_bare, addr) = start_bare(
        env!("CARGO_BIN_EXE_bare-hello"),
        &[cert.to_str().unwrap(), key.to_str().unwrap(), "127.0.0.1:0"],
    );
    let bare = Client::new(&ca, addr.unwrap());

    println!("\nunary benchmark: {CONNS} connections, HTTP/1.1 over TLS, {secs}s measured per run");
    let mut results = Vec::new();
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    // Protections on with quotas far above the load, so the limiter's cost is measured, not its
    // refusals (one player here sends far more than any per-player default allows).
    let big = tmp.path().join("big-quotas.toml");
    std::fs::write(
        &big,
        "[rate_limit.general]\nper_minute = 100000000\nburst = 1000000\n",
    )
    .unwrap();
    let rows = [
        (
            "edge state Get (rate limit off)",
            vec!["--rate-limit", "false"],
        ),
        (
            "edge state Get (rate limit on)",
            vec!["--config", big.to_str().unwrap()],
        ),
        (
            "edge state Get (+ access log)",
            vec!["--rate-limit", "false", "--access-log", "true"],
        ),
    ];
    for (name, extra) in rows {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend(extra);
        let edge = Edge::start(&args);
        let c = Client::new(&ca, edge.https);
        let shape = state_get(&c).await;
        // Alternate with the baseline so drift on a shared machine hits both alike.
        let base = load::run(&bare, &hello(), CONNS, warmup, measure).await;
        let stats = load::run(&c, &shape, CONNS, warmup, measure).await;
        row("bare axum+rustls hello", &base);
        row(name, &stats);
        ratio(&base, &stats, "goal >= 0.60x, p99 < 5 ms");
        results.push(stats);
    }
    if let [off, on, ..] = results.as_slice() {
        println!(
            "protections (rate limiter on, large quotas) vs off: {:.2}x req/s (goal >= 0.90x)",
            on.rps / off.rps
        );
    }
}
