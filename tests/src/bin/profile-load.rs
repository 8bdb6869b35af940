//! The load side of `scripts/profile`: starts the server under test (already wrapped in
//! callgrind by the script, through `EDGE_BIN` or the `PROFILE_BARE` command), sets up its
//! request as the unary benchmark does, warms it up, then has callgrind count exactly
//! `PROFILE_REQUESTS` requests (zeroed before, dumped after) over 8 HTTP/1.1 connections.
//! `profile-load <bench> <out-dir>`; benches: get, get-log, 401, 404 (the edge, every protection
//! on, as the unary benchmark's rows) and bare (bare-hello sent a state Get's bytes).
//! Prints `pid <pid>` and `requests <n>` for the script.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use edge_e2e::bench::{Proc, as_hello, certs, start_bare};
use edge_e2e::load::Shape;
use edge_e2e::{Client, Edge};
use http::Method;

const CONNS: usize = 8;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bench, out] = args.as_slice() else {
        eprintln!("usage: profile-load get|get-log|401|404|bare OUT_DIR");
        std::process::exit(2);
    };
    let requests: usize = std::env::var("PROFILE_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let dir = std::path::Path::new(out);
    let (cert, key, ca) = certs(dir);
    let big = dir.join("big-quotas.toml");
    std::fs::write(
        &big,
        "[rate_limit.general]\nper_minute = 100000000\nburst = 1000000\n\
         [rate_limit.bad_credentials]\nper_minute = 100000000\nburst = 1000000\n",
    )
    .unwrap();
    let (cert, key, big) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        big.to_str().unwrap(),
    );
    // Keeps the server alive until the end.
    let (_edge, _bare, pid, client, shape): (Option<Edge>, Option<Proc>, u32, Client, Shape);
    if bench == "bare" {
        let cmd = std::env::var("PROFILE_BARE").expect("PROFILE_BARE: the wrapped bare-hello");
        let (p, addr) = start_bare(&cmd, &[cert, key, "127.0.0.1:0"]);
        pid = p.0.id();
        client = Client::new(&ca, addr.expect("bare-hello's address"));
        // The same bytes as the edge's state Get (a token of the same length).
        shape = as_hello(&Shape {
            method: Method::POST,
            path: String::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                (
                    "authorization".into(),
                    format!("Bearer {}", "x".repeat(300)),
                ),
            ],
            body: Bytes::from_static(br#"{"key":"save.slot1"}"#),
        });
        (_edge, _bare) = (None, Some(p));
    } else {
        let mut flags = vec!["--tls-cert", cert, "--tls-key", key, "--config", big];
        if bench == "get-log" {
            flags.extend(["--access-log", "true"]);
        }
        let edge = Edge::start(&flags);
        pid = edge.pid();
        client = Client::new(&ca, edge.https);
        let get = edge_e2e::bench::state_get(&client).await;
        shape = match bench.as_str() {
            "get" | "get-log" => get,
            "401" => Shape {
                headers: vec![("content-type".into(), "application/json".into())],
                ..get
            },
            "404" => Shape {
                path: "/aicore.nothing.v1.NothingService/Get".into(),
                ..get
            },
            other => panic!("unknown bench {other}: get, get-log, 401, 404 or bare"),
        };
        (_edge, _bare) = (Some(edge), None);
    }
    println!("pid {pid}");
    drive(connect(&client).await, &shape, 400).await;
    // The counted connections are open (their TLS handshakes done) before counting starts.
    let conns = connect(&client).await;
    callgrind(&["-z", &pid.to_string()]);
    drive(conns, &shape, requests).await;
    callgrind(&["-d", &pid.to_string()]);
    println!("requests {requests}");
}

/// `callgrind_control ARGS`; it reaches a process blocked in a syscall through vgdb.
fn callgrind(args: &[&str]) {
    let ok = Command::new("callgrind_control")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "callgrind_control {args:?} failed");
}

/// `CONNS` HTTP/1.1 connections.
async fn connect(client: &Client) -> Vec<edge_e2e::client::Conn> {
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        conns.push(client.connect(false).await.expect("connect"));
    }
    conns
}

/// `n` requests over `conns`.
async fn drive(conns: Vec<edge_e2e::client::Conn>, shape: &Shape, n: usize) {
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let shape = shape.clone();
        let count = n / CONNS + usize::from(i < n % CONNS);
        tasks.push(tokio::spawn(async move {
            let headers: Vec<(&str, &str)> = shape
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut statuses = Vec::new();
            for _ in 0..count {
                let res = conn
                    .send(
                        shape.method.clone(),
                        &shape.path,
                        &headers,
                        shape.body.clone(),
                    )
                    .await
                    .expect("request");
                statuses.push(res.status.as_u16());
            }
            statuses
        }));
    }
    let mut seen = std::collections::BTreeMap::new();
    for t in tasks {
        for s in t.await.unwrap() {
            *seen.entry(s).or_insert(0) += 1;
        }
    }
    println!("statuses {seen:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
