//! Per-player storage quotas: how many state keys and bytes a player may keep. Usage is a record
//! of its own (`stateusage.<player>`, outside the player's `state.<player>.` listing) that a write
//! reserves before it stores (compare-and-set, so racing writes cannot both squeeze under the
//! limit) and settles after: the reservation is kept if the write happened, given back if not.
//! The record also counts the writes in flight. A crash between reserving and settling can only
//! leave usage too high, never too low, so whenever a write would be refused (and when there is
//! no record yet, e.g. state written before quotas existed) usage is recounted from the player's
//! keys; a recount never runs while writes are in flight (it would miss their keys), unless
//! their record has not moved for a while (a crashed writer).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::kit::status::{Code, Status};
use crate::kit::store::{Store, StoreError};

/// What one player may store through the state service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Largest value, as stored JSON.
    pub max_value_bytes: usize,
    /// Most keys per player.
    pub max_keys: u64,
    /// Most bytes per player (keys and values).
    pub max_bytes: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            max_value_bytes: 32 * 1024,
            max_keys: 1000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A player's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Keys held.
    pub keys: u64,
    /// Bytes held (keys and values).
    pub bytes: u64,
    /// Writes reserved and not yet settled.
    #[serde(default)]
    pub inflight: u32,
    /// When the record last changed (Unix ms).
    #[serde(default)]
    pub changed_ms: u64,
}

/// Writes in flight whose record has not moved for this long are taken to have crashed.
const STALE_MS: u64 = 30_000;

/// A change of usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    /// Keys added (negative: removed).
    pub keys: i64,
    /// Bytes added (negative: freed).
    pub bytes: i64,
}

impl Delta {
    /// The change from an entry of `old` bytes (None: absent) to one of `new` bytes (None: gone).
    pub fn between(old: Option<usize>, new: Option<usize>) -> Delta {
        let size = |s: Option<usize>| s.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
        Delta {
            keys: i64::from(new.is_some()) - i64::from(old.is_some()),
            bytes: size(new) - size(old),
        }
    }

    fn negated(self) -> Delta {
        Delta {
            keys: -self.keys,
            bytes: -self.bytes,
        }
    }

    fn grows(self) -> bool {
        self.keys > 0 || self.bytes > 0
    }
}

impl Usage {
    /// `d` applied, and `inflight` moved by `writes`.
    fn apply(self, d: Delta, writes: i32) -> Usage {
        Usage {
            keys: self.keys.saturating_add_signed(d.keys),
            bytes: self.bytes.saturating_add_signed(d.bytes),
            inflight: self.inflight.saturating_add_signed(writes),
            changed_ms: crate::kit::clock::now_ms(),
        }
    }

    /// Whether a recount may replace this record now.
    fn recountable(&self) -> bool {
        self.inflight == 0 || crate::kit::clock::now_ms().saturating_sub(self.changed_ms) > STALE_MS
    }
}

/// Compare-and-set attempts on the usage record before giving up.
const ATTEMPTS: usize = 64;

fn usage_key(player: &str) -> String {
    format!("stateusage.{player}")
}

/// A reservation made by [`Quota::reserve`], to settle after the write.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    delta: Delta,
    /// The usage record as the reservation wrote it, and its version.
    record: (Usage, u64),
}

/// Reserves and releases players' usage.
#[derive(Clone)]
pub struct Quota {
    store: Arc<dyn Store>,
    /// The limits.
    pub limits: StateLimits,
}

impl std::fmt::Debug for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quota")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Quota {
    /// Quotas of `limits`, kept in `store`.
    pub fn new(store: Arc<dyn Store>, limits: StateLimits) -> Self {
        Quota { store, limits }
    }

    async fn read(&self, player: &str) -> Result<Option<(Usage, u64)>, Status> {
        match self.store.get(&usage_key(player)).await? {
            Some(v) => {
                let usage = serde_json::from_slice(&v.value).map_err(|e| {
                    Status::internal(format!("corrupt usage record of {player}: {e}"))
                })?;
                Ok(Some((usage, v.version)))
            }
            None => Ok(None),
        }
    }

    /// Counts the player's keys and bytes and writes them down, unless writes are in flight or
    /// usage moved meanwhile (then the record stays as it is).
    pub async fn recount(&self, player: &str) -> Result<Usage, Status> {
        let before = match self.read(player).await? {
            Some((usage, _)) if !usage.recountable() => return Ok(usage),
            Some((_, version)) => version,
            None => 0,
        };
        let prefix = format!("state.{player}.");
        let mut usage = Usage {
            changed_ms: crate::kit::clock::now_ms(),
            ..Usage::default()
        };
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(&prefix, after.as_deref(), 500).await?;
            for (k, v) in &page.entries {
                usage.keys += 1;
                usage.bytes += (k.len() + v.value.len()) as u64;
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let json = Bytes::from(serde_json::to_vec(&usage).map_err(Status::internal)?);
        match self.store.put(&usage_key(player), json, Some(before)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(usage),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes `delta` from the player's quota, or refuses with `resource_exhausted` when a growing
    /// write would pass a limit. Shrinking writes always pass (a player over quota can clean up).
    pub async fn reserve(&self, player: &str, delta: Delta) -> Result<Reservation, Status> {
        let mut recounted = false;
        for _ in 0..ATTEMPTS {
            let Some((usage, version)) = self.read(player).await? else {
                self.recount(player).await?;
                recounted = true;
                continue;
            };
            let next = usage.apply(delta, 1);
            let over = next.keys > self.limits.max_keys || next.bytes > self.limits.max_bytes;
            if delta.grows() && over {
                if !recounted {
                    self.recount(player).await?;
                    recounted = true;
                    continue;
                }
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "state quota reached: {} of {} keys and {} of {} bytes in use; delete some state first",
                        usage.keys, self.limits.max_keys, usage.bytes, self.limits.max_bytes
                    ),
                ));
            }
            let json = Bytes::from(serde_json::to_vec(&next).map_err(Status::internal)?);
            match self
                .store
                .put(&usage_key(player), json, Some(version))
                .await
            {
                Ok(version) => {
                    return Ok(Reservation {
                        delta,
                        record: (next, version),
                    });
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(
            Status::aborted("too many concurrent state writes for this player; retry")
                .with_retry_after(std::time::Duration::from_millis(100)),
        )
    }

    /// Settles a reservation: kept if its write `happened`, given back if not.
    pub async fn settle(&self, player: &str, r: Reservation, happened: bool) {
        let change = if happened {
            Delta::default()
        } else {
            r.delta.negated()
        };
        self.adjust(player, Some(r.record), change, -1).await;
    }

    /// Frees what a deleted entry held (`held`: the entry's delta from absent).
    pub async fn free(&self, player: &str, held: Delta) {
        self.adjust(player, None, held.negated(), 0).await;
    }

    /// Applies `change` and moves the writes in flight by `writes`, trying `known` (the record as
    /// this process last wrote it) before reading. A failure here only leaves usage too high
    /// until the next recount, so it is logged, not returned.
    async fn adjust(
        &self,
        player: &str,
        mut known: Option<(Usage, u64)>,
        change: Delta,
        writes: i32,
    ) {
        for _ in 0..ATTEMPTS {
            let found = match known.take() {
                Some(record) => Ok(Some(record)),
                None => self.read(player).await,
            };
            let (usage, version) = match found {
                Ok(Some(found)) => found,
                // No record: the next reservation recounts anyway.
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(player, error = %e.message(), "state usage not given back");
                    return;
                }
            };
            let Ok(json) = serde_json::to_vec(&usage.apply(change, writes)) else {
                return;
            };
            match self
                .store
                .put(&usage_key(player), Bytes::from(json), Some(version))
                .await
            {
                Ok(_) => return,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => {
                    tracing::warn!(player, error = %e, "state usage not given back");
                    return;
                }
            }
        }
    }
}
