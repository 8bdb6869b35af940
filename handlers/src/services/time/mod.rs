//! `aicore.time.v1.TimeService`: the game clock and game-time events.
//!
//! The clock is one record, `time.clock`: an anchor (a real instant and the game time then) and
//! a scale (game seconds per real second). Game time is computed from it, never ticked, so
//! every replica reads the same time and a restart loses nothing. `SetScale` re-anchors at the
//! current game time, so game time never jumps; scale 0 freezes it.
//!
//! Scheduled events live at `time.sched.<fire time, 20 digits>-<random>`: a listing is in fire
//! order. The [`scheduler::Scheduler`] (a task the server owns) publishes each due event onto
//! the event bus exactly once; see there how.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod herald;
pub mod scheduler;

use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::time::v1::{
    CancelRequest, CancelResponse, ListScheduledRequest, ListScheduledResponse, NowRequest,
    NowResponse, ScheduleRequest, ScheduleResponse, ScheduledEvent, SetScaleRequest,
    SetScaleResponse, TimeServiceHandler,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::kit::clock::now_ms;
use crate::kit::context::{Context, Principal};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

const CLOCK_KEY: &str = "time.clock";
/// Prefix of scheduled events.
pub const SCHEDULE_PREFIX: &str = "time.sched.";
/// Largest payload of a scheduled event, as JSON.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024;
/// Largest scale: a game day in under 90 real seconds.
pub const MAX_SCALE: f64 = 1000.0;
const DAY_MS: i64 = 86_400_000;
const DEFAULT_TYPE: &str = "time.scheduled";

/// `[time]`: how the clock starts, the first time it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSettings {
    /// The real instant (Unix ms) at which game time was 0; none: the first start.
    pub epoch_ms: Option<i64>,
    /// Game seconds per real second at first start (12: a game day every two real hours).
    pub scale: f64,
}

impl Default for ClockSettings {
    fn default() -> Self {
        ClockSettings {
            epoch_ms: None,
            scale: 12.0,
        }
    }
}

impl ClockSettings {
    /// Within reason.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.scale.is_finite() && (0.0..=MAX_SCALE).contains(&self.scale)) {
            return Err(format!("time.scale must be 0 to {MAX_SCALE}"));
        }
        if self.epoch_ms.is_some_and(|e| e > now_ms_i64()) {
            return Err("time.epoch_ms is in the future".into());
        }
        Ok(())
    }
}

fn now_ms_i64() -> i64 {
    i64::try_from(now_ms()).unwrap_or(i64::MAX)
}

/// The persisted clock: game time `anchor_game_ms` at real time `anchor_real_ms`, then `scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockRecord {
    /// Real time of the anchor, Unix ms.
    pub anchor_real_ms: i64,
    /// Game time at the anchor, ms since the game epoch.
    pub anchor_game_ms: i64,
    /// Game ms per real ms.
    pub scale: f64,
}

impl ClockRecord {
    /// Game time at real time `real_ms`.
    pub fn game_at(&self, real_ms: i64) -> i64 {
        let elapsed = real_ms.saturating_sub(self.anchor_real_ms) as f64;
        self.anchor_game_ms
            .saturating_add((elapsed * self.scale).floor() as i64)
    }

    /// The real time at which game time reaches `game_ms`; `None` while frozen.
    pub fn real_at(&self, game_ms: i64) -> Option<i64> {
        (self.scale > 0.0).then(|| {
            let ahead = game_ms.saturating_sub(self.anchor_game_ms) as f64;
            self.anchor_real_ms
                .saturating_add((ahead / self.scale).ceil() as i64)
        })
    }
}

/// The game clock in the store.
#[derive(Clone)]
pub struct Clock {
    store: Arc<dyn Store>,
    settings: ClockSettings,
}

impl Clock {
    /// The clock over `store`, started per `settings` if it never was.
    pub fn new(store: Arc<dyn Store>, settings: ClockSettings) -> Self {
        Clock { store, settings }
    }

    /// The record and its version, creating it on first use (every replica agrees on the
    /// one that wins the create).
    pub async fn read(&self) -> Result<(ClockRecord, u64), Status> {
        loop {
            if let Some(v) = self.store.get(CLOCK_KEY).await? {
                let record: ClockRecord = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("clock record: {e}")))?;
                return Ok((record, v.version));
            }
            let now = now_ms_i64();
            let record = match self.settings.epoch_ms {
                Some(epoch) => ClockRecord {
                    anchor_real_ms: epoch,
                    anchor_game_ms: 0,
                    scale: self.settings.scale,
                },
                None => ClockRecord {
                    anchor_real_ms: now,
                    anchor_game_ms: 0,
                    scale: self.settings.scale,
                },
            };
            match self.store.put(CLOCK_KEY, encode(&record)?, Some(0)).await {
                Ok(version) => return Ok((record, version)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Game time now.
    pub async fn now(&self) -> Result<(ClockRecord, i64, i64), Status> {
        let (record, _) = self.read().await?;
        let real = now_ms_i64();
        Ok((record, record.game_at(real), real))
    }

    /// Re-anchors at the current game time with a new scale.
    pub async fn set_scale(&self, scale: f64) -> Result<(ClockRecord, i64, i64), Status> {
        if !(scale.is_finite() && (0.0..=MAX_SCALE).contains(&scale)) {
            return Err(Status::invalid_argument(format!(
                "scale must be 0 (paused) to {MAX_SCALE}, got {scale}"
            )));
        }
        for _ in 0..16 {
            let (old, version) = self.read().await?;
            let real = now_ms_i64();
            let record = ClockRecord {
                anchor_real_ms: real,
                anchor_game_ms: old.game_at(real),
                scale,
            };
            match self
                .store
                .put(CLOCK_KEY, encode(&record)?, Some(version))
                .await
            {
                Ok(_) => return Ok((record, record.anchor_game_ms, real)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("the clock kept changing; try again"))
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Bytes, Status> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| Status::internal(format!("encoding: {e}")))
}

/// The answer to `Now` at game time `game_ms`.
pub fn now_response(record: &ClockRecord, game_ms: i64, real_ms: i64) -> NowResponse {
    let day = game_ms.div_euclid(DAY_MS);
    let in_day = game_ms.rem_euclid(DAY_MS);
    NowResponse {
        game_time_ms: game_ms,
        scale: record.scale,
        real_time_ms: real_ms,
        day: u32::try_from(day + 1).unwrap_or(0),
        hour: (in_day / 3_600_000) as u32,
        minute: (in_day / 60_000 % 60) as u32,
        period: crate::kit::clock::period((in_day / 3_600_000) as u32).to_owned(),
        season: crate::kit::clock::season(day).to_owned(),
        month: crate::kit::clock::month(day).to_owned(),
    }
}

/// A scheduled event as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scheduled {
    /// Its id (also the end of its key).
    pub id: String,
    /// When it fires, game ms.
    pub fire_at: i64,
    /// Topic on the event bus.
    pub topic: String,
    /// Event type.
    pub r#type: String,
    /// The payload as JSON.
    pub payload: serde_json::Value,
    /// While a scheduler is publishing it: until when (real Unix ms) its claim holds.
    #[serde(default)]
    pub claimed_until_ms: Option<i64>,
}

impl Scheduled {
    fn to_proto(&self) -> Result<ScheduledEvent, Status> {
        Ok(ScheduledEvent {
            id: self.id.clone(),
            fire_at_game_time_ms: self.fire_at,
            topic: self.topic.clone(),
            payload: Some(
                serde_json::from_value(self.payload.clone())
                    .map_err(|e| Status::internal(format!("stored payload: {e}")))?,
            ),
            r#type: self.r#type.clone(),
        })
    }
}

/// The key of a scheduled event: ids are `<fire time, 20 digits>-<16 hex>`, so keys sort by
/// fire time.
fn schedule_key(id: &str) -> Result<String, Status> {
    let valid = id.len() == 37
        && id.as_bytes()[20] == b'-'
        && id[..20].bytes().all(|b| b.is_ascii_digit())
        && id[21..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if valid {
        Ok(format!("{SCHEDULE_PREFIX}{id}"))
    } else {
        Err(Status::invalid_argument("id is not a scheduled event's id"))
    }
}

/// The service.
pub struct TimeService {
    clock: Clock,
    store: Arc<dyn Store>,
    /// Wakes the scheduler when something is scheduled here.
    wake: Arc<Notify>,
}

impl TimeService {
    /// The service over `store`; `wake` is shared with the scheduler.
    pub fn new(store: Arc<dyn Store>, settings: ClockSettings, wake: Arc<Notify>) -> Self {
        TimeService {
            clock: Clock::new(Arc::clone(&store), settings),
            store,
            wake,
        }
    }
}

/// Whether `principal` may see an event on `topic`: services all; a player public topics and
/// their own.
fn visible(principal: Option<&Principal>, topic: &str) -> bool {
    match principal {
        Some(Principal::Service { .. }) => true,
        Some(Principal::Player { player_id }) => topic
            .strip_prefix("player.")
            .is_none_or(|id| id == player_id),
        None => false,
    }
}

impl TimeServiceHandler for TimeService {
    type Context = Context;
    type Error = Status;

    async fn now(&self, _ctx: Context, _req: NowRequest) -> Result<NowResponse, Status> {
        let (record, game, real) = self.clock.now().await?;
        Ok(now_response(&record, game, real))
    }

    async fn set_scale(
        &self,
        _ctx: Context,
        req: SetScaleRequest,
    ) -> Result<SetScaleResponse, Status> {
        let (record, game, real) = self.clock.set_scale(req.scale).await?;
        // Due times in real time moved: the scheduler recomputes its sleep.
        self.wake.notify_one();
        Ok(SetScaleResponse {
            now: Some(now_response(&record, game, real)),
        })
    }

    async fn schedule(
        &self,
        _ctx: Context,
        req: ScheduleRequest,
    ) -> Result<ScheduleResponse, Status> {
        if req.fire_at_game_time_ms < 0 {
            return Err(Status::invalid_argument(
                "fireAtGameTimeMs must not be negative",
            ));
        }
        crate::kit::event_log::validate_topic(&req.topic)?;
        let r#type = if req.r#type.is_empty() {
            DEFAULT_TYPE.to_owned()
        } else {
            req.r#type
        };
        if r#type.len() > 64
            || r#type.starts_with("edge.")
            || !r#type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(Status::invalid_argument(
                "type must be 1 to 64 letters, digits, '.', '_' or '-', not starting with \"edge.\"",
            ));
        }
        let payload = serde_json::to_value(req.payload.unwrap_or_default())
            .map_err(|e| Status::invalid_argument(format!("payload: {e}")))?;
        let size = serde_json::to_vec(&payload).map_or(usize::MAX, |v| v.len());
        if size > MAX_PAYLOAD_BYTES {
            return Err(Status::payload_too_large(format!(
                "payload is {size} bytes as JSON; at most {MAX_PAYLOAD_BYTES}"
            )));
        }
        let id = format!(
            "{:020}-{:016x}",
            req.fire_at_game_time_ms,
            rand::random::<u64>()
        );
        let event = Scheduled {
            id: id.clone(),
            fire_at: req.fire_at_game_time_ms,
            topic: req.topic,
            r#type,
            payload,
            claimed_until_ms: None,
        };
        self.store
            .put(&schedule_key(&id)?, encode(&event)?, Some(0))
            .await?;
        self.wake.notify_one();
        Ok(ScheduleResponse {
            event: Some(event.to_proto()?),
        })
    }

    async fn cancel(&self, _ctx: Context, req: CancelRequest) -> Result<CancelResponse, Status> {
        let key = schedule_key(&req.id)?;
        let Some(current) = self.store.get(&key).await? else {
            return Err(Status::not_found(format!(
                "no scheduled event {} (it fired, was cancelled, or never was)",
                req.id
            )));
        };
        let event: Scheduled = serde_json::from_slice(&current.value)
            .map_err(|e| Status::internal(format!("scheduled event: {e}")))?;
        if event.claimed_until_ms.is_some() {
            return Err(Status::failed_precondition(format!(
                "{} is firing now; too late to cancel",
                req.id
            )));
        }
        match self.store.delete(&key, Some(current.version)).await {
            Ok(_) => Ok(CancelResponse {}),
            Err(StoreError::Conflict { .. }) => Err(Status::failed_precondition(format!(
                "{} is firing now; too late to cancel",
                req.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_scheduled(
        &self,
        ctx: Context,
        req: ListScheduledRequest,
    ) -> Result<ListScheduledResponse, Status> {
        let limit = match req.limit {
            0 => 100,
            n @ 1..=1000 => n as usize,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit must be 1 to 1000, got {n}"
                )));
            }
        };
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        // Pages until `limit` visible events or the end; a player's view skips other players'.
        for _ in 0..100 {
            let page = self
                .store
                .list(SCHEDULE_PREFIX, after.as_deref(), limit)
                .await?;
            for (_, v) in &page.entries {
                let e: Scheduled = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("scheduled event: {e}")))?;
                if visible(ctx.principal.as_ref(), &e.topic) && events.len() < limit {
                    events.push(e.to_proto()?);
                }
            }
            match page.next_after {
                Some(next) if events.len() < limit => after = Some(next),
                _ => break,
            }
        }
        Ok(ListScheduledResponse { events })
    }
}

#[cfg(test)]
mod tests;
