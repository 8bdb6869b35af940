//! `aicore.state.v1.StateService`: per-player versioned key-value game state.
//! Stored at `state.<playerId>.<key>`, values as JSON, within per-player quotas ([`quota`]).

pub mod quota;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use proto::aicore::state::v1::{
    DeleteRequest, DeleteResponse, Entry, GetRequest, GetResponse, ListRequest, ListResponse,
    PutRequest, PutResponse, StateServiceHandler,
};

use crate::context::Context;
use crate::status::Status;
use crate::store::{Store, StoreError, Versioned, validate_key, validate_prefix};
use quota::Delta;
pub use quota::{Quota, StateLimits};

/// Longest user key.
const MAX_KEY: usize = 200;

/// The state service.
#[derive(Clone)]
pub struct StateService {
    store: Arc<dyn Store>,
    quota: Quota,
}

impl std::fmt::Debug for StateService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateService")
    }
}

fn check_key(key: &str) -> Result<(), Status> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Status::invalid_argument(format!(
            "key must be 1 to {MAX_KEY} characters"
        )));
    }
    validate_key(key).map_err(Status::from)
}

fn conflict(key: &str, expected: Option<u64>, current: Option<u64>) -> Status {
    let expected = match expected {
        Some(0) => "the key to be absent".to_owned(),
        Some(v) => format!("version {v}"),
        None => "any version".to_owned(),
    };
    let current = match current {
        Some(v) => format!("it is at version {v}"),
        None => "it does not exist".to_owned(),
    };
    Status::aborted(format!(
        "version mismatch on {key:?}: expected {expected}, but {current}"
    ))
}

fn entry(key: String, raw: &[u8], version: u64) -> Result<Entry, Status> {
    let value = serde_json::from_slice(raw).map_err(Status::internal)?;
    Ok(Entry {
        key,
        value: Some(value),
        version,
    })
}

impl StateService {
    /// A state service over `store`, within `limits` per player.
    pub fn new(store: Arc<dyn Store>, limits: StateLimits) -> Self {
        StateService {
            quota: Quota::new(Arc::clone(&store), limits),
            store,
        }
    }
}

/// Compare-and-set attempts of an unconditional write racing other writes of the same key.
const ATTEMPTS: usize = 16;

fn retry_later() -> Status {
    Status::aborted("the key is changing too often to write now; retry")
        .with_retry_after(std::time::Duration::from_millis(100))
}

/// What a key's entry counts against the quota: its key and its value.
fn stored_size(key: &str, v: &Versioned) -> usize {
    key.len() + v.value.len()
}

/// Whether `current` is what the caller expected; the same answer the store's own check gives.
fn expected(current: Option<&Versioned>, want: Option<u64>) -> bool {
    match (want, current) {
        (None, _) | (Some(0), None) => true,
        (Some(n), Some(v)) => v.version == n,
        (Some(_), None) => false,
    }
}

impl StateServiceHandler for StateService {
    type Context = Context;
    type Error = Status;

    async fn get(&self, ctx: Context, req: GetRequest) -> Result<GetResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        check_key(&req.key)?;
        match self
            .store
            .get(&format!("state.{player}.{}", req.key))
            .await?
        {
            Some(v) => Ok(GetResponse {
                entry: Some(entry(req.key, &v.value, v.version)?),
            }),
            None => Err(Status::not_found(format!("no state at key {:?}", req.key))),
        }
    }

    async fn put(&self, ctx: Context, req: PutRequest) -> Result<PutResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        check_key(&req.key)?;
        let value = req
            .value
            .ok_or_else(|| Status::invalid_argument("value is required"))?;
        let raw =
            Bytes::from(serde_json::to_vec(&value).map_err(|e| {
                Status::invalid_argument(format!("value is not representable: {e}"))
            })?);
        let max = self.quota.limits.max_value_bytes;
        if raw.len() > max {
            return Err(Status::payload_too_large(format!(
                "value is {} bytes as JSON; at most {max}",
                raw.len()
            )));
        }
        let key = format!("state.{player}.{}", req.key);
        for _ in 0..ATTEMPTS {
            let current = self.store.get(&key).await?;
            if !expected(current.as_ref(), req.expected_version) {
                return Err(conflict(
                    &req.key,
                    req.expected_version,
                    current.map(|v| v.version),
                ));
            }
            let delta = Delta::between(
                current.as_ref().map(|v| stored_size(&key, v)),
                Some(key.len() + raw.len()),
            );
            let reserved = self.quota.reserve(&player, delta).await?;
            let at = Some(current.map_or(0, |v| v.version));
            let written = self.store.put(&key, raw.clone(), at).await;
            self.quota.settle(&player, reserved, written.is_ok()).await;
            match written {
                Ok(version) => return Ok(PutResponse { version }),
                Err(StoreError::Conflict { current }) => {
                    if req.expected_version.is_some() {
                        return Err(conflict(&req.key, req.expected_version, current));
                    }
                    // Unconditional: someone wrote in between; measure again.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(retry_later())
    }

    async fn delete(&self, ctx: Context, req: DeleteRequest) -> Result<DeleteResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        check_key(&req.key)?;
        let key = format!("state.{player}.{}", req.key);
        for _ in 0..ATTEMPTS {
            let Some(current) = self.store.get(&key).await? else {
                return match req.expected_version {
                    Some(0) => Ok(DeleteResponse {}),
                    None => Err(Status::not_found(format!("no state at key {:?}", req.key))),
                    Some(_) => Err(conflict(&req.key, req.expected_version, None)),
                };
            };
            if !expected(Some(&current), req.expected_version) {
                return Err(conflict(
                    &req.key,
                    req.expected_version,
                    Some(current.version),
                ));
            }
            match self.store.delete(&key, Some(current.version)).await {
                Ok(true) => {
                    // What the entry held is free again.
                    let held = Delta::between(None, Some(stored_size(&key, &current)));
                    self.quota.free(&player, held).await;
                    return Ok(DeleteResponse {});
                }
                // Gone or changed meanwhile: look again (a conditional delete reports it).
                Ok(false) => {}
                Err(StoreError::Conflict { current }) => {
                    if req.expected_version.is_some() {
                        return Err(conflict(&req.key, req.expected_version, current));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(retry_later())
    }

    async fn list(&self, ctx: Context, req: ListRequest) -> Result<ListResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        if req.prefix.len() > MAX_KEY {
            return Err(Status::invalid_argument(format!(
                "prefix longer than {MAX_KEY}"
            )));
        }
        validate_prefix(&req.prefix)?;
        let limit = match req.limit {
            0 => 100,
            n @ 1..=1000 => n as usize,
            _ => return Err(Status::invalid_argument("limit must be 0 to 1000")),
        };
        let base = format!("state.{player}.");
        let after = if req.cursor.is_empty() {
            None
        } else {
            let raw = URL_SAFE_NO_PAD
                .decode(&req.cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|k| validate_key(k).is_ok())
                .ok_or_else(|| Status::invalid_argument("cursor is not a cursor from List"))?;
            Some(format!("{base}{raw}"))
        };
        let page = self
            .store
            .list(&format!("{base}{}", req.prefix), after.as_deref(), limit)
            .await?;
        let entries = page
            .entries
            .into_iter()
            .map(|(k, v)| {
                let key = k.strip_prefix(&base).unwrap_or(&k).to_owned();
                entry(key, &v.value, v.version)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = page
            .next_after
            .map(|k| URL_SAFE_NO_PAD.encode(k.strip_prefix(&base).unwrap_or(&k)))
            .unwrap_or_default();
        Ok(ListResponse {
            entries,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Principal;
    use crate::status::Code;
    use crate::store::RedbStore;
    use pbjson_types::Value;

    const ME: &str = "0123456789abcdef0123456789abcdef";
    const YOU: &str = "fedcba9876543210fedcba9876543210";

    fn ctx(id: &str) -> Context {
        Context {
            principal: Some(Principal::Player {
                player_id: id.into(),
            }),
            ..Context::default()
        }
    }

    fn svc() -> (tempfile::TempDir, StateService) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
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
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("q.redb")).unwrap());
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
        assert_eq!(big.hint(), Some(crate::status::Hint::PayloadTooLarge));
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
}
