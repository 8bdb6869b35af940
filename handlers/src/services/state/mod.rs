//! `aicore.state.v1.StateService`: per-player versioned key-value game state.
//! Stored at `state.<playerId>.<key>`, values as JSON, within per-player quotas ([`quota`]).
//! Keys under [`TRUSTED`] hold records the game trusts (what a workflow stowed, rewards paid):
//! services write them, the player only reads them.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod quota;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use proto::aicore::state::v1::{
    DeleteRequest, DeleteResponse, Entry, GetRequest, GetResponse, ListRequest, ListResponse,
    PutRequest, PutResponse, StateServiceHandler,
};

use crate::kit::context::{Context, Principal};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError, Versioned, validate_key, validate_prefix};
use quota::Delta;
pub use quota::{Quota, StateLimits};

/// Longest user key.
const MAX_KEY: usize = 200;

/// The namespace only services write: a player may read and list it, never put or delete.
pub const TRUSTED: &str = "trusted/";

/// Refuses a player's write under [`TRUSTED`]. Compared without case, so `Trusted/` is refused
/// too rather than left to look like a trusted record to a careless reader.
fn may_write(ctx: &Context, key: &str) -> Result<(), Status> {
    let trusted = key
        .get(..TRUSTED.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(TRUSTED));
    match &ctx.principal {
        Some(Principal::Player { .. }) if trusted => Err(Status::permission_denied(format!(
            "keys under {TRUSTED} are written by the game's services only; a player reads them"
        ))),
        _ => Ok(()),
    }
}

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
        may_write(&ctx, &req.key)?;
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
        may_write(&ctx, &req.key)?;
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
mod tests;
