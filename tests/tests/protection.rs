//! End-to-end: client addresses behind trusted proxies, rate limits per class and key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::{Edge, Response, scenarios};
use http::Method;
use serde_json::json;

const LOGIN: &str = "/aicore.auth.v1.AuthService/Login";
const GET: &str = "/aicore.state.v1.StateService/Get";

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
