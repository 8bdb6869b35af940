//! `aicore.narrative.v1.NarrativeService`: a description of a region from its biome, the weather
//! there now and the time of day, in the perspective asked for, all fetched through the router.
//!
//! A template grammar, no model: the phrase tables (`handlers/data/narrative/phrases.toml`) hold
//! sentences per biome, weather, time of day and perspective; one is chosen from each table by a
//! seed derived from the inputs, so the same region, weather, time of day and perspective always
//! read the same, and a storm or nightfall changes the text.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::aicore::narrative::v1::{DescribeRequest, DescribeResponse, NarrativeServiceHandler};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use proto::aicore::weather::v1::{Condition, CurrentRequest, WeatherServiceClient};
use proto::aicore::world::v1::{GetRegionRequest, WorldServiceClient};
use serde::Deserialize;
use toml::Spanned;

use crate::kit::calls::Caller;
use crate::kit::content::{Content, DataError, Embedded, Source, seed};
use crate::kit::context::Context;
use crate::kit::status::Status;

/// The weather conditions and times of day every table must cover.
const CONDITIONS: [&str; 6] = ["clear", "cloudy", "rain", "storm", "snow", "fog"];
const PERIODS: [&str; 5] = ["dawn", "morning", "afternoon", "evening", "night"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    biome: BTreeMap<String, Spanned<BiomeEntry>>,
    weather: BTreeMap<String, Spanned<Lines>>,
    time: BTreeMap<String, Spanned<Lines>>,
    perspective: BTreeMap<String, Spanned<Openings>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BiomeEntry {
    land: Vec<String>,
    sounds: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lines {
    lines: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Openings {
    opening: Vec<String>,
}

/// The phrase tables.
#[derive(Debug, Clone)]
pub struct Phrases {
    land: BTreeMap<String, Vec<String>>,
    sounds: BTreeMap<String, Vec<String>>,
    weather: BTreeMap<String, Vec<String>>,
    time: BTreeMap<String, Vec<String>>,
    openings: BTreeMap<String, Vec<String>>,
    file: String,
}

fn check_lines(
    src: &Source,
    span: std::ops::Range<usize>,
    what: &str,
    lines: &[String],
) -> Result<(), DataError> {
    if lines.is_empty() {
        return Err(src.error(Some(span), format!("{what}: at least one line")));
    }
    for l in lines {
        let rest = l.replace("{region}", "");
        if rest.contains('{') || rest.contains('}') {
            return Err(src.error(
                Some(span),
                format!("{what}: {l:?} has a placeholder other than {{region}}"),
            ));
        }
        if l.trim().is_empty() || l.len() > 400 {
            return Err(src.error(Some(span), format!("{what}: lines are 1 to 400 bytes")));
        }
    }
    Ok(())
}

impl Phrases {
    /// Checks that every biome of the world has its lines.
    pub fn check_biomes<'a>(
        &self,
        biomes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), DataError> {
        for b in biomes {
            if !self.land.contains_key(b) {
                return Err(DataError {
                    file: self.file.clone(),
                    line: 1,
                    message: format!("no [biome.{b}] for a region of that biome"),
                });
            }
        }
        Ok(())
    }

    /// The perspectives offered.
    pub fn perspectives(&self) -> impl Iterator<Item = &str> {
        self.openings.keys().map(String::as_str)
    }
}

impl Content for Phrases {
    const SHIPPED: Embedded = crate::embedded!("narrative/phrases.toml");

    /// Parses and validates one file: every condition and time of day is covered, and lines use
    /// no placeholder but `{region}`.
    fn parse(src: &Source) -> Result<Phrases, DataError> {
        let file: File = src.toml()?;
        let mut p = Phrases {
            land: BTreeMap::new(),
            sounds: BTreeMap::new(),
            weather: BTreeMap::new(),
            time: BTreeMap::new(),
            openings: BTreeMap::new(),
            file: src.file.clone(),
        };
        for (name, b) in &file.biome {
            check_lines(
                src,
                b.span(),
                &format!("biome.{name}.land"),
                &b.get_ref().land,
            )?;
            check_lines(
                src,
                b.span(),
                &format!("biome.{name}.sounds"),
                &b.get_ref().sounds,
            )?;
            p.land.insert(name.clone(), b.get_ref().land.clone());
            p.sounds.insert(name.clone(), b.get_ref().sounds.clone());
        }
        for (table, entries, required) in [
            ("weather", &file.weather, &CONDITIONS[..]),
            ("time", &file.time, &PERIODS[..]),
        ] {
            for name in required {
                if !entries.contains_key(*name) {
                    return Err(src.error(None, format!("[{table}.{name}] is missing")));
                }
            }
            for (name, l) in entries {
                if !required.contains(&name.as_str()) {
                    return Err(src.error(
                        Some(l.span()),
                        format!("[{table}.{name}]: not one of {}", required.join(", ")),
                    ));
                }
                check_lines(
                    src,
                    l.span(),
                    &format!("{table}.{name}"),
                    &l.get_ref().lines,
                )?;
            }
        }
        p.weather = file
            .weather
            .into_iter()
            .map(|(k, v)| (k, v.into_inner().lines))
            .collect();
        p.time = file
            .time
            .into_iter()
            .map(|(k, v)| (k, v.into_inner().lines))
            .collect();
        if file.perspective.is_empty() {
            return Err(src.error(None, "at least one [perspective.<name>]"));
        }
        for (name, o) in &file.perspective {
            check_lines(
                src,
                o.span(),
                &format!("perspective.{name}"),
                &o.get_ref().opening,
            )?;
        }
        p.openings = file
            .perspective
            .into_iter()
            .map(|(k, v)| (k, v.into_inner().opening))
            .collect();
        Ok(p)
    }
}

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

fn pick(lines: &[String], seed: u64, salt: u64) -> Option<&str> {
    if lines.is_empty() {
        return None;
    }
    let mixed =
        (seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    Some(&lines[(mixed >> 33) as usize % lines.len()])
}

/// The description: sentences in a fixed order, as many whole ones as fit `max_words`.
pub fn compose(
    phrases: &Phrases,
    region_name: &str,
    biome: &str,
    condition: &str,
    period: &str,
    perspective: &str,
    max_words: usize,
) -> String {
    let s = seed(&[region_name, biome, condition, period, perspective]);
    let empty = Vec::new();
    let land = phrases.land.get(biome).unwrap_or(&empty);
    let candidates = [
        pick(phrases.openings.get(perspective).unwrap_or(&empty), s, 1),
        pick(phrases.time.get(period).unwrap_or(&empty), s, 2),
        pick(phrases.weather.get(condition).unwrap_or(&empty), s, 3),
        pick(land, s, 4),
        pick(phrases.sounds.get(biome).unwrap_or(&empty), s, 5),
        // More of the land while there is room, never the same line twice.
        pick(land, s, 6),
        pick(land, s, 7),
    ];
    let mut out: Vec<String> = Vec::new();
    let mut words = 0;
    for line in candidates.into_iter().flatten() {
        let line = line.replace("{region}", region_name);
        if out.contains(&line) {
            continue;
        }
        let n = line.split_whitespace().count();
        if words + n > max_words {
            if out.is_empty() {
                // Even the first sentence is too long: its first words.
                let cut: Vec<&str> = line.split_whitespace().take(max_words).collect();
                return format!("{}…", cut.join(" ").trim_end_matches([',', ';', '.']));
            }
            continue;
        }
        words += n;
        out.push(line);
    }
    out.join(" ")
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
        let code = weather?.weather.map_or(0, |w| w.condition);
        let condition = condition_label(code);
        let period = period(now?.hour);
        Ok(DescribeResponse {
            text: compose(
                &self.phrases,
                &region.name,
                &region.biome,
                condition,
                period,
                perspective,
                max_words,
            ),
            condition: code,
            time_of_day: period.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
