//! The weather as a pure function of (seed, region, game hour): a Markov chain over conditions
//! per biome (from `handlers/data/weather/biomes.toml`), and a climate that turns a condition
//! and an hour into temperature, wind and precipitation.
//!
//! The chain is driven by one uniform draw per (seed, region, hour) from SplitMix64 (written
//! here, so its output never changes with a crate version). The condition at hour `h` is found
//! by coupling from the past: every start state is run forward from `h - L` on the same draws
//! until all agree at `h` (doubling `L`). That is exactly the state of the chain that has been
//! running forever, so `condition(h + 1)` is one step from `condition(h)`, with no need to
//! replay from hour 0, on every replica, after any restart.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source};

/// The conditions, in the order of the data file's rows and the proto's enum (1-based there).
pub const CONDITIONS: [&str; 6] = ["clear", "cloudy", "rain", "storm", "snow", "fog"];
const N: usize = CONDITIONS.len();
/// Furthest back the coupling looks before giving up and starting from "clear".
const MAX_LOOKBACK: i64 = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    conditions: Spanned<Vec<String>>,
    condition: BTreeMap<String, Spanned<ConditionEntry>>,
    biome: BTreeMap<String, Spanned<BiomeEntry>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ConditionEntry {
    temperature_offset_c: f64,
    wind_mps: [f64; 2],
    precipitation: [f64; 2],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BiomeEntry {
    base_temperature_c: f64,
    season_amplitude_c: f64,
    day_amplitude_c: f64,
    windiness: f64,
    transitions: Vec<Spanned<Vec<f64>>>,
}

/// What a condition does to the numbers.
#[derive(Debug, Clone)]
pub struct ConditionClimate {
    /// Added to the temperature.
    pub temperature_offset_c: f64,
    /// Wind range, m/s, before the biome's windiness.
    pub wind_mps: [f64; 2],
    /// Precipitation range, 0 to 1.
    pub precipitation: [f64; 2],
}

/// One biome's chain and climate.
#[derive(Debug, Clone)]
pub struct Biome {
    /// Mean temperature over the year.
    pub base_temperature_c: f64,
    /// Half the swing between midwinter and midsummer.
    pub season_amplitude_c: f64,
    /// Half the swing between night and afternoon.
    pub day_amplitude_c: f64,
    /// Wind multiplier.
    pub windiness: f64,
    /// Cumulative rows: `cdf[from][to]`.
    cdf: [[f64; N]; N],
}

/// All biomes and conditions.
#[derive(Debug, Clone)]
pub struct Climate {
    /// By biome name.
    pub biomes: BTreeMap<String, Biome>,
    /// By condition index.
    pub conditions: Vec<ConditionClimate>,
}

/// One hour's weather, before it is a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hour {
    /// Index into [`CONDITIONS`].
    pub condition: usize,
    /// °C, one decimal.
    pub temperature_c: f64,
    /// m/s, one decimal.
    pub wind_mps: f64,
    /// 0 to 1, two decimals.
    pub precipitation: f64,
}

impl Climate {
    /// The weather of `region` (of `biome`) in game hour `hour`.
    pub fn hour(&self, seed: u64, region: &str, biome: &Biome, hour: i64) -> Hour {
        self.hour_with(
            seed,
            region,
            biome,
            hour,
            condition(seed, region, biome, hour),
        )
    }

    /// The numbers of an hour with a given condition (an override's).
    pub fn hour_with(
        &self,
        seed: u64,
        region: &str,
        biome: &Biome,
        hour: i64,
        cond: usize,
    ) -> Hour {
        let c = &self.conditions[cond];
        let day = hour.div_euclid(24);
        let hod = hour.rem_euclid(24) as f64;
        let tau = std::f64::consts::TAU;
        let season = (tau * ((day.rem_euclid(360)) as f64 - 100.0) / 360.0).sin();
        let daily = (tau * (hod - 15.0) / 24.0).cos();
        let jitter = unit(seed, region, hour, 1) * 2.0 - 1.0;
        let temperature = biome.base_temperature_c
            + biome.season_amplitude_c * season
            + biome.day_amplitude_c * daily
            + c.temperature_offset_c
            + jitter;
        let lerp = |r: [f64; 2], u: f64| r[0] + (r[1] - r[0]) * u;
        Hour {
            condition: cond,
            temperature_c: (temperature * 10.0).round() / 10.0,
            wind_mps: (lerp(c.wind_mps, unit(seed, region, hour, 2)) * biome.windiness * 10.0)
                .round()
                / 10.0,
            precipitation: (lerp(c.precipitation, unit(seed, region, hour, 3)) * 100.0).round()
                / 100.0,
        }
    }
}

impl Content for Climate {
    const SHIPPED: Embedded = crate::embedded!("weather/biomes.toml");

    /// Parses and validates: rows that do not sum to 1 are refused, naming their line.
    fn parse(src: &Source) -> Result<Climate, DataError> {
        let file: File = src.toml()?;
        if file.conditions.get_ref() != &CONDITIONS {
            return Err(src.error(
                Some(file.conditions.span()),
                format!("conditions must be exactly {CONDITIONS:?} (the rows' order)"),
            ));
        }
        let mut conditions = Vec::new();
        for name in CONDITIONS {
            let c = file
                .condition
                .get(name)
                .ok_or_else(|| src.error(None, format!("missing [condition.{name}]")))?;
            let e = c.get_ref();
            let ok = e.temperature_offset_c.is_finite()
                && e.wind_mps[0] >= 0.0
                && e.wind_mps[0] <= e.wind_mps[1]
                && e.wind_mps[1] <= 80.0
                && (0.0..=1.0).contains(&e.precipitation[0])
                && e.precipitation[0] <= e.precipitation[1]
                && e.precipitation[1] <= 1.0;
            if !ok {
                return Err(src.error(
                    Some(c.span()),
                    format!("[condition.{name}]: ranges must be [low, high], wind 0 to 80, precipitation 0 to 1"),
                ));
            }
            conditions.push(ConditionClimate {
                temperature_offset_c: e.temperature_offset_c,
                wind_mps: e.wind_mps,
                precipitation: e.precipitation,
            });
        }
        if let Some(extra) = file
            .condition
            .iter()
            .find(|(k, _)| !CONDITIONS.contains(&k.as_str()))
        {
            return Err(src.error(
                Some(extra.1.span()),
                format!("unknown condition {:?}", extra.0),
            ));
        }
        let mut biomes = BTreeMap::new();
        for (name, b) in &file.biome {
            let e = b.get_ref();
            let numbers = [
                e.base_temperature_c,
                e.season_amplitude_c,
                e.day_amplitude_c,
                e.windiness,
            ];
            if numbers.iter().any(|v| !v.is_finite())
                || e.season_amplitude_c < 0.0
                || e.day_amplitude_c < 0.0
                || !(0.0..=5.0).contains(&e.windiness)
            {
                return Err(src.error(
                    Some(b.span()),
                    format!("[biome.{name}]: amplitudes must be >= 0 and windiness 0 to 5"),
                ));
            }
            if e.transitions.len() != N {
                return Err(src.error(
                    Some(b.span()),
                    format!(
                        "[biome.{name}]: transitions needs {N} rows, one per condition; it has {}",
                        e.transitions.len()
                    ),
                ));
            }
            let mut cdf = [[0.0; N]; N];
            for (from, row) in e.transitions.iter().enumerate() {
                let values = row.get_ref();
                if values.len() != N || values.iter().any(|p| !(0.0..=1.0).contains(p)) {
                    return Err(src.error(
                        Some(row.span()),
                        format!(
                            "[biome.{name}] row {:?}: needs {N} chances, each 0 to 1",
                            CONDITIONS[from]
                        ),
                    ));
                }
                let sum: f64 = values.iter().sum();
                if (sum - 1.0).abs() > 1e-6 {
                    return Err(src.error(
                        Some(row.span()),
                        format!(
                            "[biome.{name}] row {:?} sums to {sum}, not 1",
                            CONDITIONS[from]
                        ),
                    ));
                }
                let mut acc = 0.0;
                for (to, p) in values.iter().enumerate() {
                    acc += p;
                    cdf[from][to] = acc;
                }
                cdf[from][N - 1] = 1.0;
            }
            biomes.insert(
                name.clone(),
                Biome {
                    base_temperature_c: e.base_temperature_c,
                    season_amplitude_c: e.season_amplitude_c,
                    day_amplitude_c: e.day_amplitude_c,
                    windiness: e.windiness,
                    cdf,
                },
            );
        }
        Ok(Climate { biomes, conditions })
    }
}

/// The chain's state at `hour`, by coupling from the past.
pub fn condition(seed: u64, region: &str, biome: &Biome, hour: i64) -> usize {
    let mut back = 8;
    while back <= MAX_LOOKBACK {
        let mut states: [usize; N] = std::array::from_fn(|i| i);
        for h in (hour - back + 1)..=hour {
            let u = unit(seed, region, h, 0);
            for s in &mut states {
                *s = step(biome, *s, u);
            }
        }
        if states.iter().all(|s| *s == states[0]) {
            return states[0];
        }
        back *= 2;
    }
    // A chain that never forgets its start (a designer's identity matrix): start clear.
    let mut s = 0;
    for h in (hour - MAX_LOOKBACK + 1)..=hour {
        s = step(biome, s, unit(seed, region, h, 0));
    }
    s
}

fn step(biome: &Biome, from: usize, u: f64) -> usize {
    biome.cdf[from].iter().position(|c| u < *c).unwrap_or(N - 1)
}

/// A uniform draw in [0, 1) for (seed, region, hour, stream): SplitMix64 over the inputs.
pub fn unit(seed: u64, region: &str, hour: i64, stream: u64) -> f64 {
    let mut x = seed ^ fnv1a(region);
    x = splitmix(x ^ (hour as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x = splitmix(x ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
