//! Benchmark: LLM tokens per second through the edge across 100 concurrent SSE streams (grammar
//! model, local and over NATS to one `edge worker`), against a bare axum+rustls server streaming
//! the same events (the same JSON messages of a 500-token reply, recorded from the edge once and
//! loaded into the baseline once) for the same request bytes, in the same run: ABBA rounds after a
//! warm-up, servers pinned to one core and the load generator to the other, CPU time per event
//! from /proc. Then the
//! edge's memory per idle open stream with 10,000 of them (LLM streams, then event subscriptions,
//! with the time one event takes to reach all of them), the edge's idle RSS with the shipped
//! content and with a minimal replacing pack, and per idle stream on a TLS connection of its own.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench streams`.
//! `BENCH_SECS`, `BENCH_ROUNDS`, `BENCH_IDLE_STREAMS` (default 10000), `BENCH_IDLE_CONNS`
//! (default 4000) adjust it; `BENCH_PART=memory` runs the memory figures alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use proto::rpc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_e2e::bench::{certs, median, pin, pin_pid, settings, start_bare_on, verdict};
use edge_e2e::client::Conn;
use edge_e2e::load::cpu_time;
use edge_e2e::nats::Nats;
use edge_e2e::sse::Sse;
use edge_e2e::{Client, Edge, scenarios};
use http::Method;
use serde_json::json;

const STREAM: &str = rpc::llm::INFER_STREAM.path;
const STREAMS: usize = 100;

/// What one side of a round measured.
struct Rate {
    events_per_sec: f64,
    errors: u64,
    /// CPU time of the serving processes per data event.
    cpu_per_event: Option<Duration>,
}

/// 100 closed-loop streams for `measure` after `warmup`: data events per second, and the CPU
/// time of `pids` per event over the measured window.
async fn events_per_second(
    c: &Client,
    path: &'static str,
    token: Option<String>,
    body: Bytes,
    (warmup, measure): (Duration, Duration),
    pids: &[u32],
) -> Rate {
    let start = Instant::now();
    let from = start + warmup;
    let end = from + measure;
    let sampler = {
        let pids = pids.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            let before = cpu_time(&pids)?;
            tokio::time::sleep_until(end.into()).await;
            Some(cpu_time(&pids)?.saturating_sub(before))
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..STREAMS {
        let c = c.clone();
        let token = token.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let (mut events, mut errors) = (0u64, 0u64);
            while Instant::now() < end {
                let conn = match c.connect(false).await {
                    Ok(conn) => conn,
                    Err(_) => {
                        errors += 1;
                        continue;
                    }
                };
                // One connection per stream loop, kept alive across its streams.
                let mut conn = Some(conn);
                while Instant::now() < end {
                    let Some(cn) = conn.take() else { break };
                    let mut s =
                        Sse::send(cn, Method::POST, path, token.as_deref(), body.clone(), &[])
                            .await;
                    if !s.status.is_success() {
                        errors += 1;
                        break;
                    }
                    while let Some(e) = s.next().await {
                        if Instant::now() >= from
                            && Instant::now() < end
                            && e.event.is_none()
                            && !e.comment
                        {
                            events += 1;
                        }
                    }
                    conn = s.into_conn();
                }
            }
            (events, errors)
        }));
    }
    let (mut events, mut errors) = (0, 0);
    for t in tasks {
        let (e, x) = t.await.unwrap();
        events += e;
        errors += x;
    }
    let cpu = sampler.await.ok().flatten();
    Rate {
        events_per_sec: events as f64 / measure.as_secs_f64(),
        errors,
        cpu_per_event: cpu
            .filter(|_| events > 0)
            .map(|c| c / u32::try_from(events).unwrap_or(u32::MAX)),
    }
}

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certs(tmp.path());
    let nats = Nats::start("");
    pin_pid(nats.pid(), cpus);
    let url = nats.url();
    let bin = env!("CARGO_BIN_EXE_bare-hello");
    let (bare_proc, addr) = start_bare_on(
        cpus,
        bin,
        &[cert.to_str().unwrap(), key.to_str().unwrap(), "127.0.0.1:0"],
    );
    let bare_pids = [bare_proc.0.id()];
    let bare = Client::new(&ca, addr.unwrap());
    // One benchmark player opens every stream: lift the per-player and per-address stream caps
    // (which refuse past 32 per player) so they measure throughput, not the refusals.
    let caps = tmp.path().join("stream-caps.toml");
    std::fs::write(
        &caps,
        "[streams]\nmax_per_principal = 1000000\nmax_per_address = 1000000\n",
    )
    .unwrap();
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--config",
        caps.to_str().unwrap(),
    ];
    // `BENCH_PART=memory`: the memory figures alone.
    if std::env::var("BENCH_PART").is_ok_and(|p| p == "memory") {
        memory(&tls, &ca).await;
        return;
    }

    let mut args = vec!["--rate-limit", "false"];
    args.extend(tls);
    let edge = Edge::start(&args);
    pin_pid(edge.pid(), cpus);
    let c = Client::new(&ca, edge.https);
    let me = scenarios::login(&c, "bench-streams").await;
    let worker = Edge::start_worker(&["--nats", &url, "--services", "llm"]);
    pin_pid(worker.pid(), cpus);
    let mut args = vec!["--rate-limit", "false", "--nats", &url, "--remote", "llm"];
    args.extend(tls);
    let remote = Edge::start(&args);
    pin_pid(remote.pid(), cpus);
    let rc = Client::new(&ca, remote.https);
    let rme = scenarios::login(&rc, "bench-streams").await;

    // A long reply (the grammar's text for this seed), recorded once so the baseline streams
    // exactly the same messages.
    let request = Bytes::from(
        json!({"messages": [{"role": "user", "content": "Tell me of the north, at length."}], "maxTokens": 500, "seed": "11"}).to_string(),
    );
    let recorded: Vec<String> = Sse::send(
        c.connect(false).await.unwrap(),
        Method::POST,
        STREAM,
        Some(&me.access),
        request.clone(),
        &[],
    )
    .await
    .collect()
    .await
    .into_iter()
    .filter(|e| e.event.is_none() && !e.comment)
    .map(|e| e.data)
    .collect();
    // The baseline loads the recorded events once; then both sides get the same request bytes.
    let loaded = bare
        .request(
            Method::POST,
            "/sse/record",
            &[("content-type", "application/json")],
            serde_json::to_vec(&recorded).unwrap(),
        )
        .await;
    assert_eq!(loaded.status.as_u16(), 204);
    assert!(
        recorded.len() >= 400,
        "a long reply: {} events",
        recorded.len()
    );
    println!(
        "\nStreaming benchmark: {STREAMS} concurrent SSE streams, HTTP/1.1 over TLS, {} events per stream, {}s x {rounds} rounds (ABBA) after a warm-up; baseline = bare axum+rustls SSE of the same events; goal >= 0.50x locally",
        recorded.len(),
        measure.as_secs()
    );
    let times = (warmup, measure);
    // Each side's median CPU per event (us), to compare the NATS path with the in-process one.
    let mut cpu_per_event = Vec::new();
    for (name, client, token, pids) in [
        (
            "edge, grammar in-process",
            &c,
            me.access.clone(),
            vec![edge.pid()],
        ),
        (
            "edge, grammar on a NATS worker",
            &rc,
            rme.access.clone(),
            vec![remote.pid(), worker.pid(), nats.pid()],
        ),
    ] {
        let base = || {
            events_per_second(
                &bare,
                "/sse",
                Some(token.clone()),
                request.clone(),
                times,
                &bare_pids,
            )
        };
        let target = || {
            events_per_second(
                client,
                STREAM,
                Some(token.clone()),
                request.clone(),
                times,
                &pids,
            )
        };
        // Warm-up: each side for a while, unmeasured.
        let short = (Duration::ZERO, Duration::from_secs(3));
        events_per_second(
            &bare,
            "/sse",
            Some(token.clone()),
            request.clone(),
            short,
            &[],
        )
        .await;
        events_per_second(
            client,
            STREAM,
            Some(token.clone()),
            request.clone(),
            short,
            &[],
        )
        .await;
        let (mut ratios, mut cpu_ratios, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            let (b, t) = if round % 2 == 1 {
                let b = base().await;
                (b, target().await)
            } else {
                let t = target().await;
                (base().await, t)
            };
            let us = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
            let cpu = match (t.cpu_per_event, b.cpu_per_event) {
                (Some(tc), Some(bc)) if !bc.is_zero() => Some(tc.as_secs_f64() / bc.as_secs_f64()),
                _ => None,
            };
            println!(
                "  round {round}: baseline {:>8.0} events/s {:>5.2} us CPU/event (errors {}) | {name} {:>8.0} events/s {:>5.2} us CPU/event (errors {}) | {:.2}x events/s, {} CPU/event",
                b.events_per_sec,
                us(b.cpu_per_event),
                b.errors,
                t.events_per_sec,
                us(t.cpu_per_event),
                t.errors,
                t.events_per_sec / b.events_per_sec,
                cpu.map_or("n/a".to_owned(), |c| format!("{c:.2}x"))
            );
            ratios.push(t.events_per_sec / b.events_per_sec);
            if let Some(tc) = t.cpu_per_event {
                cpu_us.push(tc.as_secs_f64() * 1e6);
            }
            if let Some(c) = cpu {
                cpu_ratios.push(c);
            }
        }
        let worst = cpu_us.iter().copied().fold(f64::NAN, f64::max);
        cpu_per_event.push((median(cpu_us), worst));
        let (r, cr) = (median(ratios), median(cpu_ratios));
        println!(
            "{name}: median {r:.2}x events/s, {cr:.2}x CPU per event, over {rounds} rounds; goal >= 0.50x{}\n",
            if name.contains("in-process") {
                format!(": {}", verdict(r >= 0.50))
            } else {
                String::new()
            }
        );
    }

    if let [(local, local_worst), (remote, remote_worst)] = cpu_per_event[..] {
        let ratio = remote / local;
        println!(
            "NATS worker vs in-process edge: {ratio:.2}x CPU per event (edge + worker + nats-server {remote:.2} us, worst round {remote_worst:.2}; in-process {local:.2} us, worst {local_worst:.2}); goal <= 1.5x: {}\n",
            verdict(ratio <= 1.5)
        );
    }

    memory(&tls, &ca).await;
}

/// Memory: the edge idle, with the shipped content and with a minimal replacing pack; per idle
/// stream sharing connections (h2, 200 a connection); per idle stream with a TLS connection of
/// its own (HTTP/1.1, as browsers hold them), the kernel's socket buffers included.
async fn memory(tls: &[&str], ca: &std::path::Path) {
    idle_rss(tls).await;
    // Memory per idle stream: streams that got their first token and then wait an hour.
    let idle: usize = std::env::var("BENCH_IDLE_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut args = vec![
        "--rate-limit",
        "false",
        "--grammar-token-interval",
        "1h",
        "--max-streams",
        "20000",
        "--max-in-flight",
        "20000",
    ];
    args.extend_from_slice(tls);
    {
        let edge = Edge::start(&args);
        let c = Client::new(ca, edge.https);
        let me = scenarios::login(&c, "idle").await;
        let (open, per) = open_idle(&edge, &c, idle, |i| {
            let body = json!({"messages": [{"role": "user", "content": "wait"}], "maxTokens": 100, "seed": i.to_string()});
            (Method::POST, STREAM.to_owned(), me.access.clone(), Bytes::from(body.to_string()))
        })
        .await;
        println!(
            "Idle LLM streams: {} open, {per:.1} KiB per idle stream (goal < 64 KiB)",
            open.len()
        );
    }

    // The same for event subscriptions, then one event fanned out to all of them.
    let edge = Edge::start(&args);
    let c = Client::new(ca, edge.https);
    let me = scenarios::login(&c, "subscriber").await;
    let path = format!("/v1/events?topics=world,player.{}", me.player_id);
    let (mut open, per) = open_idle(&edge, &c, idle, |_| {
        (Method::GET, path.clone(), me.access.clone(), Bytes::new())
    })
    .await;
    println!(
        "Idle event subscriptions: {} open, {per:.1} KiB per subscription",
        open.len()
    );
    let t = Instant::now();
    let r = c
        .call(
            rpc::events::PUBLISH.path,
            Some(&me.access),
            json!({"topic": format!("player.{}", me.player_id), "type": "ping"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut waits = Vec::new();
    for mut s in open.drain(..) {
        waits.push(tokio::spawn(async move {
            loop {
                let e = s.next().await.expect("the event");
                if !e.comment {
                    return Instant::now();
                }
            }
        }));
    }
    let mut last = t;
    for w in waits {
        last = last.max(w.await.unwrap());
    }
    println!(
        "One event to {idle} subscribers: all had it {:.0} ms after the publish",
        (last - t).as_secs_f64() * 1000.0
    );
    drop(edge);
    one_connection_each(&args, ca, idle_conns()).await;
}

/// `BENCH_IDLE_CONNS` (default 4000): streams opened each on a connection of its own.
fn idle_conns() -> usize {
    std::env::var("BENCH_IDLE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

/// The minimal content pack that loads in `replace` mode (`tests/fixtures/minimal-pack`).
fn minimal_pack() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/minimal-pack")
}

/// The edge's RSS once started and idle (no request yet), with the shipped content and with the
/// minimal replacing pack: the difference is the content's share.
async fn idle_rss(tls: &[&str]) {
    let pack = minimal_pack();
    let pack = pack.to_str().expect("utf-8 path");
    let mut kib = Vec::new();
    for extra in [
        &[][..],
        &["--content-pack", pack, "--content-mode", "replace"][..],
    ] {
        let mut args = vec!["--rate-limit", "false"];
        args.extend_from_slice(tls);
        args.extend_from_slice(extra);
        let edge = Edge::start(&args);
        // Let start-up's transient work (content checks, the store's first pages) settle: the
        // allocator returns the pages it freed after a delay (RSS peaks near 67 MiB at start).
        tokio::time::sleep(Duration::from_secs(10)).await;
        kib.push(edge.rss_kib());
    }
    let (shipped, minimal) = (kib[0], kib[1]);
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "Idle RSS: {:.1} MiB with the minimal replacing pack (goal < 60 MB: {}), {:.1} MiB with the shipped content: the content's share {:.1} MiB",
        mib(minimal),
        verdict(minimal * 1024 < 60_000_000),
        mib(shipped),
        mib(shipped.saturating_sub(minimal)),
    );
}

/// Kernel memory of the TCP sockets whose local port is `port` (the edge's side): receive
/// queue, write queue and forward allocation (`ss -tm` skmem `r`, `w` and `f`), in KiB.
fn socket_kib(port: u16) -> u64 {
    let out = std::process::Command::new("ss")
        .args([
            "-tmnH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut bytes = 0u64;
    for skmem in text.split("skmem:(").skip(1) {
        let fields = skmem.split(')').next().unwrap_or_default();
        for f in fields.split(',') {
            let (name, n) = f.split_at(f.find(|c: char| c.is_ascii_digit()).unwrap_or(f.len()));
            if matches!(name, "r" | "w" | "f") {
                bytes += n.parse::<u64>().unwrap_or(0);
            }
        }
    }
    bytes / 1024
}

/// TCP memory of the whole host, both ends of every socket (`/proc/net/sockstat` `mem`, pages),
/// in KiB.
fn sockstat_kib() -> u64 {
    std::fs::read_to_string("/proc/net/sockstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1))
        .and_then(|p| p.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// The kernel's slab memory (`/proc/meminfo` `Slab`, KiB): socket structures, files, epoll
/// entries, of both ends of every connection.
fn slab_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Idle event subscriptions each on a TLS connection of its own (HTTP/1.1, as a browser holds
/// one), read to their first message: the edge's RSS growth plus its sockets' kernel memory, per
/// stream.
async fn one_connection_each(args: &[&str], ca: &std::path::Path, count: usize) {
    let mut args = args.to_vec();
    args.extend(["--max-connections", "30000"]);
    let edge = Edge::start(&args);
    let c = Client::new(ca, edge.https);
    let me = scenarios::login(&c, "one-each").await;
    let path = format!("/v1/events?topics=world,player.{}", me.player_id);
    let open_batch = |n: usize| {
        let (c, path, token) = (c.clone(), path.clone(), me.access.clone());
        async move {
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (c, path, token) = (c.clone(), path.clone(), token.clone());
                tasks.push(tokio::spawn(async move {
                    let conn = c.connect(false).await.expect("connect");
                    let mut s =
                        Sse::send(conn, Method::GET, &path, Some(&token), Bytes::new(), &[]).await;
                    assert!(s.status.is_success(), "{}", s.status);
                    assert!(s.next().await.is_some(), "first message");
                    s
                }));
            }
            let mut open = Vec::with_capacity(n);
            for t in tasks {
                open.push(t.await.unwrap());
            }
            open
        }
    };
    // Warm up the allocator and code paths (and the login's freed memory) with a first batch
    // held open throughout, so the readings compare like with like.
    let warm = open_batch(200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let port = edge.https.port();
    let (rss0, sock0, host0, slab0) =
        (edge.rss_kib(), socket_kib(port), sockstat_kib(), slab_kib());
    let mut open = Vec::with_capacity(count);
    while open.len() < count {
        let n = (count - open.len()).min(200);
        open.extend(open_batch(n).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss1, sock1, host1, slab1) =
        (edge.rss_kib(), socket_kib(port), sockstat_kib(), slab_kib());
    let n = open.len() as f64;
    let rss = rss1.saturating_sub(rss0) as f64 / n;
    let sock = sock1.saturating_sub(sock0) as f64 / n;
    println!(
        "Idle event subscriptions, one TLS connection each (HTTP/1.1): {} open, {:.1} KiB per stream = {rss:.1} KiB of edge RSS + {sock:.1} KiB of its sockets' kernel buffers (goal < 32 KiB: {}); the host's TCP buffer memory, both ends, grew {:.1} KiB per stream, its kernel slab (sockets, files, epoll; both ends and the load generator's) {:.1} KiB",
        open.len(),
        rss + sock,
        verdict(rss + sock < 32.0),
        host1.saturating_sub(host0) as f64 / n,
        slab1.saturating_sub(slab0) as f64 / n,
    );
    println!(
        "  ss -tm of the edge's end: {sock0} KiB -> {sock1} KiB (idle sockets hold no queued bytes)"
    );
    drop(warm);
}

/// Opens `count` streams over h2 (200 per connection), each read to its first message; returns
/// them and the edge's resident memory growth per stream in KiB.
async fn open_idle(
    edge: &Edge,
    c: &Client,
    count: usize,
    request: impl Fn(usize) -> (Method, String, String, Bytes),
) -> (Vec<Sse>, f64) {
    let per_conn = 200;
    let mut conns = Vec::new();
    for _ in 0..count.div_ceil(per_conn) {
        conns.push(c.connect(true).await.unwrap());
    }
    // Warm up allocator arenas and code paths before the baseline reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = edge.rss_kib();
    let mut open = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        let conn = match &conns[i / per_conn] {
            Conn::H2(s) => Conn::H2(s.clone()),
            Conn::H1(_) => panic!("h2 expected"),
        };
        let (method, path, token, body) = request(i);
        batch.push(tokio::spawn(async move {
            let mut s = Sse::send(conn, method, &path, Some(&token), body, &[]).await;
            assert!(s.status.is_success(), "{}", s.status);
            assert!(s.next().await.is_some(), "first message");
            s
        }));
        if batch.len() == 500 {
            for t in batch.drain(..) {
                open.push(t.await.unwrap());
            }
        }
    }
    for t in batch.drain(..) {
        open.push(t.await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = edge.rss_kib();
    #[allow(clippy::cast_precision_loss)]
    let per = after.saturating_sub(before) as f64 / open.len() as f64;
    (open, per)
}
