//! `aicore.weather.v1.WeatherService`: each region's weather, hour by hour, as a pure function
//! of (seed, region, game hour) ([`model`]). The region's biome comes from the world service and
//! the game time from the time service, both called through the router. `Override` holds a
//! condition for a number of game minutes (`weather.override.<region>`); when it ends, the
//! region is exactly where the chain would have had it.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod chain;
mod herald;

use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::events::v1::EventBusServiceClient;
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use proto::aicore::weather::v1::{
    Condition, CurrentRequest, CurrentResponse, ForecastRequest, ForecastResponse, OverrideRequest,
    OverrideResponse, Weather, WeatherServiceHandler,
};
use proto::aicore::world::v1::{GetRegionRequest, WorldServiceClient};
use serde::{Deserialize, Serialize};

pub use chain::Climate;

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::event_log::typed_event;
use crate::kit::status::Status;
use crate::kit::store::Store;

use crate::kit::hours::HOUR_MS;
/// Longest forecast, game hours.
pub const MAX_FORECAST_HOURS: u32 = 168;
/// Longest override: a game week.
pub const MAX_OVERRIDE_MINUTES: u32 = 7 * 24 * 60;

/// `[weather]`: the seed every replica shares (change it and every region's weather changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeatherSettings {
    /// The seed of the weather.
    pub seed: u64,
}

impl Default for WeatherSettings {
    fn default() -> Self {
        WeatherSettings {
            seed: 0x005E_ED0F_7A1E,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Held {
    /// Index into [`chain::CONDITIONS`].
    condition: usize,
    /// Game time it ends, ms.
    until_game_ms: i64,
}

/// The service.
pub struct WeatherService {
    store: Arc<dyn Store>,
    climate: Arc<Climate>,
    seed: u64,
    time: TimeServiceClient<Caller>,
    world: WorldServiceClient<Caller>,
    events: EventBusServiceClient<Caller>,
    /// Region id -> biome, as world answered it. Regions ship as data and never change while a
    /// process runs, so each is asked once; bounded by [`MAX_KNOWN_REGIONS`].
    biomes: std::sync::RwLock<std::collections::HashMap<String, String>>,
}

/// Most region biomes remembered.
const MAX_KNOWN_REGIONS: usize = 1024;

impl WeatherService {
    /// The service; `caller` is the weather service's.
    pub fn new(
        store: Arc<dyn Store>,
        climate: Arc<Climate>,
        settings: &WeatherSettings,
        caller: Caller,
    ) -> Self {
        WeatherService {
            store,
            climate,
            seed: settings.seed,
            time: TimeServiceClient(caller.clone()),
            world: WorldServiceClient(caller.clone()),
            events: EventBusServiceClient(caller),
            biomes: std::sync::RwLock::default(),
        }
    }

    /// The region's biome (from world) and the game time now (from time).
    async fn region_and_now(
        &self,
        ctx: &Context,
        region_id: &str,
    ) -> Result<(&chain::Biome, i64), Status> {
        if region_id.is_empty() {
            return Err(Status::invalid_argument("regionId is required"));
        }
        let known = self
            .biomes
            .read()
            .ok()
            .and_then(|b| b.get(region_id).cloned());
        let (biome, now) = match known {
            Some(biome) => (biome, self.time.now(ctx.outgoing(), NowRequest {}).await?),
            None => {
                let (region, now) = tokio::join!(
                    self.world.get_region(
                        ctx.outgoing(),
                        GetRegionRequest {
                            region_id: region_id.to_owned(),
                        },
                    ),
                    self.time.now(ctx.outgoing(), NowRequest {}),
                );
                let biome = region?
                    .region
                    .ok_or_else(|| Status::internal("world answered without a region"))?
                    .biome;
                if let Ok(mut b) = self.biomes.write()
                    && b.len() < MAX_KNOWN_REGIONS
                {
                    b.insert(region_id.to_owned(), biome.clone());
                }
                (biome, now?)
            }
        };
        let biome = self.climate.biomes.get(&biome).ok_or_else(|| {
            Status::failed_precondition(format!(
                "no weather is defined for biome {biome:?} of region {region_id}"
            ))
        })?;
        Ok((biome, now.game_time_ms))
    }

    async fn held(&self, region_id: &str) -> Result<Option<Held>, Status> {
        Ok(match self.store.get(&override_key(region_id)).await? {
            Some(v) => Some(
                serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("weather override: {e}")))?,
            ),
            None => None,
        })
    }

    fn weather(
        &self,
        region_id: &str,
        biome: &chain::Biome,
        game_ms: i64,
        held: Option<&Held>,
    ) -> Weather {
        let hour = game_ms.div_euclid(HOUR_MS);
        let overridden = held.filter(|h| game_ms < h.until_game_ms);
        let h = match overridden {
            Some(o) => self
                .climate
                .hour_with(self.seed, region_id, biome, hour, o.condition),
            None => self.climate.hour(self.seed, region_id, biome, hour),
        };
        Weather {
            region_id: region_id.to_owned(),
            condition: condition_enum(h.condition) as i32,
            temperature_c: h.temperature_c,
            wind_mps: h.wind_mps,
            precipitation: h.precipitation,
            game_time_ms: game_ms,
            overridden: overridden.is_some(),
        }
    }
}

impl WeatherService {
    /// Publishes `weather.changed` with `weather` (as the API answers it) on the region's topic,
    /// once per `key`.
    async fn publish_change(
        &self,
        ctx: &Context,
        weather: &Weather,
        key: String,
    ) -> Result<(), Status> {
        self.events
            .publish(
                ctx.outgoing().idempotent(key),
                typed_event(format!("world.{}", weather.region_id), weather)?,
            )
            .await
            .map(|_| ())
    }
}

fn override_key(region_id: &str) -> String {
    format!("weather.override.{region_id}")
}

fn condition_enum(index: usize) -> Condition {
    match index {
        0 => Condition::Clear,
        1 => Condition::Cloudy,
        2 => Condition::Rain,
        3 => Condition::Storm,
        4 => Condition::Snow,
        _ => Condition::Fog,
    }
}

impl WeatherServiceHandler for WeatherService {
    type Context = Context;
    type Error = Status;

    async fn current(&self, ctx: Context, req: CurrentRequest) -> Result<CurrentResponse, Status> {
        let (biome, now) = self.region_and_now(&ctx, &req.region_id).await?;
        let held = self.held(&req.region_id).await?;
        Ok(CurrentResponse {
            weather: Some(self.weather(&req.region_id, biome, now, held.as_ref())),
        })
    }

    async fn forecast(
        &self,
        ctx: Context,
        req: ForecastRequest,
    ) -> Result<ForecastResponse, Status> {
        if !(1..=MAX_FORECAST_HOURS).contains(&req.hours) {
            return Err(Status::invalid_argument(format!(
                "hours must be 1 to {MAX_FORECAST_HOURS}, got {}",
                req.hours
            )));
        }
        let (biome, now) = self.region_and_now(&ctx, &req.region_id).await?;
        let held = self.held(&req.region_id).await?;
        let first = now.div_euclid(HOUR_MS) + 1;
        Ok(ForecastResponse {
            hourly: (first..first + i64::from(req.hours))
                .map(|h| self.weather(&req.region_id, biome, h * HOUR_MS, held.as_ref()))
                .collect(),
        })
    }

    async fn r#override(
        &self,
        ctx: Context,
        req: OverrideRequest,
    ) -> Result<OverrideResponse, Status> {
        let (biome, now) = self.region_and_now(&ctx, &req.region_id).await?;
        let key = override_key(&req.region_id);
        let held = if req.duration_minutes == 0 {
            self.store.delete(&key, None).await?;
            None
        } else {
            if req.duration_minutes > MAX_OVERRIDE_MINUTES {
                return Err(Status::invalid_argument(format!(
                    "durationMinutes must be at most {MAX_OVERRIDE_MINUTES} (a game week)"
                )));
            }
            let condition = match Condition::try_from(req.condition) {
                Ok(Condition::Unspecified) | Err(_) => {
                    return Err(Status::invalid_argument(
                        "condition must be one of CLEAR, CLOUDY, RAIN, STORM, SNOW, FOG",
                    ));
                }
                Ok(c) => c as usize - 1,
            };
            let held = Held {
                condition,
                until_game_ms: now.saturating_add(i64::from(req.duration_minutes) * 60_000),
            };
            let bytes = serde_json::to_vec(&held).map_err(|e| Status::internal(e.to_string()))?;
            self.store.put(&key, Bytes::from(bytes), None).await?;
            Some(held)
        };
        let weather = self.weather(&req.region_id, biome, now, held.as_ref());
        // Pushed at once, not at the next hour. The override is in force whether or not the
        // event goes out: a failed publish is logged, not the caller's error.
        let tag = held.as_ref().map_or_else(
            || "lifted".to_owned(),
            |h| format!("{}-{}", h.condition, h.until_game_ms),
        );
        if let Err(e) = self
            .publish_change(
                &ctx,
                &weather,
                format!("weather-override:{}:{now}:{tag}", req.region_id),
            )
            .await
        {
            tracing::warn!(region = %req.region_id, error = %e, "override in force; its event was not published");
        }
        Ok(OverrideResponse {
            weather: Some(weather),
        })
    }
}

#[cfg(test)]
mod tests;
