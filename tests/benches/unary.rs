//! Benchmark: edge's state Get over TLS with a valid token, against a bare axum+rustls "hello"
//! server (same allocator, same TLS and HTTP/1.1 settings, sent the same request bytes), in the
//! same run on the same machine, 64 connections each, alternating over rounds. The servers run
//! on one core and the load generator on the other; each side's CPU time per request is read
//! from /proc over the measured window.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench unary`.
//! `BENCH_SECS` (default 6) and `BENCH_ROUNDS` (default 3) set the measured time and rounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use edge_e2e::bench::{
    Side, as_hello, certs, compare, pin, pin_pid, settings, start_bare_on, state_get, verdict,
    warm_up,
};
use edge_e2e::{Client, Edge};

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certs(tmp.path());
    let (bare_proc, addr) = start_bare_on(
        cpus,
        env!("CARGO_BIN_EXE_bare-hello"),
        &[cert.to_str().unwrap(), key.to_str().unwrap(), "127.0.0.1:0"],
    );
    let bare_pid = [bare_proc.0.id()];
    let bare = Client::new(&ca, addr.unwrap());

    println!(
        "\nunary benchmark: 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds per row; goals: >= 0.60x req/s, p99 < 5 ms",
        measure.as_secs()
    );
    // Protections on with quotas far above the load, so the limiter's cost is measured, not its
    // refusals (one player here sends far more than any per-player default allows).
    let big = tmp.path().join("big-quotas.toml");
    std::fs::write(
        &big,
        "[rate_limit.general]\nper_minute = 100000000\nburst = 1000000\n",
    )
    .unwrap();
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let rows = [
        ("edge (rate limit off)", vec!["--rate-limit", "false"]),
        (
            "edge (rate limit on)",
            vec!["--config", big.to_str().unwrap()],
        ),
        (
            "edge (+ access log)",
            vec!["--rate-limit", "false", "--access-log", "true"],
        ),
    ];
    let mut results = Vec::new();
    for (name, extra) in rows {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend(extra);
        let edge = Edge::start(&args);
        pin_pid(edge.pid(), cpus);
        let c = Client::new(&ca, edge.https);
        let shape = state_get(&c).await;
        let same_bytes = as_hello(&shape);
        warm_up(&[(&bare, &same_bytes), (&c, &shape)]).await;
        let r = compare(
            name,
            Side {
                client: &bare,
                shape: &same_bytes,
                pids: &bare_pid,
            },
            Side {
                client: &c,
                shape: &shape,
                pids: &[edge.pid()],
            },
            rounds,
            warmup,
            measure,
        )
        .await;
        println!(
            "{name}: {:.2}x req/s, goal >= 0.60x: {}\n",
            r.rps,
            verdict(r.rps >= 0.60)
        );
        results.push(r);
    }
    // Always on in both rows: admission (global limit + bulkheads), header limits, the idempotency
    // layer (a read passes straight through it). The switch is the rate limiter.
    // Compression costs nothing for small replies: the same edge, the same Get, from a client
    // that accepts gzip (the reply is under the threshold) against one that does not.
    {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend(["--rate-limit", "false"]);
        let edge = Edge::start(&args);
        pin_pid(edge.pid(), cpus);
        let c = Client::new(&ca, edge.https);
        let plain = state_get(&c).await;
        let mut gzip = plain.clone();
        gzip.headers
            .push(("accept-encoding".into(), "gzip, deflate, br".into()));
        warm_up(&[(&c, &plain), (&c, &gzip)]).await;
        let pids = [edge.pid()];
        let r = compare(
            "accepts gzip vs not",
            Side {
                client: &c,
                shape: &plain,
                pids: &pids,
            },
            Side {
                client: &c,
                shape: &gzip,
                pids: &pids,
            },
            rounds,
            warmup,
            measure,
        )
        .await;
        println!(
            "a client accepting gzip (small replies go out uncompressed) vs one that does not: {:.2}x req/s, {:.2}x CPU per request, goal >= 0.97x (no cost beyond noise): {}\n",
            r.rps,
            r.cpu.unwrap_or(f64::NAN),
            verdict(r.rps >= 0.97)
        );
    }
    let protections = results[1].rps / results[0].rps;
    println!(
        "every protection on (rate limiter with large quotas) vs rate limiter off: {protections:.2}x, goal >= 0.90x: {}",
        verdict(protections >= 0.90)
    );
}
