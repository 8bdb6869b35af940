//! `aicore.narrative.v1.NarrativeService`: a description of a region from its biome, the weather
//! there now and the time of day, in the perspective asked for, all fetched through the router.
//!
//! A template grammar, no model: the phrase tables (`handlers/data/narrative/phrases.toml`) hold
//! sentences per perspective, weather, time of day, season, biome and region, each tagged with the
//! moments it fits; one fitting line is chosen from each table by a seed derived from the inputs,
//! so the same region and moment always read the same, a storm or nightfall changes the text, and
//! no line speaks against the sky (no hay smell in the snow). Every description names something
//! of its own region and nothing of another's (`content.rs` checks the tables for it).
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

mod compose;
mod content;

use std::sync::Arc;

pub use compose::compose;
pub use content::{BANDS, CONDITIONS, Line, Moment, PERIODS, Phrases, RegionSet, band};
use proto::aicore::narrative::v1::{DescribeRequest, DescribeResponse, NarrativeServiceHandler};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use proto::aicore::weather::v1::{Condition, CurrentRequest, WeatherServiceClient};
use proto::aicore::world::v1::{GetRegionRequest, WorldServiceClient};

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::status::Status;

/// The time of day of a game hour (the game clock's own words).
pub use crate::kit::clock::period;

/// The name of a weather condition, as the phrase tables use it.
pub fn condition_label(c: i32) -> &'static str {
    match Condition::try_from(c).unwrap_or(Condition::Unspecified) {
        Condition::Clear | Condition::Unspecified => "clear",
        Condition::Cloudy => "cloudy",
        Condition::Rain => "rain",
        Condition::Storm => "storm",
        Condition::Snow => "snow",
        Condition::Fog => "fog",
    }
}

/// The service.
pub struct NarrativeService {
    phrases: Arc<Phrases>,
    world: WorldServiceClient<Caller>,
    weather: WeatherServiceClient<Caller>,
    time: TimeServiceClient<Caller>,
}

impl NarrativeService {
    /// The service, reading world, weather and time through `caller` (the narrative service's).
    pub fn new(phrases: Arc<Phrases>, caller: Caller) -> Self {
        NarrativeService {
            phrases,
            world: WorldServiceClient(caller.clone()),
            weather: WeatherServiceClient(caller.clone()),
            time: TimeServiceClient(caller),
        }
    }
}

impl NarrativeServiceHandler for NarrativeService {
    type Context = Context;
    type Error = Status;

    async fn describe(
        &self,
        ctx: Context,
        req: DescribeRequest,
    ) -> Result<DescribeResponse, Status> {
        let max_words = match req.max_words {
            0 => 80,
            n @ 10..=400 => n as usize,
            n => {
                return Err(Status::invalid_argument(format!(
                    "maxWords must be 10 to 400, got {n}"
                )));
            }
        };
        let perspective = if req.perspective.is_empty() {
            "omniscient"
        } else {
            req.perspective.as_str()
        };
        if !self.phrases.openings.contains_key(perspective) {
            let known: Vec<&str> = self.phrases.perspectives().collect();
            return Err(Status::invalid_argument(format!(
                "perspective must be one of {}",
                known.join(", ")
            )));
        }
        if req.region_id.is_empty() || req.region_id.len() > 64 {
            return Err(Status::invalid_argument("regionId is required"));
        }
        // The region first: an unknown one is world's not_found, before anything else is asked.
        let region = self
            .world
            .get_region(
                ctx.outgoing(),
                GetRegionRequest {
                    region_id: req.region_id.clone(),
                },
            )
            .await?
            .region
            .ok_or_else(|| Status::internal("world answered no region"))?;
        let (weather, now) = tokio::join!(
            self.weather.current(
                ctx.outgoing(),
                CurrentRequest {
                    region_id: req.region_id.clone(),
                },
            ),
            self.time.now(ctx.outgoing(), NowRequest {}),
        );
        let weather = weather?.weather.unwrap_or_default();
        let now = now?;
        let moment = Moment {
            condition: condition_label(weather.condition),
            season: crate::kit::clock::season(now.game_time_ms.div_euclid(86_400_000)),
            period: period(now.hour),
            band: band(weather.temperature_c),
        };
        Ok(DescribeResponse {
            text: compose(
                &self.phrases,
                &req.region_id,
                &region.name,
                &region.biome,
                &moment,
                perspective,
                max_words,
            ),
            condition: weather.condition,
            time_of_day: moment.period.to_owned(),
            season: moment.season.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
