//! The JetStream store against a real nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;

use super::*;
use crate::kit::retry::{DEFAULT_BUDGET, Retry};
use crate::kit::store::conformance;

/// A nats-server with JetStream on a free port, killed on drop.
pub struct TestNats {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl TestNats {
    pub fn start() -> TestNats {
        Self::start_with(true)
    }

    /// With or without JetStream.
    pub fn start_with(jetstream: bool) -> TestNats {
        let dir = tempfile::tempdir().unwrap();
        // The server picks its own port (-1) and writes it to a ports file once it listens:
        // no race with parallel tests over a port found free a moment earlier.
        let mut cmd = std::process::Command::new("nats-server");
        cmd.args(["-a", "127.0.0.1", "-p", "-1"]);
        if jetstream {
            cmd.arg("-js").arg("-sd").arg(dir.path());
        }
        let child = cmd
            .arg("--ports_file_dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server must be installed (scripts/test installs it)");
        let ports = dir.path().join(format!("nats-server_{}.ports", child.id()));
        let start = std::time::Instant::now();
        let url = loop {
            let found = std::fs::read(&ports)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["nats"][0].as_str().map(str::to_owned));
            if let Some(url) = found {
                break url;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        TestNats {
            child,
            url,
            _dir: dir,
        }
    }

    pub async fn store(&self) -> JetStreamStore {
        let client = async_nats::connect(&self.url).await.unwrap();
        JetStreamStore::open(client, "test", 1).await.unwrap()
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn versions_and_cas() {
    let nats = TestNats::start();
    conformance::versions_and_cas(&nats.store().await).await;
}

#[tokio::test]
async fn listing() {
    let nats = TestNats::start();
    conformance::listing(&nats.store().await).await;
}

#[tokio::test]
async fn prune() {
    let nats = TestNats::start();
    conformance::prune(&nats.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas() {
    let nats = TestNats::start();
    conformance::concurrent_cas(Arc::new(nats.store().await)).await;
}

#[tokio::test]
async fn missing_jetstream_is_a_clear_error() {
    let nats = TestNats::start_with(false);
    let client = async_nats::connect(&nats.url).await.unwrap();
    let started = std::time::Instant::now();
    let err = JetStreamStore::open(client, "test", 1).await.unwrap_err();
    assert!(err.to_string().contains("JetStream"), "{err}");
    // Said after a short grace, not after the whole start budget.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_retried_write_whose_first_try_committed_answers_its_own_revision_once() {
    let nats = TestNats::start();
    let store = nats.store().await;
    let v = |s: &'static str| Bytes::from_static(s.as_bytes());
    // A create whose first try committed but whose answer was lost: the retry (same message id)
    // answers the first try's revision, not 409, and nothing is stored twice.
    let first = store
        .write_as("lost", "k", v("v1"), Some(0), Op::Put)
        .await
        .unwrap();
    let again = store
        .write_as("lost", "k", v("v1"), Some(0), Op::Put)
        .await
        .unwrap();
    assert_eq!(again, first);
    // The same for a compare-and-set, even after someone else wrote on top of it.
    let second = store
        .write_as("upd", "k", v("v2"), Some(first), Op::Put)
        .await
        .unwrap();
    let third = store.put("k", v("v3"), Some(second)).await.unwrap();
    assert_eq!(
        store
            .write_as("upd", "k", v("v2"), Some(first), Op::Put)
            .await
            .unwrap(),
        second
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().value, v("v3"));
    // Another write from a stale version is still a conflict naming the current one.
    match store.put("k", v("v4"), Some(first)).await {
        Err(StoreError::Conflict { current }) => assert_eq!(current, Some(third)),
        other => panic!("{other:?}"),
    }
    // A delete retried the same way deletes once; a create then goes on over its marker.
    let gone = store
        .write_as("del", "k", Bytes::new(), Some(third), Op::Delete)
        .await
        .unwrap();
    assert_eq!(
        store
            .write_as("del", "k", Bytes::new(), Some(third), Op::Delete)
            .await
            .unwrap(),
        gone
    );
    assert_eq!(store.get("k").await.unwrap(), None);
    let created = store.put("k", v("v5"), Some(0)).await.unwrap();
    assert!(created > gone);
    let info = store.kv.stream.get_info().await.unwrap();
    assert_eq!(
        info.state.last_sequence, created,
        "no write was stored twice"
    );
}

#[tokio::test]
async fn a_read_back_finds_a_committed_write_the_window_no_longer_remembers() {
    let nats = TestNats::start();
    let store = nats.store().await;
    let v = |s: &'static str| Bytes::from_static(s.as_bytes());
    let at = store.put("k", v("v1"), Some(0)).await.unwrap();
    // The key's last message carries this write's id (as if its first try committed at `at`
    // and the duplicate window had passed): the retry is recognised, not a conflict.
    let mut retry = Retry::new(DEFAULT_BUDGET);
    let last = store.last("k", &mut retry).await.unwrap().unwrap();
    let id = last.msg_id.clone().unwrap();
    assert_eq!(write::settle(&id, 0, Some(&last)), write::Settled::Ours(at));
    assert_eq!(
        write::settle("someone-else.0", 0, Some(&last)),
        write::Settled::Conflict(Some(at))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_opening_a_new_bucket_at_once_all_open_it() {
    let nats = TestNats::start();
    let opens = (0..6).map(|_| {
        let url = nats.url.clone();
        tokio::spawn(async move {
            let client = async_nats::connect(&url).await.unwrap();
            JetStreamStore::open(client, "race", 1).await
        })
    });
    for open in futures_util::future::join_all(opens).await {
        open.unwrap().unwrap();
    }
}
