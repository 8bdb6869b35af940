//! `aicore.npc.v1.NpcService`: NPCs' needs and mood, and a utility-based choice of action
//! ([`model`]). An NPC's state, `npc.state.<id>`, holds its needs and mood at a game time; they
//! drift from there by the archetype's rates, computed when read (no ticking task), with game
//! time from the time service. Writes are compare-and-set.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod content;

use std::sync::Arc;

use bytes::Bytes;
use proto::aicore::npc::v1::{
    ActionScore, DecideRequest, DecideResponse, GetNpcRequest, GetNpcResponse, Needs, Npc,
    NpcServiceHandler, PerceiveRequest, PerceiveResponse,
};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use serde::{Deserialize, Serialize};

pub use content::Catalog;
use content::{Archetype, NeedValues, NpcDef, score};

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Most stimuli in one `Perceive`.
pub const MAX_STIMULI: usize = 16;
const HOUR_MS: f64 = 3_600_000.0;

/// What is stored: the state at `at_game_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Needs then.
    pub needs: NeedValues,
    /// Mood then.
    pub mood: f64,
    /// What it is doing.
    pub current_action: String,
    /// Game time of these values.
    pub at_game_ms: i64,
}

impl State {
    /// The state at `game_ms`: needs drift by the rates, mood returns toward its baseline.
    pub fn at(&self, arch: &Archetype, game_ms: i64) -> State {
        let hours = (game_ms.saturating_sub(self.at_game_ms)).max(0) as f64 / HOUR_MS;
        let mut needs = self.needs;
        for (n, rate) in needs.iter_mut().zip(arch.rates) {
            *n = (*n + rate * hours).clamp(0.0, 1.0);
        }
        let decay = 0.5_f64.powf(hours / arch.mood_half_life_hours);
        State {
            needs,
            mood: (arch.mood_baseline + (self.mood - arch.mood_baseline) * decay).clamp(-1.0, 1.0),
            current_action: self.current_action.clone(),
            at_game_ms: game_ms.max(self.at_game_ms),
        }
    }
}

/// The service.
pub struct NpcService {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    time: TimeServiceClient<Caller>,
}

fn key(id: &str) -> String {
    format!("npc.state.{id}")
}

impl NpcService {
    /// The service; `caller` is the npc service's.
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>, caller: Caller) -> Self {
        NpcService {
            store,
            catalog,
            time: TimeServiceClient(caller),
        }
    }

    fn def(&self, id: &str) -> Result<(&NpcDef, &Archetype), Status> {
        let def = self
            .catalog
            .npcs
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no NPC {id:?}")))?;
        let arch = self
            .catalog
            .archetypes
            .get(&def.archetype)
            .ok_or_else(|| Status::internal(format!("NPC {id} has no archetype")))?;
        Ok((def, arch))
    }

    /// The NPC's state now, and its stored version. An NPC seen for the first time starts from
    /// its archetype at this game time, recorded so that its needs drift from then on.
    async fn load(&self, ctx: &Context, id: &str) -> Result<(State, u64), Status> {
        let (_, arch) = self.def(id)?;
        let now = self
            .time
            .now(ctx.outgoing(), NowRequest {})
            .await?
            .game_time_ms;
        loop {
            if let Some(v) = self.store.get(&key(id)).await? {
                let s: State = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("npc state: {e}")))?;
                return Ok((s.at(arch, now), v.version));
            }
            let first = State {
                needs: arch.needs,
                mood: arch.mood_baseline,
                current_action: String::new(),
                at_game_ms: now,
            };
            match self.save(id, &first, 0).await {
                Ok(version) => return Ok((first, version)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn save(&self, id: &str, state: &State, version: u64) -> Result<u64, StoreError> {
        let bytes = serde_json::to_vec(state).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.store
            .put(&key(id), Bytes::from(bytes), Some(version))
            .await
    }

    fn to_proto(&self, id: &str, s: &State, version: u64) -> Result<Npc, Status> {
        let (def, arch) = self.def(id)?;
        let r = |v: f64| (v * 1e6).round() / 1e6;
        Ok(Npc {
            id: def.id.clone(),
            name: def.name.clone(),
            needs: Some(Needs {
                hunger: r(s.needs[0]),
                rest: r(s.needs[1]),
                social: r(s.needs[2]),
                safety: r(s.needs[3]),
            }),
            mood: r(s.mood),
            current_action: s.current_action.clone(),
            version,
            archetype: arch.id.clone(),
        })
    }
}

impl NpcServiceHandler for NpcService {
    type Context = Context;
    type Error = Status;

    async fn get_npc(&self, ctx: Context, req: GetNpcRequest) -> Result<GetNpcResponse, Status> {
        let (state, version) = self.load(&ctx, &req.npc_id).await?;
        Ok(GetNpcResponse {
            npc: Some(self.to_proto(&req.npc_id, &state, version)?),
        })
    }

    async fn perceive(
        &self,
        ctx: Context,
        req: PerceiveRequest,
    ) -> Result<PerceiveResponse, Status> {
        self.def(&req.npc_id)?;
        if req.stimuli.is_empty() || req.stimuli.len() > MAX_STIMULI {
            return Err(Status::invalid_argument(format!(
                "stimuli: 1 to {MAX_STIMULI}"
            )));
        }
        let mut effects = Vec::new();
        for s in &req.stimuli {
            let effect = self.catalog.stimuli.get(&s.kind).ok_or_else(|| {
                let known: Vec<&str> = self.catalog.stimuli.keys().map(String::as_str).collect();
                Status::invalid_argument(format!(
                    "unknown stimulus {:?}; known: {}",
                    s.kind,
                    known.join(", ")
                ))
            })?;
            if !(s.intensity.is_finite() && (0.0..=1.0).contains(&s.intensity)) {
                return Err(Status::invalid_argument("intensity must be 0 to 1"));
            }
            effects.push((*effect, s.intensity));
        }
        for _ in 0..8 {
            let (mut state, version) = self.load(&ctx, &req.npc_id).await?;
            for (effect, intensity) in &effects {
                for (n, d) in state.needs.iter_mut().zip(effect.needs) {
                    *n = (*n + d * intensity).clamp(0.0, 1.0);
                }
                state.mood = (state.mood + effect.mood * intensity).clamp(-1.0, 1.0);
            }
            match self.save(&req.npc_id, &state, version).await {
                Ok(v) => {
                    return Ok(PerceiveResponse {
                        npc: Some(self.to_proto(&req.npc_id, &state, v)?),
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("the NPC kept changing; retry"))
    }

    async fn decide(&self, ctx: Context, req: DecideRequest) -> Result<DecideResponse, Status> {
        self.def(&req.npc_id)?;
        let candidates: Vec<&content::Action> = if req.candidate_actions.is_empty() {
            self.catalog.actions.iter().collect()
        } else {
            req.candidate_actions
                .iter()
                .map(|a| {
                    self.catalog
                        .action(a)
                        .ok_or_else(|| Status::invalid_argument(format!("unknown action {a:?}")))
                })
                .collect::<Result<_, _>>()?
        };
        for _ in 0..8 {
            let (mut state, version) = self.load(&ctx, &req.npc_id).await?;
            let mut scores: Vec<ActionScore> = candidates
                .iter()
                .map(|a| ActionScore {
                    action: a.id.clone(),
                    utility: score(
                        a,
                        &state.needs,
                        state.mood,
                        a.id == state.current_action,
                        self.catalog.commitment,
                    ),
                })
                .collect();
            scores.sort_by(|a, b| {
                b.utility
                    .total_cmp(&a.utility)
                    .then_with(|| a.action.cmp(&b.action))
            });
            scores.dedup_by(|a, b| a.action == b.action);
            let chosen = scores
                .first()
                .filter(|s| s.utility > 0.0)
                .map_or_else(String::new, |s| s.action.clone());
            if chosen == state.current_action {
                return Ok(DecideResponse {
                    action: chosen,
                    scores,
                });
            }
            state.current_action = chosen.clone();
            match self.save(&req.npc_id, &state, version).await {
                Ok(_) => {
                    return Ok(DecideResponse {
                        action: chosen,
                        scores,
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("the NPC kept changing; retry"))
    }
}

#[cfg(test)]
mod tests;
