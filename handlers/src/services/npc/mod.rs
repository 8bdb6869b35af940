//! `aicore.npc.v1.NpcService`: NPCs' needs and mood, and a utility-based choice of action
//! ([`model`]). An NPC's state, `npc.state.<id>`, holds its needs and mood at a game time; they
//! drift from there by the archetype's rates, computed when read (no ticking task), with game
//! time from the time service. Writes are compare-and-set.
//!
//! May import: `proto`, `crate::kit`, and the `llm` service's grounding and retrieval (see
//! `crate::services`).

pub mod content;
mod localized;
mod mood;
mod push;
pub mod talk;
mod utility;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use proto::BoxStream;
use proto::aicore::events::v1::EventBusServiceClient;
use proto::aicore::kb::v1::KnowledgeBaseServiceClient;
use proto::aicore::llm::v1::{InferRequest, LlmServiceClient};
use proto::aicore::npc::v1::{
    ActionScore, DecideRequest, DecideResponse, GetNpcRequest, GetNpcResponse, GiftRequest,
    GiftResponse, InteractRequest, InteractResponse, InteractionKind, ListNpcsRequest,
    ListNpcsResponse, MoodEffect, Needs, Npc, NpcServiceHandler, NpcSummary, PerceiveRequest,
    PerceiveResponse, Position, TalkRequest, TalkResponse,
};
use proto::aicore::payment::v1::{ConsumeRequest, PaymentServiceClient};
use proto::aicore::quest::v1::{AdvanceRequest, QuestServiceClient};
use proto::aicore::time::v1::{NowRequest, NowResponse, TimeServiceClient};
use proto::aicore::weather::v1::{CurrentRequest, WeatherServiceClient};
use proto::aicore::world::v1::{GetRegionRequest, WorldServiceClient};

pub use content::Catalog;
use content::{Archetype, NpcDef};
pub use mood::{Outcome, State, approach, mood_label};
use utility::score;

use crate::kit::calls::Caller;
use crate::kit::content::seed;
use crate::kit::context::Context;
use crate::kit::status::{Code, Status};
use crate::kit::store::{Store, StoreError};

/// Most stimuli in one `Perceive`.
pub const MAX_STIMULI: usize = 16;
/// Most items in one gift.
pub const MAX_GIFT: u32 = 99;
/// Compare-and-set attempts before `aborted`.
const ATTEMPTS: usize = 8;

/// The service.
pub struct NpcService {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    time: TimeServiceClient<Caller>,
    llm: LlmServiceClient<Caller>,
    kb: KnowledgeBaseServiceClient<Caller>,
    quest: QuestServiceClient<Caller>,
    payment: PaymentServiceClient<Caller>,
    world: WorldServiceClient<Caller>,
    events: EventBusServiceClient<Caller>,
    weather: WeatherServiceClient<Caller>,
    /// Tokens of lore in one answer's prompt.
    lore_budget: u32,
    /// What players read of NPCs, in their language.
    localized: localized::Localized,
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
            time: TimeServiceClient(caller.clone()),
            llm: LlmServiceClient(caller.clone()),
            kb: KnowledgeBaseServiceClient(caller.clone()),
            quest: QuestServiceClient(caller.clone()),
            payment: PaymentServiceClient(caller.clone()),
            world: WorldServiceClient(caller.clone()),
            events: EventBusServiceClient(caller.clone()),
            weather: WeatherServiceClient(caller.clone()),
            lore_budget: crate::services::llm::retrieval::DEFAULT_BUDGET,
            localized: localized::Localized::new(caller),
        }
    }

    /// The service with `tokens` of lore in a talk's prompt (0: none).
    #[must_use]
    pub fn with_lore_budget(mut self, tokens: u32) -> Self {
        self.lore_budget = tokens;
        self
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
        let now = self.now(ctx).await?.game_time_ms;
        self.load_at(id, now).await
    }

    async fn now(&self, ctx: &Context) -> Result<NowResponse, Status> {
        self.time.now(ctx.outgoing(), NowRequest {}).await
    }

    async fn load_at(&self, id: &str, now: i64) -> Result<(State, u64), Status> {
        let (_, arch) = self.def(id)?;
        loop {
            if let Some(v) = self.store.get(&key(id)).await? {
                let s: State = serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("npc state: {e}")))?;
                return Ok((s.at(arch, now), v.version));
            }
            let first = State::fresh(arch, now);
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
        let r = round;
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

    /// Applies a stimulus `player` caused (`key`: their Idempotency-Key, remembered so a retry
    /// changes nothing twice), by compare-and-set. Returns what it did, the state after and its
    /// version.
    async fn stimulate(
        &self,
        ctx: &Context,
        id: &str,
        now: i64,
        player: &str,
        kind: &str,
        key: Option<&str>,
    ) -> Result<(Outcome, State, u64), Status> {
        let effect = *self
            .catalog
            .stimuli
            .get(kind)
            .ok_or_else(|| Status::internal(format!("stimulus {kind} is not in the data")))?;
        for _ in 0..ATTEMPTS {
            let (mut state, version) = self.load_at(id, now).await?;
            if let Some(done) = key.and_then(|k| state.recalled(player, k)) {
                return Ok((done, state, version));
            }
            let before = state.clone();
            let outcome = state.apply_player(&effect, 1.0, player, self.catalog.influence_cap);
            if let Some(k) = key {
                state.remember(player, k, outcome);
            }
            match self.save(id, &state, version).await {
                Ok(v) => {
                    self.announce(ctx, Some(player), id, (&before, &state), v)
                        .await;
                    return Ok((outcome, state, v));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Status::aborted("the NPC kept changing; retry"))
    }

    fn summary(&self, def: &NpcDef, arch: &Archetype, state: &State) -> NpcSummary {
        NpcSummary {
            id: def.id.clone(),
            name: def.name.clone(),
            archetype: arch.id.clone(),
            region_id: def.region.clone(),
            position: Some(Position {
                x: def.position[0],
                y: def.position[1],
                z: def.position[2],
            }),
            description: def.description().to_owned(),
            mood: round(state.mood),
            mood_label: mood_label(state.mood).into(),
        }
    }
}

fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn effect(outcome: Outcome, state: &State) -> MoodEffect {
    MoodEffect {
        mood_delta: round(outcome.mood_delta),
        limited: outcome.limited,
        mood: round(state.mood),
        mood_label: mood_label(state.mood).into(),
    }
}

/// The client's Idempotency-Key, which a gift needs.
fn client_key(ctx: &Context) -> Result<&str, Status> {
    match ctx.idempotency_key.as_deref() {
        Some(k) if !k.is_empty() && k.len() <= 128 => Ok(k),
        _ => Err(Status::invalid_argument(
            "an Idempotency-Key of 1 to 128 characters is required",
        )),
    }
}

impl NpcServiceHandler for NpcService {
    type Context = Context;
    type Error = Status;

    async fn get_npc(&self, ctx: Context, req: GetNpcRequest) -> Result<GetNpcResponse, Status> {
        let (state, version) = self.load(&ctx, &req.npc_id).await?;
        let reader = self.localized.reader(&ctx).await;
        let npc = localized::npc(self.to_proto(&req.npc_id, &state, version)?, &reader);
        Ok(GetNpcResponse {
            npc: Some(npc),
            locale: reader.locale().to_owned(),
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
        for _ in 0..ATTEMPTS {
            let (mut state, version) = self.load(&ctx, &req.npc_id).await?;
            let before = state.clone();
            for (effect, intensity) in &effects {
                state.apply(effect, *intensity);
            }
            match self.save(&req.npc_id, &state, version).await {
                Ok(v) => {
                    self.announce(&ctx, None, &req.npc_id, (&before, &state), v)
                        .await;
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
        for _ in 0..ATTEMPTS {
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
            let before = state.clone();
            state.current_action = chosen.clone();
            match self.save(&req.npc_id, &state, version).await {
                Ok(v) => {
                    self.announce(&ctx, None, &req.npc_id, (&before, &state), v)
                        .await;
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

    async fn list_npcs(
        &self,
        ctx: Context,
        req: ListNpcsRequest,
    ) -> Result<ListNpcsResponse, Status> {
        if req.region_id.is_empty() {
            return Err(Status::invalid_argument("regionId is required"));
        }
        let in_region: Vec<&NpcDef> = self.catalog.in_region(&req.region_id).collect();
        if in_region.is_empty() {
            // The world says whether the region exists (not_found passes through unchanged).
            self.world
                .get_region(
                    ctx.outgoing(),
                    GetRegionRequest {
                        region_id: req.region_id.clone(),
                    },
                )
                .await?;
            return Ok(ListNpcsResponse::default());
        }
        let now = self.now(&ctx).await?.game_time_ms;
        let reader = self.localized.reader(&ctx).await;
        let mut npcs = Vec::new();
        for def in in_region {
            let (_, arch) = self.def(&def.id)?;
            // Read only: an NPC nobody has met yet is at its baselines.
            let state = match self.store.get(&key(&def.id)).await? {
                Some(v) => serde_json::from_slice::<State>(&v.value)
                    .map_err(|e| Status::internal(format!("npc state: {e}")))?
                    .at(arch, now),
                None => State::fresh(arch, now),
            };
            npcs.push(localized::summary(self.summary(def, arch, &state), &reader));
        }
        Ok(ListNpcsResponse {
            npcs,
            locale: reader.locale().to_owned(),
        })
    }

    async fn interact(
        &self,
        ctx: Context,
        req: InteractRequest,
    ) -> Result<InteractResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        self.def(&req.npc_id)?;
        let kind = match InteractionKind::try_from(req.kind) {
            Ok(InteractionKind::Greet) => "greeting",
            Ok(InteractionKind::Insult) => "insult",
            _ => {
                return Err(Status::invalid_argument(
                    "kind must be INTERACTION_KIND_GREET or INTERACTION_KIND_INSULT",
                ));
            }
        };
        let now = self.now(&ctx).await?.game_time_ms;
        let key = ctx.idempotency_key.as_deref();
        let (outcome, state, _) = self
            .stimulate(&ctx, &req.npc_id, now, &player, kind, key)
            .await?;
        Ok(InteractResponse {
            effect: Some(effect(outcome, &state)),
        })
    }

    async fn gift(&self, ctx: Context, req: GiftRequest) -> Result<GiftResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let (def, _) = self.def(&req.npc_id)?;
        let key = client_key(&ctx)?;
        if !crate::kit::content::valid_slug(&req.sku, 64) {
            return Err(Status::invalid_argument("sku is not a catalog sku"));
        }
        if !(1..=MAX_GIFT).contains(&req.quantity) {
            return Err(Status::invalid_argument(format!(
                "quantity must be 1 to {MAX_GIFT}"
            )));
        }
        let now = self.now(&ctx).await?;
        let (state, _) = self.load_at(&def.id, now.game_time_ms).await?;
        if let Some(done) = state.recalled(&player, key) {
            return Ok(GiftResponse {
                effect: Some(effect(done, &state)),
            });
        }
        let want = self.catalog.stimuli.get("gift").map_or(0.0, |e| e.mood);
        if state.room(&player, want, self.catalog.influence_cap) < 0.01 {
            // Declined before the item moves: the player keeps it.
            let arch = self.def(&def.id)?.1;
            let game_secs = arch.mood_half_life_hours * 3600.0;
            let real = game_secs / now.scale.max(1.0);
            return Err(Status::new(
                Code::ResourceExhausted,
                format!(
                    "{} has had enough gifts from you for now; try again in a while",
                    def.name
                ),
            )
            .with_retry_after(std::time::Duration::from_secs_f64(
                real.clamp(1.0, 86_400.0),
            )));
        }
        // The item moves once per key (payment's key is derived from the player's), then the
        // mood moves once per key (remembered in the NPC's record): a retry repeats neither.
        self.payment
            .consume(
                ctx.outgoing()
                    .for_player(&player)
                    .idempotent(format!("npc:gift:{}:{player}:{key}", def.id)),
                ConsumeRequest {
                    player_id: player.clone(),
                    sku: req.sku.clone(),
                    quantity: req.quantity,
                    reason: format!("gift:{}", def.id),
                },
            )
            .await?;
        let (outcome, state, _) = self
            .stimulate(&ctx, &def.id, now.game_time_ms, &player, "gift", Some(key))
            .await?;
        Ok(GiftResponse {
            effect: Some(effect(outcome, &state)),
        })
    }

    async fn talk(
        &self,
        ctx: Context,
        req: TalkRequest,
    ) -> Result<BoxStream<Result<TalkResponse, Status>>, Status> {
        let player = ctx.player(&req.player_id)?;
        let line = talk::check_line(&req.text)?;
        let max_tokens = match req.max_tokens {
            0 => 200,
            n @ 1..=512 => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "maxTokens must be 1 to 512, got {n}"
                )));
            }
        };
        let (def, arch) = self.def(&req.npc_id)?;
        let clock = self.now(&ctx).await?;
        let now = clock.game_time_ms;
        let (before, _) = self.load_at(&def.id, now).await?;
        let (region, lore, weather) = tokio::join!(
            self.world.get_region(
                ctx.outgoing(),
                GetRegionRequest {
                    region_id: def.region.clone(),
                }
            ),
            talk::lore(&self.kb, &ctx, def, line, self.lore_budget),
            self.weather.current(
                ctx.outgoing(),
                CurrentRequest {
                    region_id: def.region.clone(),
                }
            ),
        );
        // The sky they stand under, when weather can say; a talk goes on without it.
        let weather = weather
            .ok()
            .and_then(|w| w.weather)
            .map(|w| crate::services::narrative::condition_label(w.condition));
        let region = region.ok().and_then(|r| r.region);
        let place = match &region {
            Some(r) => format!("{} ({})", r.name, r.description),
            None => def.region.clone(),
        };
        let used: Vec<String> = lore.iter().map(|p| p.document.clone()).collect();
        let period = crate::kit::clock::period(clock.hour);
        let mut grounding = talk::grounding(
            def,
            &before,
            region.as_ref(),
            &lore,
            (weather, Some(period)),
        );
        grounding.season =
            crate::kit::clock::season(clock.game_time_ms.div_euclid(86_400_000)).to_owned();
        let request = InferRequest {
            grounding: Some(grounding),
            messages: talk::prompt(def, arch, &before, &place, line),
            max_tokens,
            seed: Some(seed(&[&player, &def.id, line, &now.to_string()])),
            task: "dialogue".into(),
            ..Default::default()
        };
        // The model's tokens are charged to the player who asked. A talk the model refuses (a
        // spend cap, no provider) changes nothing, so it starts first.
        let stream = self
            .llm
            .infer_stream(ctx.outgoing().for_player(&player), request)
            .await?;
        // Talking is a greeting (bounded like any player's).
        let (_, state, version) = self
            .stimulate(&ctx, &def.id, now, &player, "greeting", None)
            .await?;
        // The talk advances "talked_to:<npc>" objectives once: the key is this talk's write,
        // which a player cannot choose, and the call is npc's (quest.Advance is service-only).
        let advanced = self
            .quest
            .advance(
                ctx.outgoing()
                    .for_player(&player)
                    .idempotent(format!("npc:talk:{}:{player}:{version}", def.id)),
                AdvanceRequest {
                    event: crate::kit::content::TALKED_TO.into(),
                    target: def.id.clone(),
                    amount: 1,
                    player_id: player.clone(),
                },
            )
            .await;
        if let Err(e) = advanced {
            tracing::warn!(npc = %def.id, error = %e, "talk did not reach the quest log");
        }
        let mood = round(state.mood);
        Ok(Box::pin(stream.map(move |item| {
            item.map(|piece| {
                let last = !piece.finish_reason.is_empty();
                TalkResponse {
                    delta: piece.delta,
                    finish_reason: piece.finish_reason,
                    lore_used: if last { used.clone() } else { Vec::new() },
                    mood: if last { mood } else { 0.0 },
                }
            })
        })))
    }
}

#[cfg(test)]
mod places_tests;
#[cfg(test)]
mod play_tests;
#[cfg(test)]
mod talk_tests;
#[cfg(test)]
mod tests;
