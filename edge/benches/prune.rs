//! Pruning expired records (idempotency records, spent refresh tokens) on both store backends:
//! 100,000 expired records among 10,000 live ones, pruned the way the janitor does it (batches
//! of 500: one write transaction each on redb; one streaming pass with pipelined purges on
//! JetStream), against the old way in the same run (a listing page, then one conditional delete
//! per record), timed on 10,000 of them, per record.
//! Run: `cargo bench -p edge --bench prune` (JetStream needs `nats-server` on the PATH).
//! `BENCH_PRUNE` sets the number of expired records (default 100000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use handlers::kit::store::{JetStreamStore, RedbStore, Store, StoreError, prune_prefix};

const LIVE: usize = 10_000;
const OLD_WAY: usize = 10_000;

fn expired(v: &[u8]) -> bool {
    v == b"expired"
}

/// Writes `n` records under `prefix`, 64 at a time.
async fn fill(store: &Arc<dyn Store>, prefix: &str, n: usize, value: &'static str) {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let store = Arc::clone(store);
            let key = format!("{prefix}{i:07}");
            async move { store.put(&key, Bytes::from(value), None).await.unwrap() }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
}

/// The old prune: a page, then one conditional delete per expired record.
async fn old_way(store: &dyn Store, prefix: &str) -> Result<usize, StoreError> {
    let mut after: Option<String> = None;
    let mut removed = 0;
    loop {
        let page = store.list(prefix, after.as_deref(), 500).await?;
        for (key, v) in &page.entries {
            if expired(&v.value) && store.delete(key, Some(v.version)).await? {
                removed += 1;
            }
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(removed),
        }
    }
}

async fn run(name: &str, store: Arc<dyn Store>, n: usize) {
    let t = Instant::now();
    fill(&store, "idem.x.", n, "expired").await;
    fill(&store, "idem.y.", LIVE, "live").await;
    fill(&store, "old.x.", OLD_WAY, "expired").await;
    println!("{name}: filled in {:.0?}", t.elapsed());

    let t = Instant::now();
    let removed = prune_prefix(store.as_ref(), "idem.", expired, || false)
        .await
        .unwrap();
    let batched = t.elapsed();
    assert_eq!(removed, n);
    let left = store
        .list("idem.", None, LIVE + 1)
        .await
        .unwrap()
        .entries
        .len();
    assert_eq!(left, LIVE, "the live records stay");

    let t = Instant::now();
    assert_eq!(old_way(store.as_ref(), "old.").await.unwrap(), OLD_WAY);
    let one_by_one = t.elapsed();

    let per_new = batched.as_secs_f64() / n as f64;
    let per_old = one_by_one.as_secs_f64() / OLD_WAY as f64;
    println!(
        "{name}: pruned {n} expired of {} in {:.2} s ({:.1} us per record); the old way {:.1} us per record ({OLD_WAY} in {:.2} s): {:.1}x faster",
        n + LIVE,
        batched.as_secs_f64(),
        per_new * 1e6,
        per_old * 1e6,
        one_by_one.as_secs_f64(),
        per_old / per_new
    );
}

/// A nats-server with JetStream on a port it picks, or None if it is not installed.
fn nats_server(dir: &std::path::Path) -> Option<(std::process::Child, String)> {
    let child = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
        .arg(dir)
        .arg("--ports_file_dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let ports = dir.join(format!("nats-server_{}.ports", child.id()));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let url = std::fs::read(&ports)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["nats"][0].as_str().map(str::to_owned));
        if let Some(url) = url {
            return Some((child, url));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_PRUNE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let redb: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("p.redb")).unwrap());
    run("redb", redb, n).await;

    let nats_dir = tempfile::tempdir().unwrap();
    match nats_server(nats_dir.path()) {
        Some((mut child, url)) => {
            let client = async_nats::connect(&url).await.unwrap();
            let js: Arc<dyn Store> =
                Arc::new(JetStreamStore::open(client, "prune", 1).await.unwrap());
            run("jetstream", js, n).await;
            let _ = child.kill();
            let _ = child.wait();
        }
        None => println!("jetstream: skipped (nats-server is not installed)"),
    }
}
