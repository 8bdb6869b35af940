//! End-to-end fault drills through the real binary: a corrupt store file at start, a frozen
//! nats-server, the JetStream bucket deleted under a running edge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proto::rpc;
use std::process::Command;
use std::time::{Duration, Instant};

use edge_e2e::nats::Nats;
use edge_e2e::{Edge, edge_bin, eventually, scenarios};
use serde_json::json;

const GET: &str = rpc::state::GET.path;
const PUT: &str = rpc::state::PUT.path;
const SETTINGS: &str = rpc::settings::GET.path;

/// Starts `edge serve` on `data_dir` and waits for it to exit: (exit code, stderr).
fn start_on(data_dir: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(edge_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("EDGE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_corrupt_store_file_stops_the_start_with_its_name() {
    // A real store, written by a real edge, then damaged three ways.
    let edge = Edge::start(&["--drain-delay", "0s"]);
    scenarios::login(&edge.client(), "before").await;
    let dir = edge.data_dir.clone();
    let mut edge = edge;
    edge.signal("TERM");
    assert!(edge.wait_exit(Duration::from_secs(40)).is_some());
    let file = dir.join("edge.redb");
    let good = std::fs::read(&file).unwrap();
    assert!(good.len() > 4096, "{}", good.len());

    let mut garbage = good.clone();
    for b in garbage.iter_mut().skip(64).step_by(7) {
        *b ^= 0x5a;
    }
    let variants: [(&str, Vec<u8>); 3] = [
        (
            "random bytes",
            (0..good.len()).map(|i| (i * 31 % 251) as u8).collect(),
        ),
        ("truncated", good[..good.len() / 3].to_vec()),
        ("scrambled after the header", garbage),
    ];
    for (what, bytes) in variants {
        std::fs::write(&file, &bytes).unwrap();
        let (code, err) = start_on(&dir);
        assert_eq!(code, Some(1), "{what}: a clear failure, not a crash: {err}");
        assert!(
            err.contains(&file.display().to_string()),
            "{what}: the error names the file: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    // The good file starts again.
    std::fs::write(&file, &good).unwrap();
    drop(edge);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_nats_server_gives_504s_in_time_and_recovers_without_a_restart() {
    let nats = Nats::start("");
    let _worker = Edge::start_worker(&["--nats", &nats.url(), "--services", "state"]);
    let edge = Edge::start(&[
        "--nats",
        &nats.url(),
        "--remote",
        "state",
        "--nats-request-timeout",
        "2s",
        "--rate-limit",
        "false",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "frozen").await;
    let access = me.access.clone();
    eventually(Duration::from_secs(10), "the worker answers", || {
        let (c, access) = (c.clone(), access.clone());
        async move {
            c.call(PUT, Some(&access), json!({"key": "k", "value": 1}))
                .await
                .status
                == 200
        }
    })
    .await;

    nats.signal("STOP");
    // Remote calls end at their timeout with 504, several at once, none hanging.
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (c, access) = (c.clone(), access.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.call(GET, Some(&access), json!({"key": "k"})),
                )
                .await
                .expect("never hangs");
                (r.status.as_u16(), r.json()["code"].clone(), t.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (status, code, took) = call.await.unwrap();
        assert_eq!(status, 504, "{code}");
        assert_eq!(code, "deadline_exceeded");
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
            "at the 2 s timeout: {took:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    // Local services do not depend on NATS.
    let r = c.call(SETTINGS, Some(&access), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());

    nats.signal("CONT");
    eventually(Duration::from_secs(30), "remote calls work again", || {
        let (c, access) = (c.clone(), access.clone());
        async move { c.call(GET, Some(&access), json!({"key": "k"})).await.status == 200 }
    })
    .await;
}

/// The key-value bucket's stream as the edge creates it (see handlers/src/store/jetstream.rs):
/// what an operator restores.
fn bucket_config(bucket: &str) -> async_nats::jetstream::stream::Config {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
    Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        storage: StorageType::File,
        num_replicas: 1,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_jetstream_bucket_gives_clear_503s_and_recovers_when_back() {
    let nats = Nats::start("");
    let edge = Edge::start(&[
        "--nats",
        &nats.url(),
        "--store",
        "jetstream",
        "--rate-limit",
        "false",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "bucketeer").await;
    let put = |v: i64| {
        let (c, access) = (c.clone(), me.access.clone());
        async move {
            c.call(PUT, Some(&access), json!({"key": "save.slot1", "value": v}))
                .await
        }
    };
    assert_eq!(put(1).await.status, 200);

    let js = async_nats::jetstream::new(nats.client().await);
    js.delete_stream("KV_edge").await.unwrap();
    // The first write waits for JetStream's acknowledgement, which never comes; from then on
    // writes are refused at once, and readiness says why.
    let r = tokio::time::timeout(Duration::from_secs(30), put(2))
        .await
        .unwrap_or_else(|_| panic!("answers in time: {}", edge.logs()));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "unavailable");
    assert!(r.headers.contains_key("retry-after"));
    let t = Instant::now();
    let r = put(2).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let ready = c.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["store"]["status"], "unavailable");
    // Tokens verify in-process: the player is still who they were.
    let live = c.get("/healthz").await;
    assert_eq!(live.status, 200, "liveness never looks at a dependency");

    // An operator restores the bucket: the same edge serves again, no restart.
    js.create_stream(bucket_config("edge")).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "writes work again",
        || async move { put(3).await.status == 200 },
    )
    .await;
    let r = c
        .call(GET, Some(&me.access), json!({"key": "save.slot1"}))
        .await;
    assert_eq!(r.json()["entry"]["value"], 3);
    assert_eq!(c.get("/readyz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_mixed_load_fails_no_call_and_ends_every_stream_with_a_reconnect() {
    let nats = Nats::start("");
    let _worker = Edge::start_worker(&["--nats", &nats.url(), "--services", "state"]);
    let mut edge = Edge::start(&[
        "--nats",
        &nats.url(),
        "--remote",
        "state",
        "--rate-limit",
        "false",
        "--drain-delay",
        "2s",
        "--shutdown-timeout",
        "15s",
        "--grammar-token-interval",
        "200ms",
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "mixed").await;
    let access = me.access.clone();
    assert_eq!(
        c.call(PUT, Some(&access), json!({"key": "k", "value": 1}))
            .await
            .status,
        200
    );
    // Open streams: a long LLM stream and an event subscription.
    let mut llm = edge_e2e::sse::Sse::post(
        &c,
        rpc::llm::INFER_STREAM.path,
        Some(&access),
        json!({"messages": [{"role": "user", "content": "a long tale"}], "maxTokens": 2000, "seed": "7"}),
    )
    .await;
    let mut events = edge_e2e::sse::Sse::get(
        &c,
        &format!("/v1/events?topics=player.{}", me.player_id),
        Some(&access),
        &[],
    )
    .await;
    assert_eq!((llm.status.as_u16(), events.status.as_u16()), (200, 200));
    assert!(llm.next().await.is_some() && events.next().await.is_some());

    // Unary load on a local route and a NATS-routed one, on kept-alive HTTP/2 connections.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..4 {
        let (c, access, stop) = (c.clone(), access.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut conn = c.connect(true).await.unwrap();
            let auth = format!("Bearer {access}");
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (path, body) = if i % 2 == 0 {
                    (GET, r#"{"key":"k"}"#)
                } else {
                    (SETTINGS, "{}")
                };
                let r = conn
                    .send(
                        http::Method::POST,
                        path,
                        &[
                            ("content-type", "application/json"),
                            ("authorization", &auth),
                        ],
                        bytes::Bytes::from_static(body.as_bytes()),
                    )
                    .await;
                match r {
                    Ok(r) if r.status == 200 => ok += 1,
                    Ok(r) => failed.push(format!("{path}: {} {}", r.status, r.text())),
                    Err(e) => failed.push(format!("{path}: {e}")),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    edge.signal("TERM");
    // The load balancer stops sending within the drain delay; until then every call is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in load {
        let (ok, failed) = l.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed calls during the drain: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 20, "the load ran: {total}");

    // Every open stream ends with the reconnect event.
    for (name, s) in [("llm", &mut llm), ("events", &mut events)] {
        let mut last = None;
        while let Some(e) = s.next_within(Duration::from_secs(10)).await {
            last = Some(e);
        }
        let last = last.unwrap_or_else(|| panic!("{name}: a final event"));
        assert_eq!(last.event.as_deref(), Some("error"), "{name}: {last:?}");
        assert_eq!(last.json()["code"], "unavailable", "{name}");
        assert!(
            last.json()["message"]
                .as_str()
                .unwrap()
                .contains("reconnect")
        );
    }
    let status = edge.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "inside the shutdown timeout"
    );
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_request_bodies_are_cut_at_their_timeout_with_descriptors_bounded() {
    let slow = edge_e2e::tool("slowhttptest");
    // Login is public: slow bodies get past authentication to the body read, the part at risk.
    let edge = Edge::start(&["--request-timeout", "2s", "--rate-limit", "false"]);
    let c = edge.client();
    scenarios::login(&c, "steady").await;
    let baseline = fds(edge.pid());
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("slow");
    const CONNECTIONS: usize = 200;
    let attack = std::process::Command::new(slow)
        .args([
            "-B",
            "-c",
            &CONNECTIONS.to_string(),
            "-r",
            "100",
            "-i",
            "1",
            "-s",
            "8192",
        ])
        .args([
            "-x",
            "10",
            "-l",
            "12",
            "-p",
            "3",
            "-t",
            "POST",
            "-f",
            "application/json",
        ])
        .arg("-u")
        .arg(format!(
            "https://localhost:{}{}",
            edge.https.port(),
            rpc::auth::LOGIN.path
        ))
        .arg("-g")
        .arg("-o")
        .arg(&report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let attack = tokio::task::spawn_blocking(move || attack.wait_with_output());
    // While it runs: descriptors stay bounded and a real player still logs in at once.
    let mut most = 0;
    let mut served = Vec::new();
    for _ in 0..12 {
        most = most.max(fds(edge.pid()));
        let t = Instant::now();
        let r = c
            .call(
                rpc::auth::LOGIN.path,
                None,
                json!({"username": "steady", "password": "correct-horse"}),
            )
            .await;
        served.push((r.status.as_u16(), t.elapsed()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = attack.await.unwrap().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        most <= baseline + CONNECTIONS + 32,
        "descriptors: {most} with a baseline of {baseline}"
    );
    for (status, took) in &served {
        assert_eq!(*status, 200);
        assert!(*took < Duration::from_secs(2), "{took:?}");
    }
    // Every slow connection was closed by the server, at its 2 s deadline, before the test's
    // 12 s were over: "Seconds,Closed,Pending,Connected,Service Available".
    let csv = std::fs::read_to_string(report.with_extension("csv")).unwrap();
    let rows: Vec<Vec<u64>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse().unwrap_or(0))
                .collect()
        })
        .collect();
    // The tool stops early only when the server has closed every connection it opened.
    assert!(said.contains("No open connections left"), "{said}\n{csv}");
    assert!(
        rows.len() < 10,
        "closed long before the attack's 12 s: {csv}"
    );
    // The first ones go at their 2 s deadline (opened over the first 2 s at 100/s).
    let first_closed = rows.iter().position(|r| r[1] > 0).unwrap();
    assert!((2..=4).contains(&first_closed), "{csv}");
    assert!(
        rows.iter().all(|r| r[4] > 0),
        "the service stayed available: {csv}"
    );
    // And the descriptors come back.
    eventually(Duration::from_secs(5), "descriptors return", async || {
        fds(edge.pid()) <= baseline + 8
    })
    .await;
}

/// With its NATS server gone, SIGTERM still ends an edge and a worker well before their shutdown
/// timeout: nothing more can arrive, so the responders stop waiting for requests, and the exit
/// is clean. (Their subscriptions' unsubscribe would wait for a reconnect that never comes.)
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_nats_gone_exits_without_waiting_out_the_timeout() {
    let mut nats = Nats::start("");
    let timing = ["--drain-delay", "1s", "--shutdown-timeout", "60s"];
    let mut worker = Edge::start_worker(
        &[
            &["--nats", &nats.url(), "--services", "state"][..],
            &timing[..],
        ]
        .concat(),
    );
    let mut edge = Edge::start(&[&["--nats", &nats.url()][..], &timing[..]].concat());
    let c = edge.client();
    let me = scenarios::login(&c, "stranded").await;
    nats.kill();
    // Still serving what does not need NATS.
    let r = c.call(SETTINGS, Some(&me.access), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started = Instant::now();
    edge.signal("TERM");
    worker.signal("TERM");
    for (name, p) in [("edge", &mut edge), ("worker", &mut worker)] {
        let status = p
            .wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("the {name} still runs 30 s after SIGTERM:\n{}", p.logs()));
        assert!(status.success(), "{name}: {status:?}\n{}", p.logs());
        assert!(
            !p.logs().contains("shutdown timeout reached"),
            "{name}:\n{}",
            p.logs()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}
