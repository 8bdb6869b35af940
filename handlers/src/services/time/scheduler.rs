//! Publishes due scheduled events onto the event bus, each exactly once:
//!
//! 1. A due event is *claimed* with a compare-and-set on its record (a lease of [`LEASE`]), so of
//!    two replicas sharing the store one fires it, never both.
//! 2. It is published through `events.Publish` as a call between services with the idempotency
//!    key `time:<id>`, so publishing it again (after a crash, or once a lapsed lease is taken over)
//!    returns the recorded outcome instead of a second event.
//! 3. Its record is deleted (conditional on the claim).
//!
//! Each pass also runs the [`super::herald::Herald`], which announces what begins with each game
//! hour (day, dawn, dusk, weather changes).
//!
//! Game time is read from the clock record each pass, so a scale change or a restart changes
//! nothing: whatever fell due while the process was down fires at start, in fire order.

use std::sync::Arc;
use std::time::Duration;

use proto::aicore::events::v1::{EventBusServiceClient, PublishRequest};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Clock, SCHEDULE_PREFIX, Scheduled, encode};
use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::status::{Code, Status};
use crate::kit::store::{Store, StoreError};

/// How long a claim holds; a scheduler that died holding one is taken over after it.
pub const LEASE: Duration = Duration::from_secs(5);
/// The longest sleep between passes (new events scheduled on another replica are seen by then).
const MAX_SLEEP: Duration = Duration::from_millis(500);
const PAGE: usize = 64;

/// The scheduler: one per process hosting the time service; a task the server owns.
pub struct Scheduler {
    clock: Clock,
    store: Arc<dyn Store>,
    events: EventBusServiceClient<Caller>,
    wake: Arc<Notify>,
    herald: super::herald::Herald,
}

impl Scheduler {
    /// A scheduler over the time service's store and clock, publishing through `caller` (the
    /// time service's).
    pub fn new(
        store: Arc<dyn Store>,
        settings: super::ClockSettings,
        caller: Caller,
        wake: Arc<Notify>,
    ) -> Self {
        let clock = Clock::new(Arc::clone(&store), settings);
        Scheduler {
            herald: super::herald::Herald::new(clock.clone(), Arc::clone(&store), caller.clone()),
            clock,
            store,
            events: EventBusServiceClient(caller),
            wake,
        }
    }

    /// Runs passes until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let sleep = match self.pass().await {
                Ok(next) => next.unwrap_or(MAX_SLEEP).min(MAX_SLEEP),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; retrying");
                    MAX_SLEEP
                }
            };
            // The clock's transitions: what begins with each game hour (see `herald`).
            let sleep = match self.herald.pass().await {
                Ok(next) => sleep.min(next.unwrap_or(MAX_SLEEP)),
                Err(e) => {
                    tracing::warn!(error = %e, "announcing the game hour failed; retrying");
                    sleep
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep.max(Duration::from_millis(10))) => {}
            }
        }
    }

    /// Fires every due event, in fire order. Returns how long until the next one is due (real
    /// time), if one is pending and the clock runs.
    pub async fn pass(&self) -> Result<Option<Duration>, Status> {
        let mut after: Option<String> = None;
        loop {
            let (record, game_now, real_now) = self.clock.now().await?;
            let page = self
                .store
                .list(SCHEDULE_PREFIX, after.as_deref(), PAGE)
                .await?;
            for (key, v) in &page.entries {
                let event: Scheduled = match serde_json::from_slice(&v.value) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(key, error = %e, "unreadable scheduled event; skipped");
                        continue;
                    }
                };
                if event.fire_at > game_now {
                    let wait = record
                        .real_at(event.fire_at)
                        .map(|at| Duration::from_millis(at.saturating_sub(real_now).max(0) as u64));
                    return Ok(wait);
                }
                if event.claimed_until_ms.is_some_and(|until| until > real_now) {
                    continue; // another scheduler holds it
                }
                self.fire(key, v.version, event, real_now).await;
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(None),
            }
        }
    }

    async fn fire(&self, key: &str, version: u64, mut event: Scheduled, real_now: i64) {
        event.claimed_until_ms = Some(real_now.saturating_add(LEASE.as_millis() as i64));
        let Ok(bytes) = encode(&event) else { return };
        let claimed = match self.store.put(key, bytes, Some(version)).await {
            Ok(v) => v,
            Err(StoreError::Conflict { .. }) => return, // another replica claimed or it was cancelled
            Err(e) => {
                tracing::warn!(id = %event.id, error = %e, "cannot claim a due event");
                return;
            }
        };
        let payload = match serde_json::from_value(event.payload.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(id = %event.id, error = %e, "stored payload unreadable; publishing none");
                None
            }
        };
        let ctx = Context {
            request_id: format!("time-{}", event.id),
            deadline: Some(std::time::Instant::now() + LEASE),
            ..Context::default()
        };
        let published = self
            .events
            .publish(
                ctx.outgoing().idempotent(format!("time:{}", event.id)),
                PublishRequest {
                    topic: event.topic.clone(),
                    r#type: event.r#type.clone(),
                    payload,
                },
            )
            .await;
        match published {
            Ok(reply) => {
                tracing::info!(id = %event.id, topic = %event.topic, sequence = reply.sequence, "scheduled event fired");
            }
            Err(e) if permanent(&e) => {
                tracing::error!(id = %event.id, topic = %event.topic, error = %e, "scheduled event refused by the event bus; dropped");
            }
            Err(e) => {
                // The claim lapses and a later pass publishes it again, under the same key.
                tracing::warn!(id = %event.id, error = %e, "could not publish a due event; will retry");
                return;
            }
        }
        if let Err(e) = self.store.delete(key, Some(claimed)).await {
            tracing::warn!(id = %event.id, error = %e, "fired, but the record stays; the next pass republishes it under the same key (no second event)");
        }
    }
}

/// Whether trying again cannot help.
fn permanent(status: &Status) -> bool {
    match status.code() {
        Code::InvalidArgument
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::NotFound
        | Code::OutOfRange => true,
        Code::Unauthenticated
        | Code::Aborted
        | Code::AlreadyExists
        | Code::ResourceExhausted
        | Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss
        | Code::Canceled
        | Code::Unknown => false,
    }
}
