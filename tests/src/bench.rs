//! Shared pieces of the benchmarks: the baseline processes, a player with a token, report rows.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::load::Shape;
use crate::{Client, run_edge};

/// A child process killed (and reaped) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Development certificates for a run: (cert, key, ca).
pub fn certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let out = dir.join("certs");
    let (code, _, err) = run_edge(&["certs", "dev", "--out", out.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{err}");
    (
        out.join("cert.pem"),
        out.join("key.pem"),
        out.join("ca.pem"),
    )
}

/// Starts `bare` (the bare-hello binary) with `args`; waits for its first line; returns the
/// process and the address it printed, if any.
pub fn start_bare(bare: &str, args: &[&str]) -> (Proc, Option<SocketAddr>) {
    let mut child = Command::new(bare)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn bare-hello");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok());
    (Proc(child), addr)
}

/// GET /hello.
pub fn hello() -> Shape {
    Shape {
        method: Method::GET,
        path: "/hello".into(),
        headers: vec![],
        body: Bytes::new(),
    }
}

/// `shape` sent to the baseline's `/hello` instead: the same method, headers and body, so the
/// client's and TLS's work per request is the same on both sides and the ratio compares what the
/// servers do with it (the baseline ignores the token and relays the body).
pub fn as_hello(shape: &Shape) -> Shape {
    Shape {
        path: "/hello".into(),
        ..shape.clone()
    }
}

/// Registers a player, stores one state value, and returns the state Get request to replay.
pub async fn state_get(c: &Client) -> Shape {
    let (shape, token) = logged_in_get(c).await;
    let put = c
        .call(
            "/aicore.state.v1.StateService/Put",
            Some(&token),
            json!({"key": "save.slot1", "value": {"hp": 10, "name": "hero"}}),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    shape
}

/// A state Get of `save.slot1` by a freshly registered player (the key need not exist), and the
/// player's token.
pub async fn logged_in_get(c: &Client) -> (Shape, String) {
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
    let token = login["accessToken"].as_str().expect("token").to_owned();
    let shape = Shape {
        method: Method::POST,
        path: "/aicore.state.v1.StateService/Get".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {token}")),
        ],
        body: Bytes::from_static(br#"{"key":"save.slot1"}"#),
    };
    (shape, token)
}

/// The same state Get as `shape` (from [`state_get`]), in protobuf: what passes through the edge
/// to a NATS worker untouched.
pub fn as_proto(shape: &Shape) -> Shape {
    let mut body = vec![0x0a, 10];
    body.extend_from_slice(b"save.slot1");
    let mut headers: Vec<(String, String)> = shape
        .headers
        .iter()
        .filter(|(k, _)| k != "content-type")
        .cloned()
        .collect();
    headers.push(("content-type".into(), "application/proto".into()));
    Shape {
        method: shape.method.clone(),
        path: shape.path.clone(),
        headers,
        body: Bytes::from(body),
    }
}

/// Drives each of `sides` for a few seconds unmeasured before the first comparison: the first
/// row of a run measured a colder system (caches, allocator heaps, nats-server's subject caches)
/// and came out lower whichever row it was, by up to 0.05x.
pub async fn warm_up(sides: &[(&Client, &Shape)]) {
    for (client, shape) in sides {
        crate::load::run(
            client,
            shape,
            64,
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(3),
        )
        .await;
    }
}

/// Runs baseline and target in turn for `rounds` rounds and reports each round's ratio and the
/// median: on a shared machine, drift then hits both sides alike and one bad round does not decide.
pub async fn compare(
    name: &str,
    base: (&Client, &Shape),
    target: (&Client, &Shape),
    rounds: usize,
    warmup: std::time::Duration,
    measure: std::time::Duration,
) -> f64 {
    let mut ratios = Vec::new();
    for round in 1..=rounds.max(1) {
        // Alternate which side goes first (ABBA), so a slow spell on the shared host or a drift
        // over the run does not always land on the same side.
        let (b, t) = if round % 2 == 1 {
            let b = crate::load::run(base.0, base.1, 64, warmup, measure).await;
            (
                b,
                crate::load::run(target.0, target.1, 64, warmup, measure).await,
            )
        } else {
            let t = crate::load::run(target.0, target.1, 64, warmup, measure).await;
            (
                crate::load::run(base.0, base.1, 64, warmup, measure).await,
                t,
            )
        };
        let r = t.rps / b.rps;
        println!(
            "  round {round}: baseline {:>7.0} req/s p99 {:>5.2} ms | {name} {:>7.0} req/s p50 {:>5.2} ms p99 {:>5.2} ms errors {} | {r:.2}x",
            b.rps,
            b.p99.as_secs_f64() * 1e3,
            t.rps,
            t.p50.as_secs_f64() * 1e3,
            t.p99.as_secs_f64() * 1e3,
            t.errors
        );
        ratios.push(r);
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    // An even count takes the mean of the middle two, not the upper one.
    let median = if ratios.len() % 2 == 0 {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    } else {
        ratios[mid]
    };
    println!("{name}: median {median:.2}x over {} rounds\n", ratios.len());
    median
}

/// `BENCH_SECS` (default 6) and `BENCH_ROUNDS` (default 3).
pub fn settings() -> (std::time::Duration, std::time::Duration, usize) {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    (
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(env("BENCH_SECS", 6)),
        env("BENCH_ROUNDS", 3) as usize,
    )
}
