//! `aicore.perf.v1.PerformanceService`: a quality tier from device capabilities ([`table`]),
//! adapted per player and device model from reported frame times, with hysteresis. The adapted
//! state lives at `perf.state.<player>.<device>`; an operator's override for a device model at
//! `perf.override.<device>` wins until removed.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod content;

use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::perf::v1::{
    Device, PerformanceServiceHandler, RecommendRequest, RecommendResponse,
    ReportFrameStatsRequest, ReportFrameStatsResponse, SetOverrideRequest, SetOverrideResponse,
    Tier as ProtoTier,
};
use serde::{Deserialize, Serialize};

pub use content::Table;
use content::{Adapt, TIERS};

use crate::kit::context::{Context, Principal};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Lowest render scale, percent.
pub const MIN_SCALE: u32 = 50;
/// Device models remembered per player: a new one evicts the one reported least recently, so a
/// client naming a new model with every report cannot grow the store.
pub const MAX_DEVICES: usize = 8;

/// One player's adapted settings on one device model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adaptive {
    /// Index into [`TIERS`].
    pub tier: usize,
    /// Render scale, percent.
    pub scale: u32,
    /// The highest tier the device may reach (its capability tier).
    pub max_tier: usize,
    /// The device's full render scale at each tier (its resolution against the tier's
    /// native pixels).
    pub full_scale: [u32; 4],
    /// Frames per second aimed at.
    pub target_fps: u32,
    /// Reports in a row over budget.
    pub over: u32,
    /// Reports in a row with headroom.
    pub headroom: u32,
    /// Reports left in the cooldown.
    pub cooldown: u32,
}

impl Adaptive {
    /// Takes one report's p95 frame time; returns why it changed, if it did.
    pub fn report(&mut self, p95_ms: f64, a: &Adapt) -> Option<String> {
        let budget = 1000.0 / f64::from(self.target_fps.max(1));
        if self.cooldown > 0 {
            self.cooldown -= 1;
            self.over = 0;
            self.headroom = 0;
            return None;
        }
        if p95_ms > budget * a.over_budget_margin {
            self.over += 1;
            self.headroom = 0;
        } else if p95_ms < budget * a.headroom_margin {
            self.headroom += 1;
            self.over = 0;
        } else {
            self.over = 0;
            self.headroom = 0;
        }
        let changed = if self.over >= a.step_down_after {
            self.step_down(a)
        } else if self.headroom >= a.step_up_after {
            self.step_up(a)
        } else {
            None
        };
        if changed.is_some() {
            self.over = 0;
            self.headroom = 0;
            self.cooldown = a.cooldown_reports;
        }
        changed
    }

    fn step_down(&mut self, a: &Adapt) -> Option<String> {
        let floor = if self.tier > 0 {
            a.min_scale_before_tier
        } else {
            MIN_SCALE
        };
        if self.scale > floor {
            self.scale = self.scale.saturating_sub(a.scale_step).max(floor);
            Some(format!(
                "frames over budget: render scale lowered to {}%",
                self.scale
            ))
        } else if self.tier > 0 {
            self.tier -= 1;
            self.scale = self.full_scale[self.tier];
            Some(format!(
                "frames over budget: tier lowered to {}",
                TIERS[self.tier]
            ))
        } else {
            None
        }
    }

    fn step_up(&mut self, a: &Adapt) -> Option<String> {
        let full = self.full_scale[self.tier];
        if self.scale < full {
            self.scale = (self.scale + a.scale_step).min(full);
            Some(format!("headroom: render scale raised to {}%", self.scale))
        } else if self.tier < self.max_tier {
            self.tier += 1;
            // Up a tier at a reduced scale; headroom raises it from there.
            self.scale = self.full_scale[self.tier]
                .min(a.min_scale_before_tier)
                .max(MIN_SCALE);
            Some(format!(
                "headroom: tier raised to {} at {}% scale",
                TIERS[self.tier], self.scale
            ))
        } else {
            None
        }
    }
}

/// A device model as a key segment: its lowercase letters and digits, and a hash of the rest.
pub fn model_key(model: &str) -> String {
    let slug: String = model
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    let hash = model.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{slug}-{:08x}", hash as u32)
}

/// The service.
pub struct PerfService {
    store: Arc<dyn Store>,
    table: Arc<Table>,
}

fn validate(device: Option<&Device>) -> Result<&Device, Status> {
    let d = device.ok_or_else(|| Status::invalid_argument("device is required"))?;
    if d.model.trim().is_empty() || d.model.len() > 128 || d.gpu.len() > 128 {
        return Err(Status::invalid_argument(
            "device.model is required (at most 128 bytes; gpu too)",
        ));
    }
    Ok(d)
}

fn tier_enum(i: usize) -> i32 {
    match i {
        0 => ProtoTier::Low as i32,
        1 => ProtoTier::Medium as i32,
        2 => ProtoTier::High as i32,
        _ => ProtoTier::Ultra as i32,
    }
}

impl PerfService {
    /// The service.
    pub fn new(store: Arc<dyn Store>, table: Arc<Table>) -> Self {
        PerfService { store, table }
    }

    /// The device's tier from the table, and why.
    pub fn capability(&self, d: &Device) -> (usize, String) {
        let gpu = d.gpu.to_lowercase();
        if let Some((m, tier)) = self
            .table
            .gpus
            .iter()
            .find(|(m, _)| gpu.contains(m.as_str()))
        {
            return (*tier, format!("known GPU ({m}): {}", TIERS[*tier]));
        }
        let tier = self
            .table
            .tiers
            .iter()
            .rposition(|t| {
                d.gpu_memory_mb >= t.min_gpu_memory_mb
                    && d.cpu_cores >= t.min_cpu_cores
                    && d.memory_mb >= t.min_memory_mb
            })
            .unwrap_or(0);
        (
            tier,
            format!(
                "{} MB GPU memory, {} cores, {} MB memory meet {}",
                d.gpu_memory_mb, d.cpu_cores, d.memory_mb, TIERS[tier]
            ),
        )
    }

    fn scale_for(&self, tier: usize, d: &Device) -> u32 {
        let pixels = u64::from(d.display_width) * u64::from(d.display_height);
        let native = self.table.tiers[tier].native_pixels;
        if pixels <= native || pixels == 0 {
            return 100;
        }
        let s = ((native as f64 / pixels as f64).sqrt() * 100.0 / 5.0).floor() * 5.0;
        (s as u32).clamp(MIN_SCALE, 100)
    }

    fn target_fps(&self, tier: usize, wanted: u32, d: &Device) -> u32 {
        let want = match (wanted, d.refresh_rate_hz) {
            (0, 0) => 60,
            (0, r) => r,
            (w, _) => w,
        };
        want.clamp(10, self.table.tiers[tier].max_fps)
    }

    async fn override_for(&self, model: &str) -> Result<Option<usize>, Status> {
        Ok(self
            .store
            .get(&format!("perf.override.{}", model_key(model)))
            .await?
            .and_then(|v| std::str::from_utf8(&v.value).ok()?.parse().ok())
            .filter(|t: &usize| *t < TIERS.len()))
    }

    fn state_key(player: &str, model: &str) -> String {
        format!("perf.state.{player}.{}", model_key(model))
    }

    /// Makes room for one more device model of `player`: while it has [`MAX_DEVICES`] or more,
    /// the least recently written goes (versions are store-wide and only grow).
    async fn make_room(&self, player: &str) -> Result<(), Status> {
        let prefix = format!("perf.state.{player}.");
        let page = self.store.list(&prefix, None, MAX_DEVICES * 2).await?;
        let mut held: Vec<(String, u64)> = page
            .entries
            .into_iter()
            .map(|(k, v)| (k, v.version))
            .collect();
        held.sort_by_key(|(_, version)| *version);
        let over = (held.len() + 1).saturating_sub(MAX_DEVICES);
        for (key, version) in held.into_iter().take(over) {
            match self.store.delete(&key, Some(version)).await {
                // Reported again meanwhile: it is no longer the oldest, and that is fine.
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn adapted(&self, player: &str, model: &str) -> Result<Option<(Adaptive, u64)>, Status> {
        Ok(
            match self.store.get(&Self::state_key(player, model)).await? {
                Some(v) => Some((
                    serde_json::from_slice(&v.value)
                        .map_err(|e| Status::internal(format!("perf state: {e}")))?,
                    v.version,
                )),
                None => None,
            },
        )
    }
}

impl PerformanceServiceHandler for PerfService {
    type Context = Context;
    type Error = Status;

    async fn recommend(
        &self,
        ctx: Context,
        req: RecommendRequest,
    ) -> Result<RecommendResponse, Status> {
        let d = validate(req.device.as_ref())?;
        if let Some(tier) = self.override_for(&d.model).await? {
            return Ok(RecommendResponse {
                tier: tier_enum(tier),
                render_scale_percent: self.scale_for(tier, d),
                target_fps: self.target_fps(tier, req.target_fps, d),
                reason: format!("operator override for {}", d.model),
            });
        }
        let adapted = match &ctx.principal {
            Some(Principal::Player { player_id }) => self.adapted(player_id, &d.model).await?,
            _ => None,
        };
        if let Some((state, _)) = adapted {
            return Ok(RecommendResponse {
                tier: tier_enum(state.tier),
                render_scale_percent: state.scale,
                target_fps: state.target_fps,
                reason: "adapted to this device's reported frame times".into(),
            });
        }
        let (tier, reason) = self.capability(d);
        Ok(RecommendResponse {
            tier: tier_enum(tier),
            render_scale_percent: self.scale_for(tier, d),
            target_fps: self.target_fps(tier, req.target_fps, d),
            reason,
        })
    }

    async fn report_frame_stats(
        &self,
        ctx: Context,
        req: ReportFrameStatsRequest,
    ) -> Result<ReportFrameStatsResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let d = validate(req.device.as_ref())?;
        for v in [req.average_frame_ms, req.p95_frame_ms] {
            if !(v.is_finite() && v > 0.0 && v <= 10_000.0) {
                return Err(Status::invalid_argument(
                    "frame times must be above 0 and at most 10000 ms",
                ));
            }
        }
        if let Some(tier) = self.override_for(&d.model).await? {
            return Ok(ReportFrameStatsResponse {
                tier: tier_enum(tier),
                adjusted: false,
                reason: format!("operator override for {}", d.model),
                render_scale_percent: self.scale_for(tier, d),
            });
        }
        for _ in 0..8 {
            let (mut state, version) = match self.adapted(&player, &d.model).await? {
                Some(found) => found,
                None => {
                    let (max_tier, _) = self.capability(d);
                    // The client's current tier, if it is one the device may run.
                    let tier = match ProtoTier::try_from(req.current_tier) {
                        Ok(ProtoTier::Unspecified) | Err(_) => max_tier,
                        Ok(t) => (t as usize - 1).min(max_tier),
                    };
                    (
                        Adaptive {
                            tier,
                            scale: self.scale_for(tier, d),
                            max_tier,
                            full_scale: [0, 1, 2, 3].map(|t| self.scale_for(t, d)),
                            target_fps: self.target_fps(tier, 0, d),
                            over: 0,
                            headroom: 0,
                            cooldown: 0,
                        },
                        0,
                    )
                }
            };
            if version == 0 {
                self.make_room(&player).await?;
            }
            let reason = state.report(req.p95_frame_ms, &self.table.adapt);
            let bytes = serde_json::to_vec(&state).map_err(|e| Status::internal(e.to_string()))?;
            match self
                .store
                .put(
                    &Self::state_key(&player, &d.model),
                    Bytes::from(bytes),
                    Some(version),
                )
                .await
            {
                Ok(_) => {
                    return Ok(ReportFrameStatsResponse {
                        tier: tier_enum(state.tier),
                        adjusted: reason.is_some(),
                        reason: reason.unwrap_or_else(|| "no change".into()),
                        render_scale_percent: state.scale,
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted(
            "reports for this device kept racing; retry",
        ))
    }

    async fn set_override(
        &self,
        _ctx: Context,
        req: SetOverrideRequest,
    ) -> Result<SetOverrideResponse, Status> {
        if req.device_model.trim().is_empty() || req.device_model.len() > 128 {
            return Err(Status::invalid_argument(
                "deviceModel is required (at most 128 bytes)",
            ));
        }
        let key = format!("perf.override.{}", model_key(&req.device_model));
        match ProtoTier::try_from(req.tier) {
            Ok(ProtoTier::Unspecified) => {
                self.store.delete(&key, None).await?;
            }
            Ok(t) => {
                self.store
                    .put(&key, Bytes::from((t as usize - 1).to_string()), None)
                    .await?;
            }
            Err(_) => return Err(Status::invalid_argument("tier is not a tier")),
        }
        Ok(SetOverrideResponse {})
    }
}

#[cfg(test)]
mod tests;
