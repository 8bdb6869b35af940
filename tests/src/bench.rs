//! Shared pieces of the benchmarks: the baseline processes, a player with a token, report rows.

use proto::rpc;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::load::Shape;

use crate::{Client, run_edge};

/// The cores of a 2-core machine, split: the load generator (this process) on one, the servers
/// under test (both sides alike) on the other, so the generator never competes with what it
/// measures. `None` (and a note) where that cannot be done.
pub fn pin() -> Option<&'static str> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let ok = cores >= 2
        && Command::new("taskset")
            .args(["-a", "-cp", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        println!("pinned: load generator on CPU 0, servers under test on CPU 1");
        Some("1")
    } else {
        println!("NOT pinned ({cores} cores or no taskset): ratios drift toward 1");
        None
    }
}

/// An edge under test, rate limits off, with certificates in `dir`, pinned to `cpus` (from
/// [`pin`]), and a client that trusts it.
pub fn pinned_edge(dir: &Path, cpus: Option<&str>) -> (crate::Edge, Client) {
    let (cert, key, ca) = certs(dir);
    let edge = crate::Edge::start(&[
        "--tls-cert",
        cert.to_str().expect("utf-8 path"),
        "--tls-key",
        key.to_str().expect("utf-8 path"),
        "--rate-limit",
        "false",
    ]);
    pin_pid(edge.pid(), cpus);
    let client = Client::new(&ca, edge.https);
    (edge, client)
}

/// Moves a running process (all its threads) onto `cpus`.
pub fn pin_pid(pid: u32, cpus: Option<&str>) {
    if let Some(cpus) = cpus {
        let ok = Command::new("taskset")
            .args(["-a", "-cp", cpus, &pid.to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "taskset of {pid} failed");
    }
}

/// One side of a comparison: where to send, what, and the processes doing the work.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// The client.
    pub client: &'a Client,
    /// The request.
    pub shape: &'a Shape,
    /// Every process serving it (edge, worker, nats-server, ...).
    pub pids: &'a [u32],
}

/// What a comparison found, as medians over its rounds.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    /// Target req/s over baseline req/s.
    pub rps: f64,
    /// Target CPU per request over baseline CPU per request, if measured.
    pub cpu: Option<f64>,
    /// The target's p99 latency in milliseconds (median over rounds).
    pub p99_ms: f64,
    /// The worst round's req/s ratio (the lowest).
    pub worst_rps: f64,
    /// The worst round's CPU per request ratio (the highest), if measured.
    pub worst_cpu: Option<f64>,
}

/// "met" or "MISSED".
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The median, with an even count's two middle values averaged.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.is_empty() {
        f64::NAN
    } else if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

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

/// Starts `bare` (the bare-hello binary) with `args`, on `cpus` if given; waits for its first
/// line; returns the process and the address it printed, if any.
pub fn start_bare(bare: &str, args: &[&str]) -> (Proc, Option<SocketAddr>) {
    start_bare_on(None, bare, args)
}

/// [`start_bare`] on `cpus`.
pub fn start_bare_on(cpus: Option<&str>, bare: &str, args: &[&str]) -> (Proc, Option<SocketAddr>) {
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus, bare]);
            c
        }
        None => Command::new(bare),
    };
    let mut child = cmd
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
            rpc::state::PUT.path,
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
        rpc::auth::REGISTER.path,
        None,
        json!({"username": "bench", "password": "bench-password"}),
    )
    .await;
    let login = c
        .call(
            rpc::auth::LOGIN.path,
            None,
            json!({"username": "bench", "password": "bench-password"}),
        )
        .await
        .json();
    let token = login["accessToken"].as_str().expect("token").to_owned();
    let shape = Shape {
        method: Method::POST,
        path: rpc::state::GET.path.into(),
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

async fn side_run(
    s: Side<'_>,
    warmup: std::time::Duration,
    measure: std::time::Duration,
) -> crate::load::Stats {
    crate::load::run_measuring(s.client, s.shape, 64, warmup, measure, s.pids).await
}

/// Runs baseline and target in turn for `rounds` rounds (ABBA: the side that goes first
/// alternates, so drift on a shared host does not always land on one side) and reports each
/// round's req/s and CPU per request, and the medians of their ratios.
pub async fn compare(
    name: &str,
    base: Side<'_>,
    target: Side<'_>,
    rounds: usize,
    warmup: std::time::Duration,
    measure: std::time::Duration,
) -> Comparison {
    let (mut ratios, mut cpus, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds.max(1) {
        let (b, t) = if round % 2 == 1 {
            let b = side_run(base, warmup, measure).await;
            (b, side_run(target, warmup, measure).await)
        } else {
            let t = side_run(target, warmup, measure).await;
            (side_run(base, warmup, measure).await, t)
        };
        let r = t.rps / b.rps;
        let us = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
        let cpu = match (t.cpu_per_req, b.cpu_per_req) {
            (Some(tc), Some(bc)) if !bc.is_zero() => Some(tc.as_secs_f64() / bc.as_secs_f64()),
            _ => None,
        };
        println!(
            "  round {round}: baseline {:>7.0} req/s {:>6.1} us CPU/req p99 {:>5.2} ms | {name} {:>7.0} req/s {:>6.1} us CPU/req p50 {:>5.2} ms p99 {:>5.2} ms errors {} | {r:.2}x req/s, {} CPU/req",
            b.rps,
            us(b.cpu_per_req),
            b.p99.as_secs_f64() * 1e3,
            t.rps,
            us(t.cpu_per_req),
            t.p50.as_secs_f64() * 1e3,
            t.p99.as_secs_f64() * 1e3,
            t.errors,
            cpu.map_or("n/a".to_owned(), |c| format!("{c:.2}x"))
        );
        ratios.push(r);
        p99s.push(t.p99.as_secs_f64() * 1e3);
        if let Some(c) = cpu {
            cpus.push(c);
        }
    }
    let out = Comparison {
        worst_rps: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        worst_cpu: cpus.iter().copied().reduce(f64::max),
        rps: median(ratios),
        cpu: (!cpus.is_empty()).then(|| median(cpus)),
        p99_ms: median(p99s),
    };
    let x = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.2}x"));
    println!(
        "{name}: median {:.2}x req/s, {} CPU per request, over {} rounds (worst round {:.2}x req/s, {} CPU)\n",
        out.rps,
        x(out.cpu),
        rounds.max(1),
        out.worst_rps,
        x(out.worst_cpu),
    );
    out
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

/// Sends `shape` once on a new HTTP/1.1 connection and reads the whole answer.
pub async fn send_once(c: &Client, shape: &Shape) -> crate::client::Response {
    let headers: Vec<(&str, &str)> = shape
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    c.connect(false)
        .await
        .expect("connect")
        .send(
            shape.method.clone(),
            &shape.path,
            &headers,
            shape.body.clone(),
        )
        .await
        .expect("request")
}

/// A bare server (`bare`, the bare-hello binary, on `cpus`) with the certificates
/// [`pinned_edge`] made in `dir`, and a client of it: the baseline of a big answer
/// ([`record_answer`]).
pub fn answering_bare(bare: &str, dir: &Path, cpus: Option<&str>) -> (Proc, Client) {
    let certs = dir.join("certs");
    let path = |f: &str| certs.join(f).to_str().expect("utf-8 path").to_owned();
    let (proc, addr) = start_bare_on(
        cpus,
        bare,
        &[&path("cert.pem"), &path("key.pem"), "127.0.0.1:0"],
    );
    let client = Client::new(&certs.join("ca.pem"), addr.expect("bare-hello's address"));
    (proc, client)
}

/// Asks the edge (`edge`) for `shape`'s answer once and has the bare server (`bare`) record it;
/// returns the shape to send the bare server (the same method, headers and body, to `/answer`)
/// and the answer's size in bytes.
pub async fn record_answer(edge: &Client, bare: &Client, shape: &Shape) -> (Shape, usize) {
    let answer = send_once(edge, shape).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    let content_type = answer
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let size = answer.body.len();
    let r = bare
        .request(
            Method::POST,
            "/answer/record",
            &[("content-type", &content_type)],
            answer.body,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let base = Shape {
        path: "/answer".into(),
        ..shape.clone()
    };
    let echoed = send_once(bare, &base).await;
    assert_eq!(echoed.body.len(), size, "the bare server's answer");
    (base, size)
}
