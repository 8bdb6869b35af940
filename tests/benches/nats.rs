//! Benchmark: a unary call routed over NATS to one `edge worker` (state Get, JSON transcoded to
//! protobuf and back), against a bare axum+rustls server doing one raw async-nats request/reply to a
//! trivial responder, in the same run, 64 connections each, alternating over rounds. Both get the
//! same request bytes (the baseline ignores the token and relays the body), so the ratio compares
//! the servers, not the sizes of two different requests.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench nats`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use edge_e2e::bench::{
    as_hello, as_proto, certs, compare, logged_in_get, settings, start_bare, state_get, warm_up,
};
use edge_e2e::nats::Nats;
use edge_e2e::{Client, Edge};

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
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
    // One player at tens of thousands of requests per second: far above any per-player quota.
    let start_edge = |extra: &[&str]| {
        let mut args = vec![
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--nats",
            &url,
            "--remote",
            "state",
            "--rate-limit",
            "false",
        ];
        args.extend_from_slice(extra);
        Edge::start(&args)
    };
    let edge = start_edge(&[]);
    let c = Client::new(&ca, edge.https);
    let shape = state_get(&c).await;

    println!(
        "\nNATS benchmark: 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds; baseline = bare axum+rustls + raw NATS request/reply; goal >= 0.80x",
        measure.as_secs()
    );
    warm_up(&[(&bare, &as_hello(&shape)), (&c, &shape)]).await;
    let json = compare(
        "edge state Get via NATS worker (JSON client)",
        (&bare, &as_hello(&shape)),
        (&c, &shape),
        rounds,
        warmup,
        measure,
    )
    .await;
    // Protobuf clients: the body passes through to the worker and back untouched.
    let proto = compare(
        "edge state Get via NATS worker (protobuf client)",
        (&bare, &as_hello(&as_proto(&shape))),
        (&c, &as_proto(&shape)),
        rounds,
        warmup,
        measure,
    )
    .await;
    // The edge's own share: the same route to a responder as trivial as the baseline's (it
    // echoes the request; a protobuf client gets those bytes back untouched).
    let (_trivial, _) = start_bare(bin, &["responder", &url, "bench.trivial.get"]);
    let edge_only = start_edge(&["--subject", "state=bench.trivial"]);
    let c2 = Client::new(&ca, edge_only.https);
    let (shape2, _) = logged_in_get(&c2).await;
    warm_up(&[(&c2, &as_proto(&shape2))]).await;
    let trivial = compare(
        "edge via NATS to a trivial responder (protobuf client)",
        (&bare, &as_hello(&as_proto(&shape2))),
        (&c2, &as_proto(&shape2)),
        rounds,
        warmup,
        measure,
    )
    .await;
    println!(
        "NATS route: JSON {json:.2}x, protobuf {proto:.2}x of the bare baseline (goal >= 0.80x); to a trivial responder {trivial:.2}x"
    );
}
