//! End-to-end: HTTP/2 floods on one connection, written frame by frame. A rapid-reset flood
//! (CVE-2023-44487: open a stream, reset it, repeat) and a CONTINUATION flood (CVE-2024-27316:
//! one header block that never ends) each get that connection closed, while other clients'
//! latency stays within 2x of what it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::time::{Duration, Instant};

use edge_e2e::{Client, Edge, scenarios};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const GET: &str = rpc::state::GET.path;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ACK: u8 = 1;

/// An HPACK block for `GET /healthz` on localhost: indexed `:method GET` and `:scheme https`,
/// literal `:path` and `:authority` without indexing (the dynamic table stays empty).
fn request_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x87, 0x04, 8];
    b.extend_from_slice(b"/healthz");
    b.extend_from_slice(&[0x01, 9]);
    b.extend_from_slice(b"localhost");
    b
}

/// How the server ended an attacking connection.
#[derive(Debug, PartialEq)]
enum Ended {
    GoAway(u32),
    Closed,
}

/// Opens a raw HTTP/2 connection; `attack` writes frames until the write fails or it is done.
/// Returns how the server ended the connection (within `within`), and how many bytes went out.
async fn flood<F>(client: &Client, attack: F, within: Duration) -> (Option<Ended>, usize)
where
    F: FnOnce(u32) -> Vec<Vec<u8>> + Send + 'static,
{
    let tls = client.tls(true).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut rd, mut wr) = tokio::io::split(tls);
    wr.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    wr.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // Reads frames: acknowledges the server's settings, notes a GOAWAY or the end.
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<()>(4);
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            while buf.len() >= 9 {
                let len =
                    (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let (kind, flags) = (buf[3], buf[4]);
                if kind == SETTINGS && flags & ACK == 0 {
                    let _ = ack_tx.send(()).await;
                }
                if kind == GOAWAY && len >= 8 {
                    let code = u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]);
                    return Some(Ended::GoAway(code));
                }
                buf.drain(..9 + len);
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return Some(Ended::Closed),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    ack_rx.recv().await.expect("the server's SETTINGS");
    wr.write_all(&frame(SETTINGS, ACK, 0, &[])).await.unwrap();
    let frames = tokio::task::spawn_blocking(move || attack(1))
        .await
        .unwrap();
    let mut sent = 0;
    let writer = async {
        for f in frames {
            if wr.write_all(&f).await.is_err() {
                break;
            }
            sent += f.len();
        }
        let _ = wr.flush().await;
    };
    let _ = tokio::time::timeout(within, writer).await;
    let ended = tokio::time::timeout(within, reader)
        .await
        .ok()
        .and_then(|r| r.ok().flatten());
    (ended, sent)
}

/// Median latency of `n` state Gets from a well-behaved client (HTTP/2, one connection).
async fn median_latency(c: &Client, token: &str, n: usize) -> Duration {
    let mut conn = c.connect(true).await.unwrap();
    let auth = format!("Bearer {token}");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = conn
            .send(
                http::Method::POST,
                GET,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                bytes::Bytes::from_static(br#"{"key":"save.slot1"}"#),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 404, "{}", r.text());
        times.push(t.elapsed());
    }
    times.sort();
    times[n / 2]
}

/// Runs `attack` while a well-behaved client measures its latency: the attacking connection is
/// closed, and the other client's median latency stays within 2x (plus a millisecond of slack
/// for a shared 2-core machine).
async fn drill<F>(name: &str, attack: F)
where
    F: FnOnce(u32) -> Vec<Vec<u8>> + Send + 'static,
{
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "bystander").await;
    let before = median_latency(&c, &me.access, 200).await;
    let measuring = {
        let (c, token) = (c.clone(), me.access.clone());
        tokio::spawn(async move { median_latency(&c, &token, 200).await })
    };
    let (ended, sent) = flood(&c, attack, Duration::from_secs(20)).await;
    let during = measuring.await.unwrap();
    assert!(
        matches!(ended, Some(Ended::GoAway(_) | Ended::Closed)),
        "{name}: the attacking connection is closed ({ended:?}, {sent} bytes sent)"
    );
    assert!(
        during <= before * 2 + Duration::from_millis(1),
        "{name}: others' median latency {during:?} vs {before:?} before"
    );
    // The server is fine afterwards.
    assert_eq!(c.get("/healthz").await.status, 200);
    eprintln!("{name}: {ended:?} after {sent} bytes; others' median {before:?} -> {during:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rapid_reset_flood_closes_its_connection_and_spares_others() {
    drill("rapid reset", |_| {
        let block = request_block();
        (0..100_000u32)
            .flat_map(|i| {
                let stream = 2 * i + 1;
                [
                    frame(HEADERS, END_HEADERS | END_STREAM, stream, &block),
                    // CANCEL
                    frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()),
                ]
            })
            .collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_continuation_flood_closes_its_connection_and_spares_others() {
    drill("continuation", |_| {
        let mut frames = vec![frame(HEADERS, END_STREAM, 1, &request_block())];
        // Literal headers without indexing, `x-a: aaaa...`, 16 KiB a frame, 64 MiB in all.
        let mut header = vec![0x00, 3];
        header.extend_from_slice(b"x-a");
        header.push(100);
        header.extend(std::iter::repeat_n(b'a', 100));
        let mut payload = Vec::new();
        while payload.len() + header.len() <= 16384 {
            payload.extend_from_slice(&header);
        }
        frames.extend((0..4096).map(|_| frame(CONTINUATION, 0, 1, &payload)));
        frames
    })
    .await;
}
