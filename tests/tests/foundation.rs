//! End-to-end: the real `edge` binary on free ports, real TLS, a temporary data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::Duration;

use bytes::Bytes;
use edge_e2e::{Edge, run_edge, scenarios};
use http::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const REGISTER: &str = rpc::auth::REGISTER.path;
const LOGIN: &str = rpc::auth::LOGIN.path;
const REFRESH: &str = rpc::auth::REFRESH.path;
const LOGOUT: &str = rpc::auth::LOGOUT.path;
const PUT: &str = rpc::state::PUT.path;
const GET: &str = rpc::state::GET.path;

/// Registers and logs in; returns (access token, refresh token, player id).
async fn login(edge: &Edge, user: &str) -> (String, String, String) {
    let s = scenarios::login(&edge.client(), user).await;
    (s.access, s.refresh, s.player_id)
}

#[tokio::test]
async fn probes_routes_and_http2() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let r = c.get("/healthz").await;
    assert_eq!(r.status, 200);
    let r = c.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(r.json()["store"]["status"], "ok");

    // ALPN h2 works and serves the same routes.
    let mut conn = c.connect(true).await.unwrap();
    assert!(
        matches!(conn, edge_e2e::client::Conn::H2(_)),
        "negotiated h2"
    );
    let r = conn
        .send(Method::GET, "/healthz", &[], Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    // The route table comes from the descriptors: all 22 services, every one local here.
    let v = edge.admin_json("/admin/routes").await;
    let routes = v["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 22);
    let local: Vec<_> = routes
        .iter()
        .filter(|r| r["target"] == "local")
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    let all: Vec<_> = proto::SERVICES.iter().map(|s| s.short).collect();
    assert_eq!(local.len(), 22, "{local:?}");
    assert!(all.iter().all(|s| local.contains(s)));
    let login = routes.iter().find(|r| r["service"] == "auth").unwrap()["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Login")
        .unwrap()
        .clone();
    assert_eq!(login["path"], LOGIN);
    assert_eq!(login["access"], "public");
    let config = edge.admin_text("/admin/config").await;
    assert!(config.contains("max_body_bytes"), "{config}");
}

#[tokio::test]
async fn auth_flows() {
    let edge = Edge::start(&[]);
    let c = edge.client();
    let (access, refresh, player) = login(&edge, "alice").await;

    let dup = c
        .call(
            REGISTER,
            None,
            json!({"username": "ALICE", "password": "another-pass"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["code"], "already_exists");
    let bad = c
        .call(
            LOGIN,
            None,
            json!({"username": "alice", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["code"], "unauthenticated");

    // The token works; the principal decides whose data it is.
    let put = c
        .call(PUT, Some(&access), json!({"key": "k", "value": 1}))
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let theirs = c
        .call(
            GET,
            Some(&access),
            json!({"key": "k", "playerId": "ffffffffffffffffffffffffffffffff"}),
        )
        .await;
    assert_eq!(theirs.status, 403);

    // Refresh rotates; reusing the spent token is refused and revokes the whole session.
    let r1 = c
        .call(REFRESH, None, json!({"refreshToken": refresh}))
        .await;
    assert_eq!(r1.status, 200);
    let r1 = r1.json();
    assert_eq!(r1["playerId"], player.as_str());
    let new_refresh = r1["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    let new_access = r1["accessToken"].as_str().unwrap();
    assert_eq!(
        c.call(GET, Some(new_access), json!({"key": "k"}))
            .await
            .status,
        200
    );
    let reuse = c
        .call(REFRESH, None, json!({"refreshToken": refresh}))
        .await;
    assert_eq!(reuse.status, 401);
    assert!(
        reuse.json()["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(
        c.call(REFRESH, None, json!({"refreshToken": new_refresh}))
            .await
            .status,
        401
    );

    // Logout revokes the session's refresh token.
    let (access2, refresh2, _) = {
        let r = c
            .call(
                LOGIN,
                None,
                json!({"username": "alice", "password": "correct-horse"}),
            )
            .await
            .json();
        (
            r["accessToken"].as_str().unwrap().to_owned(),
            r["refreshToken"].as_str().unwrap().to_owned(),
            (),
        )
    };
    assert_eq!(
        c.call(LOGOUT, Some(&access2), json!({"refreshToken": refresh2}))
            .await
            .status,
        200
    );
    assert_eq!(
        c.call(REFRESH, None, json!({"refreshToken": refresh2}))
            .await
            .status,
        401
    );

    // Missing, malformed, tampered, unsigned tokens: 401 with WWW-Authenticate.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let tampered_payload = {
        use base64_like::encode;
        encode(
            r#"{"iss":"edge","aud":"aicore","sub":"ffffffffffffffffffffffffffffffff","sid":"x","iat":1,"exp":99999999999}"#,
        )
    };
    parts[1] = tampered_payload.clone();
    let tampered = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        base64_like::encode(r#"{"alg":"none","typ":"JWT"}"#),
        tampered_payload
    );
    for token in [
        None,
        Some("garbage"),
        Some(tampered.as_str()),
        Some(unsigned.as_str()),
    ] {
        let r = c.call(GET, token, json!({"key": "k"})).await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert_eq!(r.json()["code"], "unauthenticated");
    }
    let basic = c
        .request(
            Method::POST,
            GET,
            &[
                ("content-type", "application/json"),
                ("authorization", "Basic YTpi"),
            ],
            "{}",
        )
        .await;
    assert_eq!(basic.status, 401);

    // Reuse revoked the first session, and logout the second: their access tokens end too.
    for gone in [&access, &access2] {
        assert_eq!(
            c.call(GET, Some(gone), json!({"key": "k"})).await.status,
            401
        );
    }

    // A player token cannot call a service-only method.
    let fresh = scenarios::login_again(&c, "alice").await.access;
    let credit = c
        .call(
            rpc::payment::CREDIT.path,
            Some(&fresh),
            json!({"amount": "5"}),
        )
        .await;
    assert_eq!(credit.status, 403);
    assert_eq!(credit.json()["code"], "permission_denied");
    // The password never shows up in the logs.
    assert!(!edge.logs().contains("correct-horse"));
    assert!(!edge.logs().contains(&access));
}

/// base64url without padding, enough for forging test tokens.
mod base64_like {
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let edge = Edge::start(&["--access-token-ttl", "1s"]);
    let (access, _, _) = login(&edge, "bob").await;
    let c = edge.client();
    assert_eq!(
        c.call(GET, Some(&access), json!({"key": "k"})).await.status,
        404
    );
    // TTL 1 s, plus the 2 s clock-skew leeway, plus whole-second rounding of iat/exp: refused
    // within 6 s, and only as expired.
    let started = std::time::Instant::now();
    let mut last = None;
    edge_e2e::eventually(Duration::from_secs(6), "the token expires", async || {
        let r = c.call(GET, Some(&access), json!({"key": "k"})).await;
        let done = r.status == 401;
        last = Some(r);
        done
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before its TTL"
    );
    let r = last.unwrap();
    assert!(r.json()["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn json_and_protobuf_round_trips_and_cas() {
    let edge = Edge::start(&[]);
    let (access, _, _) = login(&edge, "carol").await;
    let c = edge.client();
    scenarios::state_round_trips_and_cas(&c, &access).await;
    scenarios::settings_validated_and_versioned(&c, &access).await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let edge = Edge::start(&["--max-body-bytes", "1024"]);
    let (access, _, _) = login(&edge, "dave").await;
    let c = edge.client();
    let auth = format!("Bearer {access}");
    let h = |ct: &'static str| vec![("content-type", ct), ("authorization", auth.as_str())];

    let r = c.request(Method::POST, GET, &h("text/plain"), "{}").await;
    assert_eq!(r.status, 415);
    assert!(
        r.headers["accept-post"]
            .to_str()
            .unwrap()
            .contains("application/proto")
    );

    let big = format!(r#"{{"key":"k","value":"{}"}}"#, "x".repeat(2000));
    let r = c
        .request(Method::POST, PUT, &h("application/json"), big.clone())
        .await;
    assert_eq!(r.status, 413);
    // Without Content-Length (chunked), the limit still holds.
    let r = raw(&edge, &format!(
        "POST {PUT} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: {auth}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    ))
    .await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");

    let r = c
        .request(Method::POST, GET, &h("application/json"), "{\"key\":")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid_argument");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("aicore.state.v1.GetRequest")
    );
    let r = c
        .request(
            Method::POST,
            GET,
            &h("application/proto"),
            vec![0xff, 0xff, 0xff],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid_argument");
    let r = c
        .request(Method::POST, GET, &h("application/json"), r#"{"key": 5}"#)
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .request(
            Method::POST,
            GET,
            &h("application/json"),
            r#"{"key": "a b"}"#,
        )
        .await;
    assert_eq!(r.status, 400);

    let r = c
        .call(
            "/aicore.state.v1.StateService/Nope", // no such method: a literal on purpose
            Some(&access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
    let r = c.get("/no/such/path").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
    let r = c.get(GET).await;
    assert_eq!(r.status, 405);

    let mut hdrs = h("application/json");
    hdrs.push(("connect-timeout-ms", "soon"));
    let r = c.request(Method::POST, GET, &hdrs, "{}").await;
    assert_eq!(r.status, 400);

    let r = c
        .call(rpc::router::LIST_ROUTES.path, Some(&access), json!({}))
        .await;
    // The route table is for service keys: players do not see the deployment.
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "permission_denied");

    // A deadline shorter than the work: 504, and the server stays healthy.
    let mut hdrs = vec![
        ("content-type", "application/json"),
        ("connect-timeout-ms", "1"),
    ];
    hdrs.push(("x-request-id", "deadline-test"));
    let r = c
        .request(
            Method::POST,
            LOGIN,
            &hdrs,
            r#"{"username":"dave","password":"correct-horse"}"#,
        )
        .await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.json()["code"], "deadline_exceeded");
    assert_eq!(r.headers["x-request-id"], "deadline-test");

    assert_eq!(c.get("/healthz").await.status, 200);
}

/// Writes raw bytes on a fresh TLS connection and reads until it closes.
async fn raw(edge: &Edge, request: &str) -> String {
    let mut tls = edge.client().tls(false).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn data_and_tokens_survive_a_restart() {
    let edge = Edge::start(&[]);
    let (access, refresh, _) = login(&edge, "erin").await;
    let r = edge
        .client()
        .call(
            PUT,
            Some(&access),
            json!({"key": "progress", "value": {"level": 7}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let edge = edge.restart();
    let c = edge.client();
    // The signing key persisted: the old token still verifies.
    let r = c.call(GET, Some(&access), json!({"key": "progress"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["entry"]["value"]["level"].as_f64(), Some(7.0));
    assert_eq!(
        c.call(REFRESH, None, json!({"refreshToken": refresh}))
            .await
            .status,
        200
    );
    assert_eq!(
        c.call(
            LOGIN,
            None,
            json!({"username": "erin", "password": "correct-horse"})
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn sigterm_drains_with_a_request_in_flight() {
    let mut edge = Edge::start(&["--drain-delay", "1s", "--shutdown-timeout", "10s"]);
    let (access, _, _) = login(&edge, "frank").await;
    let c = edge.client();

    // Start a request and send only half its body.
    let body = r#"{"key":"inflight","value":{"saved":true}}"#;
    let (first, rest) = body.split_at(10);
    let mut tls = c.tls(false).await.unwrap();
    let head = format!(
        "POST {PUT} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: Bearer {access}\r\ncontent-length: {}\r\n\r\n{first}",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    edge_e2e::eventually(
        Duration::from_secs(5),
        "the request is in flight",
        async || edge.gauge("edge_requests_in_flight").await >= 1.0,
    )
    .await;

    edge.signal("TERM");
    let termed = std::time::Instant::now();
    // During the drain delay: still serving (this is a new connection), readiness 503, liveness
    // 200.
    edge_e2e::eventually(Duration::from_secs(1), "readiness turns 503", async || {
        c.get("/readyz").await.status == 503
    })
    .await;
    let r = c.get("/readyz").await;
    assert_eq!(r.json()["draining"], true);
    assert_eq!(c.get("/healthz").await.status, 200);

    // After the drain delay new connections are refused, but the in-flight request completes.
    edge_e2e::eventually(Duration::from_secs(5), "the listener closes", async || {
        c.tls(false).await.is_err()
    })
    .await;
    assert!(
        termed.elapsed() >= Duration::from_millis(900),
        "not before the drain delay"
    );
    tls.write_all(rest.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"version\""), "{out}");

    let status = edge
        .wait_exit(Duration::from_secs(8))
        .expect("exits within the shutdown timeout");
    assert_eq!(status.code(), Some(0), "{}", edge.logs());
    assert!(edge.logs().contains("drained"));
}

#[test]
fn cli_config_check_certs_and_healthcheck() {
    let (code, out, _) = run_edge(&["config", "check", "--drain-delay", "2s"]);
    assert_eq!(code, 0);
    assert!(out.contains("drain_delay = \"2s\""), "{out}");
    assert!(out.contains("listen = \"0.0.0.0:8443\""), "{out}");

    let (code, _, err) = run_edge(&["config", "check", "--drain-delay", "60s"]);
    assert_eq!(code, 1, "a failed command exits 1");
    assert!(err.contains("drain_delay"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, "[http]\nmax_body_byte = 5\n").unwrap();
    let (code, _, err) = run_edge(&["config", "check", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 1, "a failed command exits 1");
    assert!(err.contains("max_body_byte"), "{err}");

    let out_dir = dir.path().join("certs");
    let (code, _, err) = run_edge(&["certs", "dev", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }

    let edge = Edge::start(&[]);
    let (code, _, err) = run_edge(&["healthcheck", "--addr", &edge.https.to_string()]);
    assert_eq!(code, 0, "{err}");
    drop(edge);
    let (code, _, _) = run_edge(&["healthcheck", "--addr", "127.0.0.1:1", "--timeout", "1s"]);
    assert_eq!(code, 1);
}

#[tokio::test]
async fn configured_certificate_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let (code, _, err) = run_edge(&["certs", "dev", "--out", certs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let edge = Edge::start(&[
        "--tls-cert",
        certs.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        certs.join("key.pem").to_str().unwrap(),
    ]);
    let c = edge_e2e::Client::new(&certs.join("ca.pem"), edge.https);
    assert_eq!(c.get("/healthz").await.status, 200);
    // No development certificate was made when one was configured.
    assert!(!edge.data_dir.join("tls").exists());
}

#[tokio::test]
async fn a_full_disk_refuses_writes_clearly_and_recovers() {
    // 4096 blocks: room for the store's first megabytes, not for many 30 KB values (under the
    // 32 KiB value cap; the per-player quota, 4 MiB, is larger than the room).
    let edge = Edge::start_with_file_limit(4096, &["--rate-limit", "false"]);
    let (access, _, _) = login(&edge, "disk").await;
    let c = edge.client();
    assert_eq!(
        c.call(PUT, Some(&access), json!({"key": "kept", "value": "small"}))
            .await
            .status,
        200
    );
    let big = "x".repeat(30_000);
    let mut full = None;
    for i in 0..130 {
        let r = c
            .call(
                PUT,
                Some(&access),
                json!({"key": format!("big{i}"), "value": big}),
            )
            .await;
        if r.status != 200 {
            full = Some(r);
            break;
        }
    }
    let r = full.expect("the file limit was reached");
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.json()["code"], "unavailable");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("nothing was written")
    );
    assert!(r.headers.contains_key("retry-after"));
    // Committed data is intact and the store keeps serving: it reopened itself.
    let mut ok = false;
    for _ in 0..20 {
        let r = c.call(GET, Some(&access), json!({"key": "kept"})).await;
        if r.status == 200 {
            assert_eq!(r.json()["entry"]["value"], "small");
            ok = true;
            break;
        }
        assert_eq!(r.status, 503, "{:?}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "reads recover after the failed write: {}", edge.logs());
    assert_eq!(
        c.call(PUT, Some(&access), json!({"key": "tiny", "value": 1}))
            .await
            .status,
        200
    );
    assert_eq!(c.get("/readyz").await.status, 200);
}

/// Plain HTTP on the HTTPS port gets a plain answer saying so, not a failed handshake; TLS on
/// the same port still works, and the refusal is counted.
#[tokio::test]
async fn plain_http_on_the_https_port_is_told_to_use_https() {
    let edge = Edge::start(&[]);
    let mut tcp = tokio::net::TcpStream::connect(edge.https).await.unwrap();
    tcp.write_all(b"POST /aicore.state.v1.StateService/Get HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut out))
        .await
        .expect("answered and closed")
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert!(out.contains("This port speaks HTTPS"), "{out}");
    let r = edge.client().get("/healthz").await;
    assert_eq!(r.status, 200);
    let metrics = edge.admin_text("/metrics").await;
    assert!(
        metrics.contains(r#"edge_tls_handshake_failures_total{reason="plain_http"} 1"#),
        "{metrics}"
    );
}
