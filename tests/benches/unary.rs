//! Benchmark: edge's state Get over TLS with a valid token, against a bare axum+rustls "hello"
//! server (same allocator, same TLS and HTTP/1.1 settings, sent the same request bytes), in the
//! same run on the same machine, 64 connections each, alternating over rounds. The servers run
//! on one core and the load generator on the other; each side's CPU time per request is read
//! from /proc over the measured window.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench unary`.
//! `BENCH_SECS` (default 6) and `BENCH_ROUNDS` (default 3) set the measured time and rounds.
//! Every comparison prints its median and its worst round; the access log's cost is also measured
//! directly, an edge with it against one without, in ABBA rounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use edge_e2e::bench::{
    Side, as_hello, certs, compare, median, pin, pin_pid, settings, start_bare_on, state_get,
    verdict, warm_up,
};
use edge_e2e::load::{Shape, run_expecting, run_measuring};
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
        "\nunary benchmark: 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds per row; goals: >= 0.60x req/s, p99 < 5 ms; every protection on <= 1.25x CPU per request, the access log <= +5%, an error <= a success",
        measure.as_secs()
    );
    // Protections on with quotas far above the load, so the limiter's cost is measured, not its
    // refusals (one player here sends far more than any per-player default allows).
    let big = tmp.path().join("big-quotas.toml");
    // Every protection on: rate limits (bad credentials too, for the 401 rows) at quotas the
    // load never reaches, and CORS for a browser origin.
    std::fs::write(
        &big,
        "[http]\ncors_origins = [\"https://play.example\"]\n\
         [rate_limit.general]\nper_minute = 100000000\nburst = 1000000\n\
         [rate_limit.bad_credentials]\nper_minute = 100000000\nburst = 1000000\n",
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
            "edge (every protection on)",
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
    // The access log's own cost: two edges alike but for it, on the same core, in ABBA rounds
    // against each other (the rows above each compare with the bare server, in other rounds).
    let access_log = {
        let mut off_args: Vec<&str> = tls.to_vec();
        off_args.extend(["--rate-limit", "false"]);
        let mut on_args = off_args.clone();
        on_args.extend(["--access-log", "true"]);
        let off = Edge::start(&off_args);
        let on = Edge::start(&on_args);
        pin_pid(off.pid(), cpus);
        pin_pid(on.pid(), cpus);
        let (c_off, c_on) = (Client::new(&ca, off.https), Client::new(&ca, on.https));
        let (s_off, s_on) = (state_get(&c_off).await, state_get(&c_on).await);
        warm_up(&[(&c_off, &s_off), (&c_on, &s_on)]).await;
        let (p_off, p_on) = ([off.pid()], [on.pid()]);
        compare(
            "access log on vs off",
            Side {
                client: &c_off,
                shape: &s_off,
                pids: &p_off,
            },
            Side {
                client: &c_on,
                shape: &s_on,
                pids: &p_on,
            },
            rounds,
            warmup,
            measure,
        )
        .await
    };
    // Connect errors against a success, on the same edge with every protection on.
    {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend(["--config", big.to_str().unwrap()]);
        let edge = Edge::start(&args);
        pin_pid(edge.pid(), cpus);
        let c = Client::new(&ca, edge.https);
        let get = state_get(&c).await;
        let unauthenticated = Shape {
            headers: vec![("content-type".into(), "application/json".into())],
            ..get.clone()
        };
        let not_found = Shape {
            path: "/aicore.nothing.v1.NothingService/Get".into(),
            ..get.clone()
        };
        warm_up(&[(&c, &get)]).await;
        let pids = [edge.pid()];
        for (name, shape, status) in [
            ("a 401 (no token)", &unauthenticated, 401),
            ("a 404 (no such method)", &not_found, 404),
        ] {
            let (cpu, worst) =
                error_vs_success(&c, &get, shape, status, &pids, rounds, warmup, measure).await;
            println!(
                "{name} vs a state Get, CPU per request: {cpu:.2}x (worst round {worst:.2}x), goal <= 1.00x (an error costs no more than a success): {}\n",
                verdict(cpu <= 1.0)
            );
        }
    }
    let protections = results[1].rps / results[0].rps;
    println!(
        "every protection on vs rate limiter off: {protections:.2}x req/s, goal >= 0.90x: {}",
        verdict(protections >= 0.90)
    );
    let cpu = |i: usize| results[i].cpu.unwrap_or(f64::NAN);
    println!(
        "every protection on vs the bare server: {:.2}x CPU per request (worst round {:.2}x), goal <= 1.25x: {}",
        cpu(1),
        results[1].worst_cpu.unwrap_or(f64::NAN),
        verdict(cpu(1) <= 1.25)
    );
    let log = cpu(2) / cpu(0);
    println!(
        "the access log on adds {:+.1}% CPU per request (each row against the bare server)",
        (log - 1.0) * 100.0,
    );
    let direct = access_log.cpu.unwrap_or(f64::NAN);
    println!(
        "the access log on adds {:+.1}% CPU per request (the same edge without it, ABBA; worst round {:+.1}%), goal <= +5%: {}",
        (direct - 1.0) * 100.0,
        (access_log.worst_cpu.unwrap_or(f64::NAN) - 1.0) * 100.0,
        verdict(direct <= 1.05)
    );
}

/// CPU per request of `error` (answered `status`) over that of `success`, on the same server:
/// the median over ABBA rounds and the worst (highest) round.
#[allow(clippy::too_many_arguments)]
async fn error_vs_success(
    c: &Client,
    success: &Shape,
    error: &Shape,
    status: u16,
    pids: &[u32],
    rounds: usize,
    warmup: std::time::Duration,
    measure: std::time::Duration,
) -> (f64, f64) {
    let mut ratios = Vec::new();
    for round in 1..=rounds.max(1) {
        let ok = || run_measuring(c, success, 64, warmup, measure, pids);
        let bad = || run_expecting(c, error, 64, warmup, measure, pids, Some(status));
        let (s, e) = if round % 2 == 1 {
            let s = ok().await;
            (s, bad().await)
        } else {
            let e = bad().await;
            (ok().await, e)
        };
        let us = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
        let r = us(e.cpu_per_req) / us(s.cpu_per_req);
        println!(
            "  round {round}: success {:>7.0} req/s {:>6.1} us CPU/req | error {status} {:>7.0} req/s {:>6.1} us CPU/req | {r:.2}x CPU/req",
            s.rps,
            us(s.cpu_per_req),
            e.rps,
            us(e.cpu_per_req)
        );
        ratios.push(r);
    }
    let worst = ratios.iter().copied().fold(f64::NAN, f64::max);
    (median(ratios), worst)
}
