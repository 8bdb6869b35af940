//! Shared pieces of the benchmarks: the baseline processes, a player with a token, report rows.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::load::{Shape, Stats};
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

/// Registers a player, stores one state value, and returns the state Get request to replay.
pub async fn state_get(c: &Client) -> Shape {
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
    let put = c
        .call(
            "/aicore.state.v1.StateService/Put",
            Some(&token),
            json!({"key": "save.slot1", "value": {"hp": 10, "name": "hero"}}),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    Shape {
        method: Method::POST,
        path: "/aicore.state.v1.StateService/Get".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {token}")),
        ],
        body: Bytes::from_static(br#"{"key":"save.slot1"}"#),
    }
}

/// Prints one result line.
pub fn row(name: &str, s: &Stats) {
    println!(
        "{name:<36} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
        s.rps,
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.errors
    );
}

/// Prints the ratio line.
pub fn ratio(base: &Stats, s: &Stats, goal: &str) {
    println!(
        "{:<36} {:>9.2}x req/s   ({goal})\n",
        "ratio",
        s.rps / base.rps
    );
}
