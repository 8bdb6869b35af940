//! End-to-end: client addresses behind trusted proxies, rate limits per class and key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::{Edge, Response, scenarios};
use http::Method;
use proto::rpc;
use serde_json::json;

const LOGIN: &str = rpc::auth::LOGIN.path;
const GET: &str = rpc::state::GET.path;

fn edge_with(config: &str) -> (tempfile::TempDir, Edge) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, config).unwrap();
    let edge = Edge::start(&["--config", file.to_str().unwrap()]);
    (dir, edge)
}

async fn login_from(edge: &Edge, forwarded: &str) -> Response {
    let body = r#"{"username":"nobody","password":"wrong-password"}"#;
    edge.client()
        .request(
            Method::POST,
            LOGIN,
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", forwarded),
            ],
            body,
        )
        .await
}

#[tokio::test]
async fn login_limit_per_client_address_and_no_spoofing() {
    let (_dir, edge) = edge_with(
        "[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limit.auth]\nper_minute = 6\nburst = 3\n",
    );
    // The proxy (127.0.0.1, trusted) appended the real client address.
    for _ in 0..3 {
        let r = login_from(&edge, "198.51.100.7").await;
        assert_eq!(r.status, 401, "allowed, wrong password");
        assert_eq!(r.headers["ratelimit-policy"], "\"auth\";q=6;w=60");
        assert!(
            r.headers["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with("\"auth\";r=")
        );
    }
    let r = login_from(&edge, "198.51.100.7").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "resource_exhausted");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert!(r.headers["ratelimit"].to_str().unwrap().contains("r=0"));
    // A client writing its own X-Forwarded-For does not escape: the right-most untrusted entry counts.
    let r = login_from(&edge, "9.9.9.9, 198.51.100.7").await;
    assert_eq!(r.status, 429, "spoofed X-Forwarded-For is ignored");
    // Another client behind the same proxy is unaffected.
    assert_eq!(login_from(&edge, "203.0.113.5").await.status, 401);
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let (_dir, edge) = edge_with("[rate_limit.auth]\nper_minute = 6\nburst = 2\n");
    assert_eq!(login_from(&edge, "198.51.100.1").await.status, 401);
    assert_eq!(login_from(&edge, "198.51.100.2").await.status, 401);
    // Every request is the TCP peer's: changing X-Forwarded-For changes nothing.
    assert_eq!(login_from(&edge, "198.51.100.3").await.status, 429);
}

#[tokio::test]
async fn a_flooding_player_is_limited_and_others_are_not() {
    let (_dir, edge) = edge_with("[rate_limit.general]\nper_minute = 60\nburst = 5\n");
    let c = edge.client();
    let a = scenarios::login(&c, "flooder").await;
    let b = scenarios::login(&c, "bystander").await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(
            c.call(GET, Some(&a.access), json!({"key": "k"}))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(
        &codes[..5],
        &[404; 5],
        "within the burst: served (no such key)"
    );
    assert!(codes[5..].iter().all(|&c| c == 429), "{codes:?}");
    let r = c.call(GET, Some(&b.access), json!({"key": "k"})).await;
    assert_eq!(r.status, 404, "another player keeps their own allowance");
    assert_eq!(r.headers["ratelimit-policy"], "\"general\";q=60;w=60");
    // Probes are never rate limited.
    for _ in 0..20 {
        assert_eq!(c.get("/healthz").await.status, 200);
    }
}

fn der(pem: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_file(pem)
        .unwrap()
        .to_vec()
}

/// Replaces `to` with `from`'s contents in one rename, as deployment tools do.
fn swap(from: &std::path::Path, to: &std::path::Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[tokio::test]
async fn certificate_swapped_on_disk_under_load_and_a_bad_file_kept_out() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, live) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("live"),
    );
    for d in [&a, &b] {
        let (code, _, err) = edge_e2e::run_edge(&["certs", "dev", "--out", d.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    std::fs::create_dir_all(&live).unwrap();
    swap(&a.join("cert.pem"), &live.join("cert.pem"));
    swap(&a.join("key.pem"), &live.join("key.pem"));
    let both = dir.path().join("both-ca.pem");
    let cas = [
        std::fs::read(a.join("ca.pem")).unwrap(),
        std::fs::read(b.join("ca.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(&both, cas).unwrap();

    let edge = Edge::start(&[
        "--tls-cert",
        live.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        live.join("key.pem").to_str().unwrap(),
        "--tls-reload-interval",
        "100ms",
        "--rate-limit",
        "false",
    ]);
    let c = edge_e2e::Client::new(&both, edge.https);
    assert_eq!(c.peer_cert().await, der(&a.join("cert.pem")));
    let mut open = c.connect(false).await.unwrap();
    assert_eq!(
        open.send(Method::GET, "/healthz", &[], bytes::Bytes::new())
            .await
            .unwrap()
            .status,
        200
    );

    // New connections, one after another, while the files change under them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (c, stop) = (c.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(c.get("/healthz").await.status.as_u16());
            }
            statuses
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    swap(&b.join("cert.pem"), &live.join("cert.pem"));
    swap(&b.join("key.pem"), &live.join("key.pem"));
    let start = std::time::Instant::now();
    while c.peer_cert().await != der(&b.join("cert.pem")) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the new certificate was not picked up: {}",
            edge.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for t in load {
        let statuses = t.await.unwrap();
        total += statuses.len();
        assert!(
            statuses.iter().all(|&s| s == 200),
            "no request failed during the swap: {statuses:?}"
        );
    }
    assert!(total > 10);
    // The connection opened before the swap is still served.
    assert_eq!(
        open.send(Method::GET, "/healthz", &[], bytes::Bytes::new())
            .await
            .unwrap()
            .status,
        200
    );

    // A malformed certificate file: the current certificate stays, and the error is logged.
    std::fs::write(
        live.join("cert.tmp"),
        "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::rename(live.join("cert.tmp"), live.join("cert.pem")).unwrap();
    edge_e2e::eventually(
        std::time::Duration::from_secs(5),
        "the failed reload is logged",
        async || edge.logs().contains("TLS certificate reload failed"),
    )
    .await;
    assert_eq!(c.peer_cert().await, der(&b.join("cert.pem")));
    assert_eq!(c.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn guessing_one_account_from_many_addresses_is_limited() {
    let (_dir, edge) = edge_with(
        "[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[auth]\nlogin_failures_per_account = 3\n",
    );
    // Each attempt from another address: the per-address limit never triggers.
    let codes: Vec<u16> = attempts_from(
        &edge,
        &[
            "198.51.100.1",
            "198.51.100.2",
            "198.51.100.3",
            "198.51.100.4",
        ],
    )
    .await;
    assert_eq!(
        codes,
        [401, 401, 401, 429],
        "the account's allowance is spent whatever the address"
    );
}

async fn attempts_from(edge: &Edge, addrs: &[&str]) -> Vec<u16> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(login_from(edge, a).await.status.as_u16());
    }
    out
}
