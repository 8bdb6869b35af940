//! Allocations per request, a figure that needs no quiet machine: `app(state)` with the
//! production stack (rate limits on at quotas the test never reaches, admission, CORS, drain,
//! the metrics recorder and the log subscriber installed as `edge serve` installs them) driven
//! without a socket, averaged over many requests after a warm-up. Every thread's allocations
//! count (a blocking-pool read is the request's cost too).
//!
//! The budgets are in `allocation_budgets.toml` beside this file; a figure past its budget fails.
//! After a change that allocates more on purpose (or less: the test says when a budget is loose),
//! rewrite them with `UPDATE_ALLOC_BUDGETS=1 cargo test -p edge --test allocations` and commit
//! the file with the reason.
//!
//! Its own test binary: the counting allocator is process-wide, and this is the only test in it,
//! so no other test's allocations are counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::alloc::System;
use std::fmt::Write as _;

use axum::body::Body;
use bytes::Bytes;
use edge::layers::client_addr::PeerAddr;
use edge::{AppState, Config};
use http::Request;
use http_body_util::BodyExt as _;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt as _;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BUDGETS: &str = "tests/allocation_budgets.toml";
const WARM_UP: usize = 200;
const MEASURED: usize = 2000;

/// Every protection on, as in the unary benchmark's "rate limit on" row; the quotas are far
/// above what the test sends (the 401s would otherwise turn into 429s), so the limiter's cost
/// is counted, not its refusals.
const CONFIG: &str = r#"
[http]
cors_origins = ["https://play.example"]
[rate_limit.general]
per_minute = 100000000
burst = 1000000
[rate_limit.bad_credentials]
per_minute = 100000000
burst = 1000000
"#;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    allocations: f64,
    bytes: f64,
}

fn request(path: &str, token: Option<&str>, body: &'static [u8]) -> Request<Body> {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(Bytes::from_static(body))).unwrap();
    req.extensions_mut()
        .insert(PeerAddr("203.0.113.7:40000".parse().unwrap()));
    req
}

async fn send(app: &axum::Router, req: Request<Body>) -> (u16, Bytes) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// Sends `make()`'s request `WARM_UP` times, then `MEASURED` times counted; the requests are
/// built before counting starts (hyper's parsing is the bare server's cost too), the answers'
/// bodies are read frame by frame and dropped (hyper writes them; nothing collects them).
async fn measure(app: &axum::Router, status: u16, make: impl Fn() -> Request<Body>) -> Figures {
    for _ in 0..WARM_UP {
        assert_eq!(send(app, make()).await.0, status);
    }
    let reqs: Vec<_> = (0..MEASURED).map(|_| make()).collect();
    let mut statuses = Vec::with_capacity(MEASURED);
    let region = Region::new(GLOBAL);
    for req in reqs {
        let res = app.clone().oneshot(req).await.unwrap();
        statuses.push(res.status().as_u16());
        let mut body = res.into_body();
        while let Some(frame) = body.frame().await {
            drop(frame.unwrap());
        }
    }
    let stats = region.change();
    assert!(statuses.iter().all(|s| *s == status), "{statuses:?}");
    let n = MEASURED as f64;
    Figures {
        allocations: (stats.allocations + stats.reallocations) as f64 / n,
        bytes: (stats.bytes_allocated as f64 + stats.bytes_reallocated.max(0) as f64) / n,
    }
}

fn load_budgets() -> toml::Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BUDGETS);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write_budgets(rows: &[(&str, &str, Figures)]) {
    let mut out = String::from(
        "# Allocations per request through app(state), every protection on (edge/tests/allocations.rs).\n\
         # The test fails when a figure grows past its budget. After a change that allocates more on\n\
         # purpose, rewrite this file with `UPDATE_ALLOC_BUDGETS=1 cargo test -p edge --test allocations`\n\
         # and say why in the commit. Budgets are the measured figure with a little room (one\n\
         # allocation, 2% of bytes): averages over thousands of requests barely move between runs.\n",
    );
    for (key, what, f) in rows {
        writeln!(
            out,
            "\n# {what}: measured {:.2} allocations, {:.0} bytes per request\n[{key}]\nallocations = {}\nbytes = {}",
            f.allocations,
            f.bytes,
            f.allocations.ceil() as u64 + 1,
            (f.bytes * 1.02).ceil() as u64,
        )
        .unwrap();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BUDGETS);
    std::fs::write(&path, out).unwrap();
    println!("rewrote {}", path.display());
}

#[test]
fn allocations_per_request_stay_within_their_budgets() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config: Config = toml::from_str(CONFIG).unwrap();
        config.data_dir = dir.path().to_owned();
        config.validate().unwrap();
        let _flush = edge::ops::telemetry::init(&config.log, &config.otel).unwrap();
        assert!(edge::stats::install().is_some(), "the metrics recorder");
        let state = AppState::open(config).await.unwrap();
        let app = edge::app(state);

        let creds = br#"{"username":"budget","password":"budget-password"}"#;
        let register = "/aicore.auth.v1.AuthService/Register";
        assert_eq!(send(&app, request(register, None, creds)).await.0, 200);
        let login = "/aicore.auth.v1.AuthService/Login";
        let (status, body) = send(&app, request(login, None, creds)).await;
        assert_eq!(status, 200);
        let login: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let token = login["accessToken"].as_str().unwrap().to_owned();
        let put = br#"{"key":"save.slot1","value":{"hp":10,"name":"hero"}}"#;
        let (status, body) = send(
            &app,
            request("/aicore.state.v1.StateService/Put", Some(&token), put),
        )
        .await;
        assert_eq!(status, 200, "{body:?}");

        let get = "/aicore.state.v1.StateService/Get";
        let get_body = br#"{"key":"save.slot1"}"#;
        let rows = [
            (
                "state_get",
                "state Get (200)",
                measure(&app, 200, || request(get, Some(&token), get_body)).await,
            ),
            (
                "unauthenticated",
                "state Get without a token (Connect error 401)",
                measure(&app, 401, || request(get, None, get_body)).await,
            ),
            (
                "not_found",
                "an unknown method (Connect error 404)",
                measure(&app, 404, || {
                    request("/aicore.nothing.v1.NothingService/Get", None, get_body)
                })
                .await,
            ),
        ];
        for (key, what, f) in &rows {
            println!(
                "{key:>16}: {:>7.2} allocations {:>8.0} bytes per request ({what})",
                f.allocations, f.bytes
            );
        }
        if std::env::var_os("UPDATE_ALLOC_BUDGETS").is_some() {
            write_budgets(&rows);
            return;
        }
        let budgets = load_budgets();
        let mut failures = Vec::new();
        for (key, what, f) in &rows {
            let Some(b) = budgets.get(*key).and_then(toml::Value::as_table) else {
                failures.push(format!("{key}: no budget in {BUDGETS}"));
                continue;
            };
            let limit = |k: &str| b.get(k).and_then(toml::Value::as_integer).unwrap_or(0) as f64;
            for (name, got, max) in [
                ("allocations", f.allocations, limit("allocations")),
                ("bytes", f.bytes, limit("bytes")),
            ] {
                if got > max {
                    failures.push(format!(
                        "{what}: {got:.2} {name} per request, budget {max} ({BUDGETS})"
                    ));
                } else if got < max * 0.8 - 1.0 {
                    println!(
                        "note: {what}: {got:.2} {name} per request, well under its budget {max}: \
                         lower it (UPDATE_ALLOC_BUDGETS=1)"
                    );
                }
            }
        }
        assert!(
            failures.is_empty(),
            "allocations per request grew past their budgets (if on purpose: \
             UPDATE_ALLOC_BUDGETS=1 cargo test -p edge --test allocations, and say why):\n{}",
            failures.join("\n")
        );
    });
}
