//! Benchmark: a unary call routed over NATS to one `edge worker` (state Get, JSON transcoded to
//! protobuf and back), against a bare axum+rustls server doing one raw async-nats request/reply to a
//! trivial responder, in the same run, 64 connections each, alternating over rounds. Both get the
//! same request bytes (the baseline ignores the token and relays the body), so the ratio compares
//! the servers, not the sizes of two different requests. The edge and the worker sign and verify
//! every request (`--nats-signing-keys`, as in production). CPU per request counts every process
//! serving each side: edge + worker + nats-server against bare + responder + nats-server.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench nats`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use base64::Engine as _;
use edge_e2e::bench::{
    Side, as_hello, as_proto, certs, compare, logged_in_get, pin, pin_pid, settings, start_bare_on,
    state_get, verdict, warm_up,
};
use edge_e2e::load::Shape;
use edge_e2e::nats::Nats;
use edge_e2e::{Client, Edge};

fn side<'a>(client: &'a Client, shape: &'a Shape, pids: &'a [u32]) -> Side<'a> {
    Side {
        client,
        shape,
        pids,
    }
}

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certs(tmp.path());
    let nats = Nats::start("");
    pin_pid(nats.pid(), cpus);
    let url = nats.url();
    let bin = env!("CARGO_BIN_EXE_bare-hello");
    let (responder, _) = start_bare_on(cpus, bin, &["responder", &url]);
    let (bare_proc, addr) = start_bare_on(
        cpus,
        bin,
        &[
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "127.0.0.1:0",
            &url,
        ],
    );
    let bare = Client::new(&ca, addr.unwrap());
    // Each side's CPU: its server, its NATS peer, and the nats-server they share.
    let bare_pids = [bare_proc.0.id(), responder.0.id(), nats.pid()];

    // Request signing on (Security II): every request the edge sends is signed and the worker
    // verifies it before any handler runs, as in production. A fixed test key (32 bytes).
    let keys = format!(
        "bench:{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let worker = Edge::start_worker(&[
        "--nats",
        &url,
        "--services",
        "state",
        "--nats-signing-keys",
        &keys,
    ]);
    pin_pid(worker.pid(), cpus);
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
            "--nats-signing-keys",
            &keys,
        ];
        args.extend_from_slice(extra);
        let edge = Edge::start(&args);
        pin_pid(edge.pid(), cpus);
        edge
    };
    let edge = start_edge(&[]);
    let edge_pids = [edge.pid(), worker.pid(), nats.pid()];
    let c = Client::new(&ca, edge.https);
    let shape = state_get(&c).await;

    println!(
        "\nNATS benchmark: 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds; baseline = bare axum+rustls + raw NATS request/reply to a trivial responder; requests signed (--nats-signing-keys); goal <= 1.25x CPU per request",
        measure.as_secs()
    );
    warm_up(&[(&bare, &as_hello(&shape)), (&c, &shape)]).await;
    let (base_json, base_proto, proto_shape) = (
        as_hello(&shape),
        as_hello(&as_proto(&shape)),
        as_proto(&shape),
    );
    let json = compare(
        "edge state Get via NATS worker (JSON client)",
        side(&bare, &base_json, &bare_pids),
        side(&c, &shape, &edge_pids),
        rounds,
        warmup,
        measure,
    )
    .await;
    // Protobuf clients: the body passes through to the worker and back untouched.
    let proto = compare(
        "edge state Get via NATS worker (protobuf client)",
        side(&bare, &base_proto, &bare_pids),
        side(&c, &proto_shape, &edge_pids),
        rounds,
        warmup,
        measure,
    )
    .await;
    // The edge's own share: the same route to a responder as trivial as the baseline's (it
    // echoes the request; a protobuf client gets those bytes back untouched).
    let (trivial_proc, _) = start_bare_on(cpus, bin, &["responder", &url, "bench.trivial.get"]);
    let edge_only = start_edge(&["--subject", "state=bench.trivial"]);
    let trivial_pids = [edge_only.pid(), trivial_proc.0.id(), nats.pid()];
    let c2 = Client::new(&ca, edge_only.https);
    let (shape2, _) = logged_in_get(&c2).await;
    let (base2, target2) = (as_hello(&as_proto(&shape2)), as_proto(&shape2));
    warm_up(&[(&c2, &target2)]).await;
    let trivial = compare(
        "edge via NATS to a trivial responder (protobuf client)",
        side(&bare, &base2, &bare_pids),
        side(&c2, &target2, &trivial_pids),
        rounds,
        warmup,
        measure,
    )
    .await;
    let cpu = |c: edge_e2e::bench::Comparison| {
        format!(
            "{} (worst round {})",
            c.cpu.map_or("n/a".to_owned(), |x| format!("{x:.2}x")),
            c.worst_cpu.map_or("n/a".to_owned(), |x| format!("{x:.2}x"))
        )
    };
    let met = |c: edge_e2e::bench::Comparison| verdict(c.cpu.is_some_and(|x| x <= 1.25));
    println!(
        "NATS route, signed, CPU per request (edge + worker + nats-server against bare + responder + nats-server): JSON {} goal <= 1.25x: {}; protobuf {} goal <= 1.25x: {}; to a trivial responder {}",
        cpu(json),
        met(json),
        cpu(proto),
        met(proto),
        cpu(trivial)
    );
    println!(
        "NATS route, req/s of the bare baseline: JSON {:.2}x (worst round {:.2}x), protobuf {:.2}x (worst {:.2}x), to a trivial responder {:.2}x (worst {:.2}x); reported",
        json.rps, json.worst_rps, proto.rps, proto.worst_rps, trivial.rps, trivial.worst_rps
    );
}
