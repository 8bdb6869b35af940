//! Benchmark: what tracing costs on the foundation path (a state Get over TLS, 64 connections).
//! An edge with tracing on (sampling 0, then sampling 1 exporting to a collector that discards)
//! against the same edge configuration with tracing off, in the same run, alternating rounds.
//! Goal: sampling 0 costs under 2%; sampling 1 is reported. A first row runs a second edge with
//! tracing off against the first: the noise floor of this host, in the same run.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench tracing`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use axum::routing::post;
use edge_e2e::bench::{Side, certs, compare, pin, pin_pid, settings, state_get, verdict, warm_up};
use edge_e2e::{Client, Edge};

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certs(tmp.path());
    // A collector that takes every export and throws it away.
    let app = axum::Router::new().route("/v1/traces", post(|_: bytes::Bytes| async { "" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--rate-limit",
        "false",
    ];
    let off = Edge::start(&tls);
    pin_pid(off.pid(), cpus);
    let c_off = Client::new(&ca, off.https);
    let shape_off = state_get(&c_off).await;
    println!(
        "\ntracing benchmark: state Get, 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds per row",
        measure.as_secs()
    );
    for (name, sampler, goal) in [
        ("control (tracing off)", None, None),
        ("sampling 0 (always_off)", Some("always_off"), Some(0.98)),
        ("sampling 1 (always_on, exported)", Some("always_on"), None),
    ] {
        let mut args = tls.to_vec();
        if let Some(sampler) = sampler {
            args.extend([
                "--otel-endpoint",
                collector.as_str(),
                "--otel-sampler",
                sampler,
            ]);
        }
        let on = Edge::start(&args);
        pin_pid(on.pid(), cpus);
        let c_on = Client::new(&ca, on.https);
        let shape_on = state_get(&c_on).await;
        warm_up(&[(&c_off, &shape_off), (&c_on, &shape_on)]).await;
        let r = compare(
            name,
            Side {
                client: &c_off,
                shape: &shape_off,
                pids: &[off.pid()],
            },
            Side {
                client: &c_on,
                shape: &shape_on,
                pids: &[on.pid()],
            },
            rounds,
            warmup,
            measure,
        )
        .await;
        let cpu = r.cpu.unwrap_or(f64::NAN);
        match goal {
            Some(g) => println!(
                "{name} vs tracing off: {:.3}x req/s, {cpu:.3}x CPU per request; goal >= {g}x req/s (under 2% cost): {}\n",
                r.rps,
                verdict(r.rps >= g)
            ),
            None => println!(
                "{name} vs tracing off: {:.3}x req/s, {cpu:.3}x CPU per request (reported, no goal)\n",
                r.rps
            ),
        }
    }
}
