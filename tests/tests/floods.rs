//! End-to-end: HTTP/2 floods, written frame by frame on raw TLS connections, checked for what
//! README ("Security") and SECURITY.md say. A rapid-reset flood (CVE-2023-44487: open a stream,
//! reset it, repeat) gets GOAWAY `ENHANCE_YOUR_CALM` at the 21st stream reset before the server
//! accepted it; a CONTINUATION flood (CVE-2024-27316: one header block that never ends) at the
//! 6th CONTINUATION frame; a flood of malformed requests the server must reset ("MadeYouReset")
//! at the 101st (the limits are set in `edge/src/http/server.rs`). Meanwhile a well-behaved
//! client on its own connection, asking all through the flood, stays fast.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use edge_e2e::{Client, Edge, scenarios};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const GET: &str = rpc::state::GET.path;

const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ACK: u8 = 1;
const CANCEL: u32 = 8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// `H2_MAX_PENDING_ACCEPT_RESETS` in the edge: the next reset closes the connection.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// `H2_MAX_LOCAL_ERROR_RESETS` in the edge: the next stream the server resets closes the
/// connection.
const MAX_LOCAL_ERROR_RESETS: usize = 100;
/// h2 allows max(5, 1.25 x max_header_bytes / max_frame_size) CONTINUATION frames in one header
/// block: 5 with the edge's defaults (32 KiB, 16 KiB). The next one closes the connection.
const MAX_CONTINUATIONS: usize = 5;
/// How long attackers keep coming, one connection after another, each flooding until closed.
const FLOOD_FOR: Duration = Duration::from_secs(2);
/// Requests the bystander makes before the flood, its baseline.
const BASELINE: usize = 100;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK block for `GET /healthz` on localhost: indexed `:method GET` and `:scheme https`,
/// literal `:path` and `:authority` without indexing (the dynamic table stays empty).
fn request_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x87, 0x04, 8];
    b.extend_from_slice(b"/healthz");
    b.extend_from_slice(&[0x01, 9]);
    b.extend_from_slice(b"localhost");
    b
}

/// A request on `stream`, then its cancellation.
fn reset_pair(stream: u32) -> Vec<u8> {
    let mut f = frame(HEADERS, END_HEADERS | END_STREAM, stream, &request_block());
    f.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
    f
}

/// The rapid-reset flood, `i`th write: 256 pairs (11.5 KiB, one TLS record, so the server reads
/// the whole write before it accepts any of its streams, as it would a flood's steady stream).
fn rapid_reset(i: usize) -> Vec<u8> {
    const PAIRS: usize = 256;
    (i * PAIRS..(i + 1) * PAIRS)
        .flat_map(|k| reset_pair(2 * k as u32 + 1))
        .collect()
}

/// A request on `stream` that ends at once yet says `content-length: 1` (the literal's name
/// from the static table, index 28): malformed, so the server must reset the stream
/// (PROTOCOL_ERROR) for the client's fault ("MadeYouReset").
fn malformed_request(stream: u32) -> Vec<u8> {
    let mut block = request_block();
    block.extend_from_slice(&[0x0f, 28 - 15, 1, b'1']);
    frame(HEADERS, END_HEADERS | END_STREAM, stream, &block)
}

/// The malformed-request flood, `i`th write: 256 requests.
fn malformed_requests(i: usize) -> Vec<u8> {
    const REQUESTS: usize = 256;
    (i * REQUESTS..(i + 1) * REQUESTS)
        .flat_map(|k| malformed_request(2 * k as u32 + 1))
        .collect()
}

/// A full CONTINUATION frame on stream 1: literal headers without indexing, `x-a: aaaa...`.
fn continuation() -> Vec<u8> {
    let mut header = vec![0x00, 3];
    header.extend_from_slice(b"x-a");
    header.push(100);
    header.extend(std::iter::repeat_n(b'a', 100));
    let mut payload = Vec::new();
    while payload.len() + header.len() <= 16384 {
        payload.extend_from_slice(&header);
    }
    frame(CONTINUATION, 0, 1, &payload)
}

/// The CONTINUATION flood, `i`th write: the header block's start, then one frame a write.
fn continuation_flood(i: usize) -> Vec<u8> {
    let mut f = Vec::new();
    if i == 0 {
        f = frame(HEADERS, END_STREAM, 1, &request_block());
    }
    f.extend(continuation());
    f
}

/// A GOAWAY frame as the server sent it.
#[derive(Debug, Clone)]
struct GoAway {
    last_stream: u32,
    code: u32,
    debug: String,
}

/// How an attacking connection ended.
#[derive(Debug)]
struct Ended {
    goaway: Option<GoAway>,
    /// The server closed the connection (after its GOAWAY, if any).
    closed: bool,
    /// Bytes of flood written (the handshake's preface and SETTINGS not counted). Until closed,
    /// most of them went into socket buffers after the server's GOAWAY and were read away by its
    /// lingering close, not by HTTP/2: the bytes the server acted on are bounded by `budget`.
    sent: usize,
}

/// Opens a raw HTTP/2 connection and writes `writes(0)`, `writes(1)`, ... until the server's
/// GOAWAY arrives or the connection closes, or, with `budget`, exactly that many bytes (in one
/// write when they fit) and then nothing more.
async fn attack(
    client: &Client,
    mut writes: impl FnMut(usize) -> Vec<u8>,
    budget: Option<usize>,
) -> Ended {
    let tls = client.tls(true).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut rd, mut wr) = tokio::io::split(tls);
    wr.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    wr.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let (settings_tx, settings_rx) = tokio::sync::oneshot::channel::<()>();
    let (goaway_tx, mut goaway_rx) = tokio::sync::watch::channel(None::<GoAway>);
    // Reads frames until the server closes: passes on its SETTINGS and its (first) GOAWAY.
    let reader = tokio::spawn(async move {
        let mut settings_tx = Some(settings_tx);
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 16384];
        loop {
            while buf.len() >= 9 {
                let len =
                    (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let (kind, flags, p) = (buf[3], buf[4], &buf[9..9 + len]);
                if kind == SETTINGS
                    && flags & ACK == 0
                    && let Some(tx) = settings_tx.take()
                {
                    let _ = tx.send(());
                }
                if kind == GOAWAY && goaway_tx.borrow().is_none() {
                    assert!(len >= 8, "a GOAWAY frame of {len} bytes");
                    goaway_tx.send_replace(Some(GoAway {
                        last_stream: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                        code: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                        debug: String::from_utf8_lossy(&p[8..]).into_owned(),
                    }));
                }
                buf.drain(..9 + len);
            }
            match rd.read(&mut chunk).await {
                // EOF after close_notify, or a reset: closed either way.
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    settings_rx.await.expect("the server's SETTINGS");
    wr.write_all(&frame(SETTINGS, ACK, 0, &[])).await.unwrap();
    let mut sent = 0;
    let flooding = async {
        for i in 0.. {
            let mut bytes = writes(i);
            if let Some(budget) = budget {
                bytes.truncate(budget - sent);
                if bytes.is_empty() {
                    break;
                }
            }
            tokio::select! {
                written = wr.write_all(&bytes) => match written {
                    Ok(()) => sent += bytes.len(),
                    Err(_) => break,
                },
                // Stop at the GOAWAY (or the reader's end), as an attacker would.
                _ = goaway_rx.changed() => break,
            }
        }
        let _ = wr.flush().await;
    };
    // A flood the server never stops ends here, and fails below.
    let _ = tokio::time::timeout(Duration::from_secs(10), flooding).await;
    let closed = match tokio::time::timeout(Duration::from_secs(10), reader).await {
        Ok(read) => {
            read.unwrap();
            true
        }
        Err(_) => false,
    };
    let goaway = goaway_rx.borrow().clone();
    Ended {
        goaway,
        closed,
        sent,
    }
}

/// Asserts that the server sent GOAWAY `ENHANCE_YOUR_CALM` with `debug` and closed.
fn assert_calmed(name: &str, ended: &Ended, debug: &str) -> u32 {
    let goaway = ended
        .goaway
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no GOAWAY ({ended:?})"));
    assert_eq!(
        (goaway.code, goaway.debug.as_str()),
        (ENHANCE_YOUR_CALM, debug),
        "{name}: {ended:?}"
    );
    assert!(
        ended.closed,
        "{name}: the connection stays open ({ended:?})"
    );
    goaway.last_stream
}

/// One request of the bystander's: when it started and ended.
struct Sample {
    start: Instant,
    end: Instant,
}

impl Sample {
    fn took(&self) -> Duration {
        self.end - self.start
    }
}

/// A well-behaved client on its own HTTP/2 connection and its own thread (so the attackers'
/// writes in the test's runtime do not delay it), making state Gets one after another until
/// `stop`. Each must be answered (404: no such key); `done` counts them.
fn bystander(
    c: Client,
    token: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut conn = c.connect(true).await.unwrap();
            let auth = format!("Bearer {token}");
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
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
                    .expect("the bystander's request");
                assert_eq!(r.status, 404, "{}", r.text());
                samples.push(Sample {
                    start,
                    end: Instant::now(),
                });
                done.fetch_add(1, Ordering::Relaxed);
            }
            samples
        })
    })
}

fn p95(samples: &[&Sample]) -> Duration {
    let mut times: Vec<Duration> = samples.iter().map(|s| s.took()).collect();
    times.sort();
    times[(times.len() * 95 / 100).min(times.len() - 1)]
}

async fn wait_for(done: &AtomicUsize, n: usize) {
    let t = Instant::now();
    while done.load(Ordering::Relaxed) < n {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the bystander stalls"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A flood drill. A bystander starts asking and makes its baseline; then one connection writes
/// exactly `budget` bytes of the flood and nothing more, and must be calmed (so the server
/// acted within that many bytes); then for `FLOOD_FOR` attackers flood one connection after
/// another, each until the server closes it, and each must be calmed with `last_stream` at most
/// `max_last_stream` (how far the server read). The bystander asks all through, its requests
/// succeed and stay fast.
async fn drill(
    name: &str,
    writes: fn(usize) -> Vec<u8>,
    budget: usize,
    debug: &str,
    max_last_stream: u32,
) {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "bystander").await;
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let asking = bystander(
        c.clone(),
        me.access.clone(),
        Arc::clone(&stop),
        Arc::clone(&done),
    );
    wait_for(&done, BASELINE).await;

    let flood_start = Instant::now();
    let exact = attack(&c, writes, Some(budget)).await;
    assert_eq!(exact.sent, budget, "{name}: {exact:?}");
    let last = assert_calmed(name, &exact, debug);
    assert!(last <= max_last_stream, "{name}: {exact:?}");
    let mut connections = 1;
    let mut most = 0;
    while flood_start.elapsed() < FLOOD_FOR {
        let ended = attack(&c, writes, None).await;
        let last = assert_calmed(name, &ended, debug);
        assert!(last <= max_last_stream, "{name}: {ended:?}");
        most = most.max(ended.sent);
        connections += 1;
    }
    let flood_end = Instant::now();
    // A few answers after the flood, so the bystander's requests cover all of it.
    let after = done.load(Ordering::Relaxed) + 3;
    wait_for(&done, after).await;
    stop.store(true, Ordering::Relaxed);
    let samples = asking.join().expect("the bystander's requests all succeed");

    let before: Vec<&Sample> = samples.iter().filter(|s| s.end <= flood_start).collect();
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.start >= flood_start && s.end <= flood_end)
        .collect();
    // The overlap, by the clock: asking before the flood began, answered after it ended, and
    // answered many times in between.
    assert!(before.len() >= BASELINE, "{name}: {} before", before.len());
    assert!(
        samples.iter().any(|s| s.end > flood_end),
        "{name}: the bystander stopped before the flood did"
    );
    assert!(
        during.len() >= 20,
        "{name}: {} answers during the flood",
        during.len()
    );
    // p95 within 5x the baseline's, or 200 ms above it, whichever is more. On 2 shared cores
    // the attackers' process takes about one core and the edge splits the rest between them
    // and the bystander, so a slowdown of a few times is expected and no failure; 200 ms keeps
    // a 1 ms baseline from making 5x a hair trigger. A server the flood stalls (a blocked
    // runtime, a connection's frames served ahead of everyone else's) shows seconds.
    let (base, flooded) = (p95(&before), p95(&during));
    assert!(
        flooded <= (base * 5).max(base + Duration::from_millis(200)),
        "{name}: the bystander's p95 went from {base:?} to {flooded:?} during the flood"
    );
    // The server is fine afterwards.
    assert_eq!(c.get("/healthz").await.status, 200);
    eprintln!(
        "{name}: {connections} connections calmed in {:?} (exactly {budget} bytes: GOAWAY last \
         stream {last}; until closed: at most {most} bytes written, mostly into socket buffers); \
         the bystander's \
         p95 {base:?} -> {flooded:?} over {} answers",
        flood_end - flood_start,
        during.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rapid_reset_flood_is_calmed_at_its_21st_reset_and_spares_others() {
    // The 21st pair trips the limit: the server read exactly these bytes, and no stream past it.
    let streams = MAX_PENDING_ACCEPT_RESETS + 1;
    drill(
        "rapid reset",
        rapid_reset,
        streams * reset_pair(1).len(),
        "too_many_resets",
        2 * streams as u32 - 1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_continuation_flood_is_calmed_at_its_6th_continuation_and_spares_others() {
    // The HEADERS frame and one CONTINUATION more than allowed; the stream never began, so the
    // GOAWAY's last stream is 0.
    let budget = continuation_flood(0).len() + MAX_CONTINUATIONS * continuation().len();
    drill(
        "continuation",
        continuation_flood,
        budget,
        "too_many_continuations",
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_streams_the_server_must_reset_is_calmed_at_the_101st_and_spares_others() {
    // Counted over the connection's life, bursts or not: the 101st malformed request trips it.
    let streams = MAX_LOCAL_ERROR_RESETS + 1;
    drill(
        "malformed requests",
        malformed_requests,
        streams * malformed_request(1).len(),
        "too_many_internal_resets",
        2 * streams as u32 - 1,
    )
    .await;
}
