//! End-to-end: bulkheads and priorities, header limits, the connection cap, slow clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::{Duration, Instant};

use edge_e2e::{Client, Edge, scenarios};
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const DECIDE: &str = rpc::npc::GET_NPC.path;
const GET: &str = rpc::state::GET.path;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Sends a request's headers announcing a body that never comes; the call holds its slot.
async fn stalled_call(c: &Client, path: &str, token: &str) -> Tls {
    let mut tls = c.tls(false).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: Bearer {token}\r\ncontent-length: 100\r\n\r\n{{"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

/// The status line's code of whatever the server has answered so far, waiting up to `wait`.
async fn answered(tls: &mut Tls, wait: Duration) -> Option<u16> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, tls.read(&mut buf)).await {
        Ok(Ok(n)) if n >= 12 => std::str::from_utf8(&buf[9..12]).ok()?.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn a_flood_on_one_service_leaves_others_their_capacity() {
    let edge = Edge::start(&["--rate-limit", "false", "--max-in-flight", "20"]);
    let c = edge.client();
    let me = scenarios::login(&c, "flooder").await;

    // npc is low priority: it may fill 60% of the 20 slots, then is refused at once.
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(stalled_call(&c, DECIDE, &me.access).await);
    }
    edge_e2e::eventually(
        Duration::from_secs(5),
        "the 12 calls are admitted",
        async || edge.gauge("edge_requests_in_flight").await >= 12.0,
    )
    .await;
    for tls in &mut held {
        assert_eq!(
            answered(tls, Duration::from_millis(20)).await,
            None,
            "admitted and waiting"
        );
    }
    let started = Instant::now();
    let mut extra = stalled_call(&c, DECIDE, &me.access).await;
    assert_eq!(
        answered(&mut extra, Duration::from_secs(2)).await,
        Some(503)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not queued"
    );

    // Meanwhile other services are served, and logins keep the headroom reserved for them.
    let r = c
        .call(GET, Some(&me.access), json!({"key": "nothing"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "served: {:?}", r.body);
    let again = scenarios::login_again(&c, "flooder").await;
    assert!(!again.access.is_empty());
    let r = c
        .call(GET, Some(&me.access), json!({"key": "nothing"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The flood ends: npc gets its slots back.
    drop(held);
    edge_e2e::eventually(Duration::from_secs(5), "npc is served again", async || {
        let r = c
            .call(DECIDE, Some(&me.access), json!({"npcId": "brenna-hale"}))
            .await;
        assert!(matches!(r.status.as_u16(), 200 | 503), "{:?}", r.body);
        r.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn oversized_and_overfull_headers_get_431() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let big = "x".repeat(40 * 1024);
    let r = c
        .request(
            http::Method::GET,
            "/healthz",
            &[("x-big", big.as_str())],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let names: Vec<String> = (0..100).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let r = c.request(http::Method::GET, "/healthz", &many, "").await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let edge = Edge::start(&["--max-connections", "4"]);
    let c = edge.client();
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(c.connect(false).await.unwrap());
    }
    let started = Instant::now();
    assert!(c.tls(false).await.is_err(), "the fifth is refused");
    assert!(started.elapsed() < Duration::from_secs(2));
    open.pop();
    let mut ok = false;
    for _ in 0..20 {
        if c.tls(false).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a freed slot is usable again");
}

#[tokio::test]
async fn slow_headers_and_bodies_are_cut_off_while_others_are_served() {
    let edge = Edge::start(&[
        "--rate-limit",
        "false",
        "--idle-timeout",
        "2s",
        "--request-timeout",
        "2s",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "patient").await;

    // 40 slowloris clients: a header line every 300 ms, never finishing.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut tls = c.tls(false).await.unwrap();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
            .await
            .unwrap();
        slow.push(tls);
    }
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        let mut cut = vec![None; slow.len()];
        while started.elapsed() < Duration::from_secs(6) && cut.iter().any(Option::is_none) {
            for (i, tls) in slow.iter_mut().enumerate() {
                if cut[i].is_none() && tls.write_all(b"x-slow: 1\r\n").await.is_err() {
                    cut[i] = Some(started.elapsed());
                }
                let mut b = [0u8; 512];
                if cut[i].is_none()
                    && let Ok(Ok(0)) =
                        tokio::time::timeout(Duration::from_millis(1), tls.read(&mut b)).await
                {
                    cut[i] = Some(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        cut
    });

    // A slow body: headers, then nothing.
    let mut stalled = stalled_call(&c, GET, &me.access).await;

    // Normal clients are served meanwhile.
    for _ in 0..10 {
        let r = c.call(GET, Some(&me.access), json!({"key": "k"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        answered(&mut stalled, Duration::from_secs(3)).await,
        Some(504)
    );

    let cut = trickle.await.unwrap();
    for (i, t) in cut.iter().enumerate() {
        let t = t.unwrap_or_else(|| panic!("slow client {i} was never cut off"));
        assert!(t < Duration::from_secs(5), "client {i} cut after {t:?}");
    }
}

/// Writes `head`, then `body_len` bytes of body in 64 KiB pieces (every write must succeed), then
/// reads the answer to the end.
async fn send_all_then_read(c: &Client, head: &str, body_len: usize) -> Result<String, String> {
    let mut tls = c.tls(false).await.map_err(|e| e.to_string())?;
    tls.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("head: {e}"))?;
    let piece = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = piece.len().min(body_len - sent);
        tls.write_all(&piece[..n])
            .await
            .map_err(|e| format!("body write after {sent} bytes: {e}"))?;
        sent += n;
    }
    tls.flush().await.map_err(|e| format!("flush: {e}"))?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .map_err(|_| "no end within 10 s".to_string())?
        .map_err(|e| format!("read: {e} (after {:?})", String::from_utf8_lossy(&out)))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn an_early_answer_reaches_a_client_still_sending() {
    // The edge answers before it reads the body (a malformed header, a body over the limit, no
    // credentials), then closes. Closing on unread bytes would make the kernel reset the
    // connection: the client's writes fail and the answer is lost. The edge lingers instead.
    let edge = Edge::start(&["--rate-limit", "false", "--max-body-bytes", "65536"]);
    let c = edge.client();
    let token = scenarios::login(&c, "uploader").await.access;
    let body = 2 * 1024 * 1024;
    let cases = [
        (
            "a malformed header",
            format!(
                "POST {GET} HTTP/1.1\r\nhost: localhost\r\nbad header: x\r\ncontent-length: {body}\r\n\r\n"
            ),
            "HTTP/1.1 400",
        ),
        (
            "a body over the limit",
            format!(
                "POST {GET} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: Bearer {token}\r\ncontent-length: {body}\r\n\r\n"
            ),
            "HTTP/1.1 413",
        ),
        (
            "no credentials",
            format!(
                "POST {GET} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {body}\r\n\r\n"
            ),
            "HTTP/1.1 401",
        ),
    ];
    for (what, head, status) in cases {
        for round in 0..3 {
            let answer = send_all_then_read(&c, &head, body).await;
            let answer = answer.unwrap_or_else(|e| panic!("{what} (round {round}): {e}"));
            assert!(answer.starts_with(status), "{what}: {answer}");
        }
    }
    // Lingering ends when the client closes: the edge still serves at once.
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
}
