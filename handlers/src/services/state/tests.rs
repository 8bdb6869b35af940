use super::*;
use crate::kit::status::Code;
use pbjson_types::Value;

const ME: &str = "0123456789abcdef0123456789abcdef";
const YOU: &str = "fedcba9876543210fedcba9876543210";

fn ctx(id: &str) -> Context {
    crate::kit::testing::player(id)
}

fn svc() -> (tempfile::TempDir, StateService) {
    let (dir, store) = crate::kit::testing::temp_redb();
    (dir, StateService::new(store, StateLimits::default()))
}

fn num(n: f64) -> Option<Value> {
    Some(Value {
        kind: Some(pbjson_types::value::Kind::NumberValue(n)),
    })
}

#[tokio::test]
async fn cas_semantics() {
    let (_d, s) = svc();
    let put = |value, expected| PutRequest {
        key: "save.slot1".into(),
        value,
        expected_version: expected,
        player_id: String::new(),
    };
    let v1 = s
        .put(ctx(ME), put(num(1.0), Some(0)))
        .await
        .unwrap()
        .version;
    let again = s.put(ctx(ME), put(num(2.0), Some(0))).await.unwrap_err();
    assert_eq!(again.code(), Code::Aborted);
    assert!(
        again.message().contains(&format!("version {v1}")),
        "{}",
        again.message()
    );
    let v2 = s
        .put(ctx(ME), put(num(2.0), Some(v1)))
        .await
        .unwrap()
        .version;
    let stale = s.put(ctx(ME), put(num(3.0), Some(v1))).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let got = s
        .get(
            ctx(ME),
            GetRequest {
                key: "save.slot1".into(),
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(got.entry.unwrap().version, v2);
    assert!(s.put(ctx(ME), put(num(4.0), None)).await.unwrap().version > v2);
}

#[tokio::test]
async fn players_are_isolated() {
    let (_d, s) = svc();
    s.put(
        ctx(ME),
        PutRequest {
            key: "k".into(),
            value: num(1.0),
            expected_version: None,
            player_id: String::new(),
        },
    )
    .await
    .unwrap();
    let theirs = s
        .get(
            ctx(YOU),
            GetRequest {
                key: "k".into(),
                player_id: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);
    let sneaky = s
        .get(
            ctx(YOU),
            GetRequest {
                key: "k".into(),
                player_id: ME.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(sneaky.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn list_pages_with_cursor() {
    let (_d, s) = svc();
    for k in ["inv.a", "inv.b", "inv.c", "other"] {
        s.put(
            ctx(ME),
            PutRequest {
                key: k.into(),
                value: num(0.0),
                expected_version: None,
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    }
    let p1 = s
        .list(
            ctx(ME),
            ListRequest {
                prefix: "inv.".into(),
                limit: 2,
                cursor: String::new(),
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p1.entries
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        ["inv.a", "inv.b"]
    );
    let p2 = s
        .list(
            ctx(ME),
            ListRequest {
                prefix: "inv.".into(),
                limit: 2,
                cursor: p1.next_cursor,
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p2.entries
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        ["inv.c"]
    );
    assert!(p2.next_cursor.is_empty());
    let bad = s
        .list(
            ctx(ME),
            ListRequest {
                prefix: String::new(),
                limit: 2,
                cursor: "!!".into(),
                player_id: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn bad_keys_and_missing_values() {
    let (_d, s) = svc();
    for key in ["", "a..b", "a b", ".x"] {
        let e = s
            .get(
                ctx(ME),
                GetRequest {
                    key: key.into(),
                    player_id: String::new(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{key:?}");
    }
    let e = s
        .put(
            ctx(ME),
            PutRequest {
                key: "k".into(),
                value: None,
                expected_version: None,
                player_id: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = s
        .delete(
            ctx(ME),
            DeleteRequest {
                key: "nope".into(),
                expected_version: None,
                player_id: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

fn limited(limits: StateLimits) -> (tempfile::TempDir, Arc<dyn Store>, StateService) {
    let (dir, store) = crate::kit::testing::temp_store();
    let svc = StateService::new(Arc::clone(&store), limits);
    (dir, store, svc)
}

fn put(key: &str, value: Option<Value>) -> PutRequest {
    PutRequest {
        key: key.into(),
        value,
        expected_version: None,
        player_id: String::new(),
    }
}

fn text(len: usize) -> Option<Value> {
    Some(Value {
        kind: Some(pbjson_types::value::Kind::StringValue("x".repeat(len))),
    })
}

#[tokio::test]
async fn quotas_bound_keys_bytes_and_values() {
    let limits = StateLimits {
        max_value_bytes: 100,
        max_keys: 3,
        max_bytes: 1000,
    };
    let (_d, _s, svc) = limited(limits);
    let big = svc.put(ctx(ME), put("big", text(200))).await.unwrap_err();
    assert_eq!(big.hint(), Some(crate::kit::status::Hint::PayloadTooLarge));
    for k in ["a", "b", "c"] {
        svc.put(ctx(ME), put(k, num(1.0))).await.unwrap();
    }
    let full = svc.put(ctx(ME), put("d", num(1.0))).await.unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted);
    assert!(full.message().contains("3 of 3 keys"), "{}", full.message());
    // Overwriting a key is no new key; another player has their own quota.
    svc.put(ctx(ME), put("a", num(2.0))).await.unwrap();
    svc.put(ctx(YOU), put("d", num(1.0))).await.unwrap();
    // Deleting frees room.
    svc.delete(
        ctx(ME),
        DeleteRequest {
            key: "a".into(),
            expected_version: None,
            player_id: String::new(),
        },
    )
    .await
    .unwrap();
    svc.put(ctx(ME), put("d", num(1.0))).await.unwrap();
    // Bytes: each entry holds its stored key and its JSON value (90 x's and two quotes).
    let (_d, _s, svc) = limited(StateLimits {
        max_keys: 100,
        ..limits
    });
    let each = format!("state.{ME}.a").len() + 92;
    let fit = 1000 / each;
    for i in 0..fit {
        svc.put(ctx(ME), put(&format!("{i}"), text(90)))
            .await
            .unwrap();
    }
    let err = svc.put(ctx(ME), put("z", text(90))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    // A shrinking write passes even at the limit.
    svc.put(ctx(ME), put("0", num(1.0))).await.unwrap();
}

#[tokio::test]
async fn racing_writes_cannot_squeeze_past_the_quota() {
    let (_d, _s, svc) = limited(StateLimits {
        max_keys: 10,
        ..StateLimits::default()
    });
    let svc = Arc::new(svc);
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let svc = Arc::clone(&svc);
            tokio::spawn(async move { svc.put(ctx(ME), put(&format!("k{i}"), num(1.0))).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(
                matches!(e.code(), Code::ResourceExhausted | Code::Aborted),
                "{e:?}"
            ),
        }
    }
    assert!(ok <= 10, "{ok} keys written");
    let usage = svc.quota.recount(ME).await.unwrap();
    assert_eq!((usage.keys, usage.inflight), (ok, 0));
}

#[tokio::test]
async fn state_written_before_quotas_is_counted() {
    let (_d, store, svc) = limited(StateLimits {
        max_keys: 2,
        ..StateLimits::default()
    });
    for k in ["old1", "old2"] {
        store
            .put(&format!("state.{ME}.{k}"), Bytes::from_static(b"1"), None)
            .await
            .unwrap();
    }
    let err = svc.put(ctx(ME), put("new", num(1.0))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // A lost give-back (a crash between the reservation and the write) is recounted away.
    store
        .put(
            &format!("stateusage.{ME}"),
            Bytes::from_static(br#"{"keys":2,"bytes":99999}"#),
            None,
        )
        .await
        .unwrap();
    store
        .delete(&format!("state.{ME}.old1"), None)
        .await
        .unwrap();
    svc.put(ctx(ME), put("new", num(1.0))).await.unwrap();
}
