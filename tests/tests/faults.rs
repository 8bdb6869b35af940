//! End-to-end fault drills through the real binary: a corrupt store file at start, a frozen
//! nats-server, the JetStream bucket deleted under a running edge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use edge_e2e::nats::Nats;
use edge_e2e::{Edge, edge_bin, eventually, scenarios};
use serde_json::json;

const GET: &str = "/aicore.state.v1.StateService/Get";
const PUT: &str = "/aicore.state.v1.StateService/Put";
const SETTINGS: &str = "/aicore.settings.v1.SettingsService/Get";

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
