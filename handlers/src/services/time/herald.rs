//! Announces the game clock's transitions as they happen, so clients need not poll: at each game
//! hour's start, `time.day_began` (at midnight) and `time.period_began` (dawn, morning,
//! afternoon, evening, night: dusk is night beginning) on every region's topic.
//!
//! Exactly once across replicas: every event is published under an idempotency key naming what
//! it announces (the type, the region, the hour), so two replicas announcing the same hour, or a
//! retry after a crash, publish one event; an hour cursor ([`crate::kit::hours`]) keeps replicas
//! from redoing hours. The clock record is read each pass, so a scale change re-plans the next
//! wake-up. Weather changes are the weather service's to announce (it runs a herald of its own).

use std::sync::Arc;
use std::time::Duration;

use proto::aicore::events::v1::EventBusServiceClient;
use proto::aicore::time::v1::{DayBegan, PeriodBegan};
use proto::aicore::world::v1::{ListRegionsRequest, WorldServiceClient};

use super::Clock;
use crate::kit::calls::Caller;
use crate::kit::clock::period_beginning;
use crate::kit::context::Context;
use crate::kit::event_log::typed_event;
use crate::kit::hours::{HOUR_MS, HourCursor};
use crate::kit::status::Status;
use crate::kit::store::Store;

const CURSOR_KEY: &str = "time.herald";
/// How long one hour's announcements may take.
const HOUR_DEADLINE: Duration = Duration::from_secs(5);

/// The herald: run by the scheduler's passes.
pub struct Herald {
    clock: Clock,
    cursor: HourCursor,
    events: EventBusServiceClient<Caller>,
    world: WorldServiceClient<Caller>,
}

impl Herald {
    /// A herald over the time service's store and clock, calling through `caller` (the time
    /// service's).
    pub fn new(clock: Clock, store: Arc<dyn Store>, caller: Caller) -> Self {
        Herald {
            clock,
            cursor: HourCursor::new(store, CURSOR_KEY),
            events: EventBusServiceClient(caller.clone()),
            world: WorldServiceClient(caller),
        }
    }

    /// Announces every game hour begun since the last announced one. Returns the real time until
    /// the next hour begins, if the clock runs.
    pub async fn pass(&self) -> Result<Option<Duration>, Status> {
        let (record, game_now, real_now) = self.clock.now().await?;
        let hour_now = game_now.div_euclid(HOUR_MS);
        let next = record.real_at((hour_now + 1) * HOUR_MS).map(|at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(real_now)).unwrap_or(0))
        });
        if let Some(due) = self.cursor.due(hour_now).await? {
            for hour in due.hours.clone() {
                self.announce(hour).await?;
            }
            self.cursor.done(due).await?;
        }
        Ok(next)
    }

    /// Publishes what begins at game hour `hour`.
    async fn announce(&self, hour: i64) -> Result<(), Status> {
        let ctx = Context {
            request_id: format!("time-hour-{hour}"),
            deadline: Some(std::time::Instant::now() + HOUR_DEADLINE),
            ..Context::default()
        };
        let of_day = u32::try_from(hour.rem_euclid(24)).unwrap_or(0);
        // Days count from 1, as `Now` says them.
        let day = hour.div_euclid(24) + 1;
        let day = u32::try_from(day).unwrap_or(u32::MAX);
        let regions = if of_day == 0 || period_beginning(of_day).is_some() {
            self.world
                .list_regions(ctx.outgoing(), ListRegionsRequest {})
                .await?
                .regions
        } else {
            Vec::new()
        };
        for region in &regions {
            let topic = format!("world.{}", region.id);
            let mut news = Vec::new();
            if of_day == 0 {
                news.push(typed_event(topic.clone(), &DayBegan { day })?);
            }
            if let Some(period) = period_beginning(of_day) {
                let event = PeriodBegan {
                    period: period.to_owned(),
                    day,
                    hour: of_day,
                };
                news.push(typed_event(topic.clone(), &event)?);
            }
            for request in news {
                self.events
                    .publish(
                        ctx.outgoing()
                            .idempotent(format!("{}:{}:{hour}", request.r#type, region.id)),
                        request,
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
