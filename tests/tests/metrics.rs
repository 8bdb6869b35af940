//! End-to-end: the Prometheus `/metrics` of the admin listener, on the edge and on a worker,
//! counts what clients and workers saw, with bounded labels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::Duration;

use edge_e2e::nats::Nats;
use edge_e2e::{Edge, scenarios};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

const GET: &str = rpc::state::GET.path;
const PUT: &str = rpc::state::PUT.path;

/// The value of the series `name` whose labels include all of `labels`, if there is one.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse().unwrap())
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
}

#[tokio::test]
async fn the_edge_counts_requests_refusals_and_failed_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, "[rate_limit.general]\nper_minute = 60\nburst = 3\n").unwrap();
    let edge = Edge::start(&["--config", file.to_str().unwrap()]);
    let c = edge.client();
    let access = scenarios::login(&c, "metrics1").await.access;

    for _ in 0..6 {
        c.call(GET, Some(&access), json!({"key": "missing"})).await;
    }
    assert_eq!(c.call(GET, None, json!({"key": "k"})).await.status, 401);
    // Random paths all land in one series.
    for p in ["/random-a", "/random-b", "/wp-login.php"] {
        assert_eq!(c.get(p).await.status, 404);
    }
    // Not TLS at all: plain HTTP (told to use HTTPS) and other bytes (a failed handshake), both
    // counted.
    for junk in [
        &b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"[..],
        b"\x00\x01not a handshake",
    ] {
        let mut tcp = tokio::net::TcpStream::connect(edge.https).await.unwrap();
        tcp.write_all(junk).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            use tokio::io::AsyncReadExt as _;
            let mut buf = [0u8; 64];
            while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        })
        .await;
    }

    // One client connection held open while scraping.
    let held = c.connect(false).await.unwrap();
    let text = edge.admin_text("/metrics").await;
    drop(held);
    let get = |status| {
        sample(
            &text,
            "edge_http_requests_total",
            &[("route", GET), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    // Burst 3: three reach the handler (404), the rest are refused (429).
    assert_eq!(get("404"), 3.0, "{text}");
    assert_eq!(get("429"), 3.0, "{text}");
    assert_eq!(get("401"), 1.0, "{text}");
    assert_eq!(
        value(&text, "edge_refused_total", &[("reason", "rate_limit")]),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "edge_http_requests_total",
            &[("route", "other"), ("status", "404")]
        ),
        3.0
    );
    assert!(
        !text.contains("random"),
        "paths leaked into labels:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            "edge_calls_total",
            &[
                ("service", "state"),
                ("method", "Get"),
                ("target", "local"),
                ("code", "not_found")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "edge_http_request_duration_seconds_count",
            &[("route", GET)]
        ),
        7.0
    );
    for reason in ["error", "plain_http"] {
        assert!(
            value(
                &text,
                "edge_tls_handshake_failures_total",
                &[("reason", reason)]
            ) >= 1.0,
            "{reason}"
        );
    }
    // The scrape's own connection is the admin listener's, not a client's.
    assert!(value(&text, "edge_connections_open", &[]) >= 1.0);
    assert_eq!(value(&text, "edge_requests_in_flight", &[]), 0.0);
    assert_eq!(
        value(
            &text,
            "edge_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(
        text.contains("# HELP edge_http_requests_total"),
        "metrics are described:\n{text}"
    );
}

#[tokio::test]
async fn remote_calls_are_counted_on_the_edge_and_on_the_worker() {
    let nats = Nats::start("");
    let url = nats.url();
    let worker = Edge::start_worker(&["--nats", &url, "--services", "state"]);
    let edge = Edge::start(&["--nats", &url, "--remote", "state"]);
    let c = edge.client();
    let access = scenarios::login(&c, "metrics2").await.access;

    let r = c
        .call(PUT, Some(&access), json!({"key": "k", "value": {"a": 1}}))
        .await;
    assert_eq!(r.status, 200);
    for _ in 0..2 {
        assert_eq!(
            c.call(GET, Some(&access), json!({"key": "missing"}))
                .await
                .status,
            404
        );
    }

    // The responder prober pings every 5 s; wait for its first answer.
    let mut text = String::new();
    for _ in 0..100 {
        text = edge.admin_text("/metrics").await;
        if sample(&text, "edge_nats_responders", &[("service", "state")]) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        value(&text, "edge_nats_responders", &[("service", "state")]),
        1.0
    );
    assert_eq!(value(&text, "edge_nats_connected", &[]), 1.0);
    let calls = |method, code| {
        value(
            &text,
            "edge_calls_total",
            &[
                ("service", "state"),
                ("method", method),
                ("target", "nats"),
                ("code", code),
            ],
        )
    };
    assert_eq!(calls("Put", "ok"), 1.0);
    assert_eq!(calls("Get", "not_found"), 2.0);

    // The worker has its own admin listener: probes and metrics.
    let w = worker.admin_text("/metrics").await;
    let served = |method, code| {
        value(
            &w,
            "edge_worker_requests_total",
            &[("service", "state"), ("method", method), ("code", code)],
        )
    };
    assert_eq!(served("Put", "ok"), 1.0);
    assert_eq!(served("Get", "not_found"), 2.0);
    assert_eq!(
        value(
            &w,
            "edge_worker_request_duration_seconds_count",
            &[("service", "state")]
        ),
        3.0
    );
    let ready: serde_json::Value = worker.admin_json("/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["tls"], "not_served");
    assert_eq!(ready["nats"], "connected");
}
