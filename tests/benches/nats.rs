//! Benchmark: a unary call routed over NATS to one `edge worker` (state Get, JSON transcoded to
//! protobuf and back), against a bare axum+rustls server doing one raw async-nats request/reply to a
//! trivial responder, in the same run, 64 connections each.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench nats`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use edge_e2e::bench::{certs, hello, ratio, row, start_bare, state_get};
use edge_e2e::load;
use edge_e2e::nats::Nats;
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
    let nats = Nats::start("");
    let url = nats.url();
    let bin = env!("CARGO_BIN_EXE_bare-hello");
    let (_responder, _) = start_bare(bin, &["responder", &url]);
    let (_bare, addr) = start_bare(
        bin,
        &[
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "127.0.0.1:0",
            &url,
        ],
    );
    let bare = Client::new(&ca, addr.unwrap());

    let _worker = Edge::start_worker(&["--nats", &url, "--services", "state"]);
    let edge = Edge::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--nats",
        &url,
        "--remote",
        "state",
        // One player at tens of thousands of requests per second: far above any per-player quota.
        "--rate-limit",
        "false",
    ]);
    let c = Client::new(&ca, edge.https);
    let shape = state_get(&c).await;

    println!("\nNATS benchmark: {CONNS} connections, HTTP/1.1 over TLS, {secs}s measured per run");
    let base = load::run(&bare, &hello(), CONNS, warmup, measure).await;
    let stats = load::run(&c, &shape, CONNS, warmup, measure).await;
    row("bare axum+rustls + raw NATS req/rep", &base);
    row("edge state Get via NATS worker", &stats);
    ratio(&base, &stats, "goal >= 0.80x");
}
