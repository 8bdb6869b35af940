//! The device tier table, `handlers/data/perf/tiers.toml`, validated.

use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source};

/// Tier names, lowest first; index + 1 is the proto's enum value.
pub const TIERS: [&str; 4] = ["low", "medium", "high", "ultra"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tier: Vec<Spanned<TierEntry>>,
    gpu: Vec<Spanned<GpuEntry>>,
    adapt: Spanned<Adapt>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierEntry {
    name: String,
    min_gpu_memory_mb: u32,
    min_cpu_cores: u32,
    min_memory_mb: u32,
    native_pixels: u64,
    max_fps: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuEntry {
    r#match: String,
    tier: String,
}

/// How reports move a player between tiers.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adapt {
    /// Over budget past `budget * this`.
    pub over_budget_margin: f64,
    /// Headroom under `budget * this`.
    pub headroom_margin: f64,
    /// Reports in a row over budget before stepping down.
    pub step_down_after: u32,
    /// Reports in a row with headroom before stepping up.
    pub step_up_after: u32,
    /// Reports after a change that change nothing.
    pub cooldown_reports: u32,
    /// Render scale step, percent.
    pub scale_step: u32,
    /// Scale reached before the tier drops.
    pub min_scale_before_tier: u32,
}

/// One tier's minimums and limits.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Its name.
    pub name: String,
    /// Minimum GPU memory.
    pub min_gpu_memory_mb: u32,
    /// Minimum CPU cores.
    pub min_cpu_cores: u32,
    /// Minimum memory.
    pub min_memory_mb: u32,
    /// Pixels rendered at 100%.
    pub native_pixels: u64,
    /// Highest frame rate it targets.
    pub max_fps: u32,
}

/// The table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Lowest first, as [`TIERS`].
    pub tiers: Vec<Tier>,
    /// (lowercase substring, tier index), first match wins.
    pub gpus: Vec<(String, usize)>,
    /// Adaptation.
    pub adapt: Adapt,
}

impl Content for Table {
    const SHIPPED: Embedded = crate::embedded!("perf/tiers.toml");

    /// Parses and validates.
    fn parse(src: &Source) -> Result<Table, DataError> {
        let file: File = src.toml()?;
        if file.tier.len() != TIERS.len() {
            return Err(src.error(
                None,
                format!("needs the {} tiers {TIERS:?}, lowest first", TIERS.len()),
            ));
        }
        let mut tiers: Vec<Tier> = Vec::new();
        for (i, t) in file.tier.iter().enumerate() {
            let e = t.get_ref();
            if e.name != TIERS[i] {
                return Err(src.error(
                    Some(t.span()),
                    format!("tier {} must be {:?} (tiers go {TIERS:?})", i + 1, TIERS[i]),
                ));
            }
            let below = tiers.last();
            if below.is_some_and(|prev| {
                e.min_gpu_memory_mb < prev.min_gpu_memory_mb
                    || e.min_cpu_cores < prev.min_cpu_cores
                    || e.min_memory_mb < prev.min_memory_mb
            }) {
                return Err(src.error(
                    Some(t.span()),
                    format!("tier {:?} asks less than the tier below it", e.name),
                ));
            }
            if e.native_pixels == 0 || !(10..=500).contains(&e.max_fps) {
                return Err(src.error(Some(t.span()), "native_pixels above 0, max_fps 10 to 500"));
            }
            tiers.push(Tier {
                name: e.name.clone(),
                min_gpu_memory_mb: e.min_gpu_memory_mb,
                min_cpu_cores: e.min_cpu_cores,
                min_memory_mb: e.min_memory_mb,
                native_pixels: e.native_pixels,
                max_fps: e.max_fps,
            });
        }
        let mut gpus = Vec::new();
        for g in &file.gpu {
            let e = g.get_ref();
            let tier = TIERS
                .iter()
                .position(|t| *t == e.tier)
                .ok_or_else(|| src.error(Some(g.span()), format!("no tier {:?}", e.tier)))?;
            if e.r#match.trim().is_empty() {
                return Err(src.error(Some(g.span()), "match must not be empty"));
            }
            gpus.push((e.r#match.trim().to_lowercase(), tier));
        }
        let a = *file.adapt.get_ref();
        let ok = a.over_budget_margin >= 1.0
            && a.headroom_margin > 0.0
            && a.headroom_margin < 1.0
            && a.step_down_after >= 1
            && a.step_up_after >= 1
            && (1..=50).contains(&a.scale_step)
            && (50..=100).contains(&a.min_scale_before_tier);
        if !ok {
            return Err(src.error(Some(file.adapt.span()), "[adapt]: over_budget_margin >= 1, headroom_margin 0 to 1, counts >= 1, scale_step 1 to 50, min_scale_before_tier 50 to 100"));
        }
        Ok(Table {
            tiers,
            gpus,
            adapt: a,
        })
    }
}
