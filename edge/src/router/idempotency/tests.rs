use std::sync::atomic::{AtomicUsize, Ordering};

use handlers::Hint;
use handlers::kit::store::RedbStore;
use prost::Message as _;
use proto::aicore::state::v1::{PutRequest, PutResponse};
use tower::ServiceExt as _;

use super::*;

const P1: &str = "0123456789abcdef0123456789abcdef";
const P2: &str = "fedcba9876543210fedcba9876543210";

/// What the fake handler does on its next call.
#[derive(Clone, Copy)]
enum Then {
    Answer,
    Fail(Code),
    Sleep(Duration),
}

#[derive(Clone)]
struct Fake {
    calls: Arc<AtomicUsize>,
    then: Arc<std::sync::Mutex<Then>>,
}

impl tower::Service<Call> for Fake {
    type Response = Reply;
    type Error = Status;
    type Future = BoxFuture<Result<Reply, Status>>;
    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, call: Call) -> Self::Future {
        assert_eq!(call.codec, Codec::Proto, "runs on the protobuf form");
        let n = self.calls.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        let then = *self.then.lock().unwrap();
        Box::pin(async move {
            match then {
                Then::Answer => {}
                Then::Fail(code) => return Err(Status::new(code, "it failed")),
                Then::Sleep(d) => tokio::time::sleep(d).await,
            }
            Ok(Encoded::Unary(
                PutResponse { version: n }.encode_to_vec().into(),
            ))
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    fake: Fake,
    svc: Idempotency<Fake>,
}

fn harness() -> Harness {
    harness_with(RecordLimits {
        per_player: 1000,
        per_key: 1000,
    })
}

fn harness_with(limits: RecordLimits) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("i.redb")).unwrap());
    let fake = Fake {
        calls: Arc::default(),
        then: Arc::new(std::sync::Mutex::new(Then::Answer)),
    };
    let svc = tower::Layer::layer(
        &IdempotencyLayer::layer(Arc::clone(&store), Duration::from_secs(3600), limits),
        fake.clone(),
    );
    Harness {
        _dir: dir,
        store,
        fake,
        svc,
    }
}

impl Harness {
    fn set(&self, then: Then) {
        *self.fake.then.lock().unwrap() = then;
    }
    fn calls(&self) -> usize {
        self.fake.calls.load(Ordering::SeqCst)
    }
    async fn put(
        &self,
        player: &str,
        key: Option<&str>,
        codec: Codec,
        value: &str,
    ) -> Result<Bytes, Status> {
        let method = proto::method_by_path("/aicore.state.v1.StateService/Put").unwrap();
        let body: Bytes = match codec {
            Codec::Json => format!(r#"{{"key":"k","value":"{value}"}}"#).into(),
            Codec::Proto => PutRequest {
                key: "k".into(),
                value: Some(pbjson_types::Value::from(value.to_owned())),
                expected_version: None,
                player_id: String::new(),
            }
            .encode_to_vec()
            .into(),
        };
        let call = Call {
            method,
            codec,
            body,
            ctx: handlers::Context {
                principal: Some(Principal::Player {
                    player_id: player.into(),
                }),
                deadline: Some(Instant::now() + Duration::from_secs(5)),
                idempotency_key: key.map(str::to_owned),
                ..handlers::Context::default()
            },
        };
        match self.svc.clone().oneshot(call).await? {
            Encoded::Unary(b) => Ok(b),
            Encoded::Stream(_) => panic!("stream"),
        }
    }
}

#[tokio::test]
async fn a_repeat_gets_the_first_reply_in_either_codec() {
    let h = harness();
    let first = h.put(P1, Some("k1"), Codec::Proto, "a").await.unwrap();
    assert_eq!(PutResponse::decode(first.clone()).unwrap().version, 1);
    let again = h.put(P1, Some("k1"), Codec::Proto, "a").await.unwrap();
    assert_eq!(again, first);
    let json = h.put(P1, Some("k1"), Codec::Json, "a").await.unwrap();
    assert_eq!(&json[..], br#"{"version":"1"}"#);
    assert_eq!(h.calls(), 1, "the handler ran once");
}

#[tokio::test]
async fn a_different_body_under_the_same_key_is_unprocessable() {
    let h = harness();
    h.put(P1, Some("k"), Codec::Json, "a").await.unwrap();
    let err = h.put(P1, Some("k"), Codec::Json, "b").await.unwrap_err();
    assert_eq!(err.hint(), Some(Hint::Unprocessable));
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_is_aborted() {
    let h = harness();
    h.set(Then::Sleep(Duration::from_millis(300)));
    let (a, b) = tokio::join!(h.put(P1, Some("k"), Codec::Proto, "a"), async {
        // Once the first call's handler runs (so it holds the key).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while h.fake.calls.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first call never ran"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        h.put(P1, Some("k"), Codec::Proto, "a").await
    });
    assert!(a.is_ok());
    let err = b.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.retry_after().is_some());
    assert_eq!(
        h.put(P1, Some("k"), Codec::Proto, "a").await.unwrap(),
        a.unwrap()
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn transient_failures_release_the_key_and_final_ones_are_kept() {
    let h = harness();
    h.set(Then::Fail(Code::Unavailable));
    assert_eq!(
        h.put(P1, Some("k"), Codec::Proto, "a")
            .await
            .unwrap_err()
            .code(),
        Code::Unavailable
    );
    h.set(Then::Answer);
    h.put(P1, Some("k"), Codec::Proto, "a").await.unwrap();
    assert_eq!(h.calls(), 2, "the retry ran");

    h.set(Then::Fail(Code::FailedPrecondition));
    let first = h.put(P1, Some("k2"), Codec::Proto, "a").await.unwrap_err();
    h.set(Then::Answer);
    let again = h.put(P1, Some("k2"), Codec::Proto, "a").await.unwrap_err();
    assert_eq!(first, again);
    assert_eq!(
        h.calls(),
        3,
        "the kept failure was answered from the record"
    );
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller_and_optional() {
    let h = harness();
    h.put(P1, Some("k"), Codec::Proto, "a").await.unwrap();
    let other = h.put(P2, Some("k"), Codec::Proto, "a").await.unwrap();
    assert_eq!(
        PutResponse::decode(other).unwrap().version,
        2,
        "P2 ran its own call"
    );
    h.put(P1, None, Codec::Proto, "a").await.unwrap();
    h.put(P1, None, Codec::Proto, "a").await.unwrap();
    assert_eq!(h.calls(), 4, "no key: every call runs");
}

#[tokio::test]
async fn expired_records_run_again_and_are_pruned() {
    let h = harness();
    h.put(P1, Some("k"), Codec::Proto, "a").await.unwrap();
    // Age every record past its retention.
    let page = h.store.list(PREFIX, None, 100).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    for (key, v) in page.entries {
        let mut r: Record = serde_json::from_slice(&v.value).unwrap();
        r.until_ms = now_ms() - 1;
        h.store.put(&key, to_json(&r).unwrap(), None).await.unwrap();
    }
    h.put(P1, Some("k"), Codec::Proto, "b").await.unwrap();
    assert_eq!(
        h.calls(),
        2,
        "an expired key is free again, whatever the body"
    );
    h.put(P2, Some("old"), Codec::Proto, "a").await.unwrap();
    let stop = CancellationToken::new();
    assert_eq!(prune_once(h.store.as_ref(), &stop).await.unwrap(), 0);
    let page = h.store.list(PREFIX, None, 100).await.unwrap();
    for (key, v) in page.entries {
        let mut r: Record = serde_json::from_slice(&v.value).unwrap();
        r.until_ms = now_ms() - 1;
        h.store.put(&key, to_json(&r).unwrap(), None).await.unwrap();
    }
    assert_eq!(prune_once(h.store.as_ref(), &stop).await.unwrap(), 2);
    assert!(
        h.store
            .list(PREFIX, None, 100)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

#[test]
fn keys_must_be_visible_ascii() {
    assert!(valid_key("order-42_ä".trim_end_matches('ä')));
    for bad in ["", "has space", "tab\t", "é", &"x".repeat(256)] {
        assert!(!valid_key(bad), "{bad:?}");
    }
}

#[tokio::test]
async fn new_records_per_player_are_bounded_and_repeats_are_free() {
    let h = harness_with(RecordLimits {
        per_player: 3,
        per_key: 1000,
    });
    for k in ["a", "b", "c"] {
        h.put(P1, Some(k), Codec::Proto, "v").await.unwrap();
    }
    let err = h.put(P1, Some("d"), Codec::Proto, "v").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.retry_after().is_some());
    // Repeats of recorded keys are answered, and another player has their own budget.
    h.put(P1, Some("a"), Codec::Proto, "v").await.unwrap();
    h.put(P2, Some("d"), Codec::Proto, "v").await.unwrap();
    assert_eq!(h.calls(), 4);
}

#[tokio::test]
async fn pruning_lists_only_idempotency_records() {
    let h = harness();
    h.put(P1, Some("live"), Codec::Proto, "v").await.unwrap();
    for k in ["idemx.1", "idem", "ide.m"] {
        h.store
            .put(k, Bytes::from_static(b"not a record"), None)
            .await
            .unwrap();
    }
    let removed = prune_once(h.store.as_ref(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        removed, 0,
        "the live record stays, and no neighbour is listed"
    );
    for k in ["idemx.1", "idem", "ide.m"] {
        assert!(h.store.get(k).await.unwrap().is_some(), "{k}");
    }
}
