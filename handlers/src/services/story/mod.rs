//! `aicore.story.v1.StoryService`: each player's place in the story arcs (shipped as data, see
//! [`arcs`]), and narration streamed from the model.
//!
//! A player's place in an arc is one record, `story.p.<player>.<arc>`, changed by compare-and-
//! set: `AdvanceArc` with a stale `expected_version` is 409. A choice's gates (a level, a
//! completed quest) are checked against the quest service, through the router. `Narrate` builds
//! its grounding (see [`narration`]) from the arc's region, the weather there, the game time, the
//! player's active quests and passages of the region's lore retrieved for the cue and the story
//! so far (kb Search, cut to the lore budget in tokens), each fetched through the router; a part
//! that fails is left out, and the stream says so first. The prompt carries the story so far: the
//! player's own path through the arc. The text streams from `llm.InferStream`, charged to the
//! player (lore included); its last event lists the documents used. Dropping the stream (a client
//! that went away) drops the model call, in-process or on a worker.
//!
//! May import: `proto`, `crate::kit`, and types of the `llm`, `narrative`, `quest` services (see
//! `crate::services`).

pub mod content;
pub mod narration;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use proto::BoxStream;
use proto::aicore::kb::v1::{GetRequest, KnowledgeBaseServiceClient, SearchRequest};
use proto::aicore::llm::v1::{InferRequest, LlmServiceClient, LorePassage};
use proto::aicore::quest::v1::{GetLogRequest, QuestServiceClient, QuestStatus};
use proto::aicore::story::v1::{
    AdvanceArcRequest, AdvanceArcResponse, Arc as ArcMsg, ArcChoice, GetArcRequest, GetArcResponse,
    NarrateRequest, NarrateResponse, StoryServiceHandler,
};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use proto::aicore::weather::v1::{CurrentRequest, WeatherServiceClient};
use proto::aicore::world::v1::{GetRegionRequest, WorldServiceClient};
use serde::{Deserialize, Serialize};

pub use content::{ArcDef, Arcs};

use crate::kit::calls::Caller;
use crate::kit::content::seed;
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};
use crate::services::llm::retrieval;
use crate::services::quest::Quests;

const MAX_CUE: usize = 300;
/// Most beats kept in a player's story so far.
const MAX_PATH: usize = 200;

fn record_key(player: &str, arc: &str) -> String {
    format!("story.p.{player}.{arc}")
}

/// A player's place in one arc.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Place {
    /// The beats passed through, the current one last.
    path: Vec<String>,
    /// When it last moved (Unix ms): the most recent is the player's current arc.
    at_ms: u64,
}

/// What the player has done in the quests, for the choices' gates.
struct Standing {
    level: u32,
    completed: Vec<String>,
}

/// The service.
pub struct StoryService {
    store: Arc<dyn Store>,
    arcs: Arc<Arcs>,
    quests: Arc<Quests>,
    llm: LlmServiceClient<Caller>,
    world: WorldServiceClient<Caller>,
    weather: WeatherServiceClient<Caller>,
    time: TimeServiceClient<Caller>,
    quest: QuestServiceClient<Caller>,
    kb: KnowledgeBaseServiceClient<Caller>,
    /// Tokens of lore in one narration's prompt.
    lore_budget: u32,
}

impl StoryService {
    /// The service over `store`, calling the others through `caller` (the story service's).
    pub fn new(
        store: Arc<dyn Store>,
        arcs: Arc<Arcs>,
        quests: Arc<Quests>,
        caller: Caller,
    ) -> Self {
        StoryService {
            store,
            arcs,
            quests,
            llm: LlmServiceClient(caller.clone()),
            world: WorldServiceClient(caller.clone()),
            weather: WeatherServiceClient(caller.clone()),
            time: TimeServiceClient(caller.clone()),
            quest: QuestServiceClient(caller.clone()),
            kb: KnowledgeBaseServiceClient(caller),
            lore_budget: crate::services::llm::retrieval::DEFAULT_BUDGET,
        }
    }

    /// The service with `tokens` of lore in a narration's prompt (0: none).
    #[must_use]
    pub fn with_lore_budget(mut self, tokens: u32) -> Self {
        self.lore_budget = tokens;
        self
    }

    async fn place(&self, player: &str, arc: &ArcDef) -> Result<(Place, u64), Status> {
        Ok(match self.store.get(&record_key(player, &arc.id)).await? {
            Some(v) => (
                serde_json::from_slice(&v.value)
                    .map_err(|e| Status::internal(format!("story record: {e}")))?,
                v.version,
            ),
            None => (
                Place {
                    path: vec![arc.start.clone()],
                    at_ms: 0,
                },
                0,
            ),
        })
    }

    /// The arc named, or the player's current one (the last they moved in), or the first.
    async fn arc(&self, player: &str, id: &str) -> Result<&ArcDef, Status> {
        if !id.is_empty() {
            return self
                .arcs
                .get(id)
                .ok_or_else(|| Status::not_found(format!("no arc {id:?}")));
        }
        let prefix = format!("story.p.{player}.");
        let page = self.store.list(&prefix, None, 100).await?;
        let latest = page
            .entries
            .iter()
            .filter_map(|(k, v)| {
                let place: Place = serde_json::from_slice(&v.value).ok()?;
                Some((place.at_ms, k[prefix.len()..].to_owned()))
            })
            .max();
        Ok(latest
            .and_then(|(_, id)| self.arcs.get(&id))
            .unwrap_or(&self.arcs.list[0]))
    }

    async fn standing(&self, ctx: &Context, player: &str) -> Result<Standing, Status> {
        let log = self
            .quest
            .get_log(
                ctx.outgoing(),
                GetLogRequest {
                    player_id: player.to_owned(),
                },
            )
            .await?;
        let completed: Vec<String> = log
            .quests
            .into_iter()
            .filter(|q| q.status == QuestStatus::Completed as i32)
            .map(|q| q.quest_id)
            .collect();
        let xp = completed
            .iter()
            .filter_map(|id| self.quests.get(id))
            .filter_map(|q| q.definition.reward.as_ref())
            .map(|r| u64::from(r.experience))
            .sum();
        Ok(Standing {
            level: self.quests.level_for(xp),
            completed,
        })
    }

    /// Passages of the region's lore that fit `query`, ranked by the library, within the lore
    /// budget (none if the library does not answer: the beat and the region still ground the
    /// narration). The player chooses only the words of the query: the region is the arc's, and
    /// the library holds shared lore, no player's data.
    async fn lore(&self, ctx: &Context, region: &str, query: &str) -> Vec<LorePassage> {
        if self.lore_budget == 0 {
            return Vec::new();
        }
        let hits = match self
            .kb
            .search(
                ctx.outgoing(),
                SearchRequest {
                    query: query.to_owned(),
                    tags: vec![region.to_owned()],
                    limit: u32::try_from(narration::MAX_LORE).unwrap_or(6),
                },
            )
            .await
        {
            Ok(r) => r.hits,
            Err(e) => {
                tracing::debug!(error = %e, "narration without lore");
                return Vec::new();
            }
        };
        let gets = hits
            .iter()
            .map(|h| self.kb.get(ctx.outgoing(), GetRequest { id: h.id.clone() }));
        let docs: Vec<_> = futures_util::future::join_all(gets)
            .await
            .into_iter()
            .filter_map(|r| r.ok().and_then(|g| g.document))
            .collect();
        retrieval::within_budget(&docs, query, self.lore_budget)
    }

    /// Why `choice` is closed to a player of `standing`, if it is.
    fn closed(&self, choice: &content::Choice, standing: &Standing) -> Option<String> {
        if choice.requires_level > standing.level {
            return Some(format!("reach level {}", choice.requires_level));
        }
        if !choice.requires_quest.is_empty() && !standing.completed.contains(&choice.requires_quest)
        {
            let title = self
                .quests
                .get(&choice.requires_quest)
                .map_or(choice.requires_quest.as_str(), |q| {
                    q.definition.title.as_str()
                });
            return Some(format!("complete the quest \"{title}\""));
        }
        None
    }

    async fn view(
        &self,
        ctx: &Context,
        player: &str,
        arc: &ArcDef,
        place: &Place,
        version: u64,
    ) -> Result<ArcMsg, Status> {
        let current = place
            .path
            .last()
            .and_then(|b| arc.beats.get(b))
            .ok_or_else(|| Status::internal("story record names no beat of its arc"))?;
        let gated = current
            .choices
            .iter()
            .any(|c| c.requires_level > 0 || !c.requires_quest.is_empty());
        let standing = if gated {
            self.standing(ctx, player).await?
        } else {
            Standing {
                level: 0,
                completed: Vec::new(),
            }
        };
        let options: Vec<ArcChoice> = current
            .choices
            .iter()
            .map(|c| {
                let why = self.closed(c, &standing);
                ArcChoice {
                    id: c.id.clone(),
                    label: c.label.clone(),
                    available: why.is_none(),
                    requirement: why.unwrap_or_default(),
                }
            })
            .collect();
        Ok(ArcMsg {
            id: arc.id.clone(),
            title: arc.title.clone(),
            chapter: current.chapter,
            beats: place
                .path
                .iter()
                .filter_map(|b| arc.beats.get(b).map(|b| b.text.clone()))
                .collect(),
            choices: options
                .iter()
                .filter(|o| o.available)
                .map(|o| o.id.clone())
                .collect(),
            version,
            options,
            beat_id: if current.end {
                String::new()
            } else {
                current.id.clone()
            },
            ended: current.end,
        })
    }
}

impl StoryServiceHandler for StoryService {
    type Context = Context;
    type Error = Status;

    async fn get_arc(&self, ctx: Context, req: GetArcRequest) -> Result<GetArcResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let arc = self.arc(&player, &req.arc_id).await?;
        let (place, version) = self.place(&player, arc).await?;
        Ok(GetArcResponse {
            arc: Some(self.view(&ctx, &player, arc, &place, version).await?),
        })
    }

    async fn advance_arc(
        &self,
        ctx: Context,
        req: AdvanceArcRequest,
    ) -> Result<AdvanceArcResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let arc = self.arc(&player, &req.arc_id).await?;
        let (mut place, version) = self.place(&player, arc).await?;
        if let Some(expected) = req.expected_version.filter(|e| *e != version) {
            return Err(Status::aborted(format!(
                "version mismatch on arc {}: expected {expected}, it is at {version}",
                arc.id
            )));
        }
        let current = place
            .path
            .last()
            .and_then(|b| arc.beats.get(b))
            .ok_or_else(|| Status::internal("story record names no beat of its arc"))?;
        if current.end {
            return Err(Status::failed_precondition(format!(
                "arc {} has ended",
                arc.id
            )));
        }
        let Some(choice) = current.choices.iter().find(|c| c.id == req.choice) else {
            let ids: Vec<&str> = current.choices.iter().map(|c| c.id.as_str()).collect();
            return Err(Status::invalid_argument(format!(
                "no choice {:?} here; the choices are {}",
                req.choice,
                ids.join(", ")
            )));
        };
        if choice.requires_level > 0 || !choice.requires_quest.is_empty() {
            let standing = self.standing(&ctx, &player).await?;
            if let Some(why) = self.closed(choice, &standing) {
                return Err(Status::failed_precondition(format!(
                    "choice {} is closed: {why}",
                    choice.id
                )));
            }
        }
        place.path.push(choice.next.clone());
        // An operator's arc may loop within a chapter: the story so far keeps its last beats.
        if place.path.len() > MAX_PATH {
            place.path.drain(..place.path.len() - MAX_PATH);
        }
        place.at_ms = crate::kit::clock::now_ms();
        let bytes = serde_json::to_vec(&place).map_err(|e| Status::internal(e.to_string()))?;
        let new_version = match self
            .store
            .put(
                &record_key(&player, &arc.id),
                Bytes::from(bytes),
                Some(version),
            )
            .await
        {
            Ok(v) => v,
            Err(StoreError::Conflict { .. }) => {
                return Err(Status::aborted(format!(
                    "arc {} moved on meanwhile; read it again",
                    arc.id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(AdvanceArcResponse {
            arc: Some(self.view(&ctx, &player, arc, &place, new_version).await?),
        })
    }

    async fn narrate(
        &self,
        ctx: Context,
        req: NarrateRequest,
    ) -> Result<BoxStream<Result<NarrateResponse, Status>>, Status> {
        let player = ctx.player(&req.player_id)?;
        if req.cue.chars().count() > MAX_CUE || req.cue.chars().any(char::is_control) {
            return Err(Status::invalid_argument(format!(
                "cue must be at most {MAX_CUE} printable characters"
            )));
        }
        let max_tokens = match req.max_tokens {
            0 => 256,
            n @ 1..=1024 => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "maxTokens must be 1 to 1024, got {n}"
                )));
            }
        };
        let arc = self.arc(&player, &req.arc_id).await?;
        let (place, _) = self.place(&player, arc).await?;
        let beat = place
            .path
            .last()
            .and_then(|b| arc.beats.get(b))
            .ok_or_else(|| Status::internal("story record names no beat of its arc"))?;
        let so_far = narration::so_far(arc, &place.path);
        let query = narration::lore_query(&so_far, &req.cue);
        let (region, weather, now, log, lore) = tokio::join!(
            self.world.get_region(
                ctx.outgoing(),
                GetRegionRequest {
                    region_id: arc.region.clone(),
                }
            ),
            self.weather.current(
                ctx.outgoing(),
                CurrentRequest {
                    region_id: arc.region.clone(),
                }
            ),
            self.time.now(ctx.outgoing(), NowRequest {}),
            self.quest.get_log(
                ctx.outgoing(),
                GetLogRequest {
                    player_id: player.clone(),
                }
            ),
            self.lore(&ctx, &arc.region, &query),
        );
        let mut left_out = Vec::new();
        let region = match region.map(|r| r.region) {
            Ok(Some(r)) => Some(r),
            Ok(None) | Err(_) => {
                left_out.push("the region");
                None
            }
        };
        let weather = match weather.map(|w| w.weather) {
            Ok(Some(w)) => Some(crate::services::narrative::condition_label(w.condition)),
            Ok(None) | Err(_) => {
                left_out.push("the weather");
                None
            }
        };
        let (period, season) = match now {
            Ok(t) => (
                Some(crate::services::narrative::period(t.hour)),
                Some(crate::kit::clock::season(
                    t.game_time_ms.div_euclid(86_400_000),
                )),
            ),
            Err(_) => {
                left_out.push("the time of day");
                (None, None)
            }
        };
        let active: Vec<&crate::services::quest::QuestDef> = match log {
            Ok(l) => l
                .quests
                .iter()
                .filter(|q| q.status == QuestStatus::Active as i32)
                .filter_map(|q| self.quests.get(&q.quest_id))
                .collect(),
            Err(_) => {
                left_out.push("the player's quests");
                Vec::new()
            }
        };
        let moment = narration::Moment {
            region: region.as_ref(),
            weather,
            period,
            season,
        };
        let documents: Vec<String> = lore.iter().map(|p| p.document.clone()).collect();
        let request = InferRequest {
            messages: narration::prompt(arc, &so_far, &req.cue),
            max_tokens,
            seed: Some(seed(&[&player, &arc.id, &beat.id, &req.cue])),
            task: "narration".into(),
            grounding: Some(narration::grounding(arc, beat, &moment, &active, &lore)),
            ..Default::default()
        };
        // The model's tokens are charged to the player the narration is for.
        let stream = self
            .llm
            .infer_stream(ctx.outgoing().for_player(&player), request)
            .await?;
        let text = stream.map(move |item| {
            item.map(|piece| {
                let last = !piece.finish_reason.is_empty();
                NarrateResponse {
                    delta: piece.delta,
                    documents: if last { documents.clone() } else { Vec::new() },
                    finish_reason: piece.finish_reason,
                }
            })
        });
        if left_out.is_empty() {
            return Ok(Box::pin(text));
        }
        let note = NarrateResponse {
            delta: format!("[Narrated without {}.] ", left_out.join(", ")),
            ..NarrateResponse::default()
        };
        Ok(Box::pin(futures_util::stream::iter([Ok(note)]).chain(text)))
    }
}

#[cfg(test)]
mod grounded_tests;
#[cfg(test)]
mod narrate_tests;
#[cfg(test)]
mod tests;
