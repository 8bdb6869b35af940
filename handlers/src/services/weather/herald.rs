//! Pushes weather changes: weather is a function of game time, computed on read, so nothing
//! "changes" it; the herald, a task the process hosting weather owns, publishes
//! `weather.changed` (the new [`Weather`], as `Current` answers it) on `world.<region>` for each
//! region whose condition changed as a game hour began. Hours are handled once across replicas
//! by an hour cursor ([`crate::kit::hours`]), and each region's event is published under a key
//! naming the region and the hour, so a replica that redoes an hour publishes nothing twice. The
//! clock is read each pass (at most [`MAX_SLEEP`] apart), so a scale change re-plans the next
//! wake-up. An operator's `Override` publishes at once (see `override`); when it ends, the next
//! hour's comparison announces the return to the chain.

use std::time::Duration;

use proto::aicore::time::v1::NowRequest;
use proto::aicore::world::v1::{ListRegionsRequest, Region};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::kit::hours::HourCursor;

const CURSOR_KEY: &str = "weather.herald";
/// The longest sleep: a scale change is seen by then.
const MAX_SLEEP: Duration = Duration::from_secs(2);

impl WeatherService {
    /// Announces weather changes until `stop`.
    pub async fn run_herald(self, stop: CancellationToken) {
        let cursor = HourCursor::new(Arc::clone(&self.store), CURSOR_KEY);
        loop {
            let sleep = match self.herald_pass(&cursor).await {
                Ok(next) => next.min(MAX_SLEEP),
                Err(e) => {
                    tracing::warn!(error = %e, "announcing weather changes failed; retrying");
                    MAX_SLEEP
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(sleep.max(Duration::from_millis(10))) => {}
            }
        }
    }

    /// Announces the hours begun since the last pass; returns the real time until the next.
    pub(super) async fn herald_pass(&self, cursor: &HourCursor) -> Result<Duration, Status> {
        let ctx = Context {
            request_id: "weather-herald".into(),
            deadline: Some(std::time::Instant::now() + Duration::from_secs(5)),
            ..Context::default()
        };
        let now = self.time.now(ctx.outgoing(), NowRequest {}).await?;
        let hour_now = now.game_time_ms.div_euclid(HOUR_MS);
        if let Some(due) = cursor.due(hour_now).await? {
            let regions = self
                .world
                .list_regions(ctx.outgoing(), ListRegionsRequest {})
                .await?
                .regions;
            for hour in due.hours.clone() {
                self.announce_hour(&ctx, &regions, hour).await?;
            }
            cursor.done(due).await?;
        }
        let left = HOUR_MS - now.game_time_ms.rem_euclid(HOUR_MS);
        Ok(if now.scale > 0.0 {
            Duration::from_millis((left as f64 / now.scale).ceil() as u64)
        } else {
            MAX_SLEEP
        })
    }

    /// Publishes the regions whose condition changed as game hour `hour` began; returns them.
    pub(super) async fn announce_hour(
        &self,
        ctx: &Context,
        regions: &[Region],
        hour: i64,
    ) -> Result<Vec<String>, Status> {
        let mut changed = Vec::new();
        for region in regions {
            let Some(biome) = self.climate.biomes.get(&region.biome) else {
                continue; // no weather is defined for it: nothing changes
            };
            let held = self.held(&region.id).await?;
            let before = self.weather(&region.id, biome, (hour - 1) * HOUR_MS, held.as_ref());
            let now = self.weather(&region.id, biome, hour * HOUR_MS, held.as_ref());
            if before.condition != now.condition {
                self.publish_change(ctx, &now, format!("weather:{}:{hour}", region.id))
                    .await?;
                changed.push(region.id.clone());
            }
        }
        Ok(changed)
    }
}
