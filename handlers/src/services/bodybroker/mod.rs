//! `aicore.bodybroker.v1.BodyBrokerService`: the game's facade.
//!
//! `Bootstrap` is a player's session in one round trip: settings, active quests, region, weather
//! and time, fetched concurrently through the router within the call's deadline. A part that
//! fails (a worker down, a slow store) or runs out of time is named in `degraded` and the rest
//! still comes back; a part the client got wrong (an unknown region) fails the call with its
//! code. Otherwise it equals the five individual calls.
//!
//! `IngestGameEvent` delivers a game server's event by the routing table ([`events`]): quest
//! objectives, the player's entity in the world, the events bus. Each delivery carries an
//! idempotency key derived from the caller and the event's id (or the call's Idempotency-Key),
//! so an event sent twice is delivered once, and a retry after a failed delivery finishes the
//! rest without repeating what was done.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod content;
mod view;

use std::time::{Duration, Instant};

use pbjson_types::{Struct, Value, value::Kind};
use proto::aicore::bodybroker::v1::{
    BodyBrokerServiceHandler, BootstrapRequest, BootstrapResponse, GameEvent, GetPlayerRequest,
    GetPlayerResponse, IngestGameEventRequest, IngestGameEventResponse,
};
use proto::aicore::events::v1::{EventBusServiceClient, PublishRequest};
use proto::aicore::npc::v1::{InteractRequest, InteractionKind, NpcServiceClient};
use proto::aicore::payment::v1::PaymentServiceClient;
use proto::aicore::quest::v1::{AdvanceRequest, GetLogRequest, QuestServiceClient, QuestStatus};
use proto::aicore::settings::v1::{GetRequest, SettingsServiceClient};
use proto::aicore::time::v1::{NowRequest, TimeServiceClient};
use proto::aicore::weather::v1::{CurrentRequest, WeatherServiceClient};
use proto::aicore::world::v1::{
    Entity, GetRegionRequest, RemoveEntityRequest, UpsertEntityRequest, Vec3, WorldServiceClient,
};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

pub use content::GameEvents;
use content::{EventDef, FieldType, Target, Topic};

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::status::{Code, Status};

/// Time kept back from the parts' deadline, so the bundle goes out before the caller's.
const MARGIN: Duration = Duration::from_millis(50);
/// Longest text in a payload field.
const MAX_TEXT: usize = 200;
/// Longest event id.
const MAX_EVENT_ID: usize = 128;

/// The service.
pub struct BodyBrokerService {
    events: Arc<GameEvents>,
    settings: SettingsServiceClient<Caller>,
    quest: QuestServiceClient<Caller>,
    world: WorldServiceClient<Caller>,
    weather: WeatherServiceClient<Caller>,
    time: TimeServiceClient<Caller>,
    bus: EventBusServiceClient<Caller>,
    npc: NpcServiceClient<Caller>,
    payment: PaymentServiceClient<Caller>,
}

/// Whether a failed part is the caller's doing (so the call fails with its code) rather than
/// the part's (so the bundle is degraded).
fn callers_fault(code: Code) -> bool {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::OutOfRange => true,
        Code::Canceled
        | Code::Unknown
        | Code::DeadlineExceeded
        | Code::AlreadyExists
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => false,
    }
}

/// The context of a bundle's parts: they end a little before the caller stops waiting, so a
/// slow one degrades the bundle instead of failing it.
fn parts_context(ctx: &Context) -> Context {
    let mut parts = ctx.clone();
    parts.deadline = ctx.deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        d.checked_sub(MARGIN.min(left / 10)).unwrap_or(d)
    });
    parts
}

fn text(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn number(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

impl BodyBrokerService {
    /// The facade, calling the other services through `caller` (bodybroker's).
    pub fn new(events: Arc<GameEvents>, caller: Caller) -> Self {
        BodyBrokerService {
            events,
            settings: SettingsServiceClient(caller.clone()),
            quest: QuestServiceClient(caller.clone()),
            world: WorldServiceClient(caller.clone()),
            weather: WeatherServiceClient(caller.clone()),
            time: TimeServiceClient(caller.clone()),
            npc: NpcServiceClient(caller.clone()),
            payment: PaymentServiceClient(caller.clone()),
            bus: EventBusServiceClient(caller),
        }
    }
}

/// A checked payload: field -> value.
type Payload = std::collections::BTreeMap<String, Value>;

fn check_payload(def: &EventDef, payload: Option<Value>) -> Result<Payload, Status> {
    let fields = match payload.and_then(|v| v.kind) {
        None | Some(Kind::NullValue(_)) => Default::default(),
        Some(Kind::StructValue(s)) => s.fields,
        Some(_) => return Err(Status::invalid_argument("event.payload must be an object")),
    };
    let mut out = Payload::new();
    for (name, value) in fields {
        let Some(ty) = def.payload.get(&name) else {
            return Err(Status::invalid_argument(format!(
                "event.payload.{name} is not a field of {} events (fields: {})",
                def.kind,
                def.payload.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let ok = match (&value.kind, ty) {
            (Some(Kind::NullValue(_)), _) => continue,
            (Some(Kind::StringValue(s)), FieldType::String) => {
                !s.is_empty() && s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control)
            }
            (Some(Kind::NumberValue(n)), FieldType::Integer) => n.fract() == 0.0 && n.abs() <= 1e9,
            (Some(Kind::NumberValue(n)), FieldType::Number) => n.is_finite(),
            _ => false,
        };
        if !ok {
            return Err(Status::invalid_argument(format!(
                "event.payload.{name} must be {}",
                match ty {
                    FieldType::String => "text of 1 to 200 printable characters",
                    FieldType::Integer => "a whole number",
                    FieldType::Number => "a number",
                }
            )));
        }
        out.insert(name, value);
    }
    if let Some(missing) = def.required.iter().find(|r| !out.contains_key(*r)) {
        return Err(Status::invalid_argument(format!(
            "event.payload.{missing} is required for {} events",
            def.kind
        )));
    }
    Ok(out)
}

fn string_field<'a>(payload: &'a Payload, name: &str) -> Option<&'a str> {
    match payload.get(name).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn number_field(payload: &Payload, name: &str) -> Option<f64> {
    match payload.get(name).and_then(|v| v.kind.as_ref()) {
        Some(Kind::NumberValue(n)) => Some(*n),
        _ => None,
    }
}

/// The id deliveries are keyed by: the caller's, hashed with who the caller is and the player,
/// so two game servers' ids (or one id for two players) never collide.
fn delivery_base(ctx: &Context, event: &GameEvent) -> Result<String, Status> {
    let id = if event.id.is_empty() {
        ctx.idempotency_key.clone().ok_or_else(|| {
            Status::invalid_argument(
                "give the event an id (event.id) or send an Idempotency-Key, so a retry is delivered once",
            )
        })?
    } else {
        if event.id.len() > MAX_EVENT_ID || event.id.chars().any(char::is_control) {
            return Err(Status::invalid_argument(format!(
                "event.id must be at most {MAX_EVENT_ID} printable characters"
            )));
        }
        event.id.clone()
    };
    let who = ctx
        .principal
        .as_ref()
        .map(crate::kit::context::Principal::describe)
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{who}\n{}\n{id}", event.player_id).as_bytes());
    Ok(format!("ingest:{:x}", digest))
}

impl BodyBrokerServiceHandler for BodyBrokerService {
    type Context = Context;
    type Error = Status;

    async fn bootstrap(
        &self,
        ctx: Context,
        req: BootstrapRequest,
    ) -> Result<BootstrapResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        if !req.region_id.is_empty() && !crate::kit::content::valid_slug(&req.region_id, 64) {
            return Err(Status::invalid_argument(
                "regionId is not a region id (world ListRegions); leave it out for the player's own region",
            ));
        }
        let parts = parts_context(&ctx);
        // With no region asked for, the player's own comes first: the region's parts need it. If
        // it cannot be told, those parts are degraded with it and the rest still comes back.
        let (region, located) = if req.region_id.is_empty() {
            match self.locate(&parts, &player).await {
                Err(e) if callers_fault(e.code()) => return Err(e),
                Ok(at) => (Ok(at.region_id.clone()), Some(Ok(at))),
                Err(e) => (Err(e.clone()), Some(Err(e))),
            }
        } else {
            (Ok(req.region_id.clone()), None)
        };
        let settings = self
            .settings
            .get(
                parts.outgoing(),
                GetRequest {
                    player_id: player.clone(),
                },
            )
            .await;
        // The player's language, read once: the parts below serve their text in it.
        let parts = view::speaking(parts, settings.as_ref().ok());
        let (settings, log, region_answer, weather, now, (view, missing)) = tokio::join!(
            async { settings },
            self.quest.get_log(
                parts.outgoing(),
                GetLogRequest {
                    player_id: player.clone(),
                }
            ),
            async {
                let region_id = region.clone()?;
                self.world
                    .get_region(parts.outgoing(), GetRegionRequest { region_id })
                    .await
            },
            async {
                let region_id = region.clone()?;
                self.weather
                    .current(parts.outgoing(), CurrentRequest { region_id })
                    .await
            },
            self.time.now(parts.outgoing(), NowRequest {}),
            self.view(&parts, &player, located),
        );
        let region = region_answer;
        let mut out = BootstrapResponse {
            player_id: player,
            ..BootstrapResponse::default()
        };
        let mut degraded = |part: &str, e: Status| -> Result<(), Status> {
            if callers_fault(e.code()) {
                return Err(e);
            }
            tracing::warn!(part, code = e.code().as_str(), error = %e.message(), "bootstrap degraded");
            out.degraded.push(part.to_owned());
            Ok(())
        };
        for (part, e) in missing {
            degraded(part, e)?;
        }
        let settings = settings.map_err(|e| ("settings", e));
        let log = log.map_err(|e| ("quests", e));
        let region = region.map_err(|e| ("region", e));
        let weather = weather.map_err(|e| ("weather", e));
        let now = now.map_err(|e| ("time", e));
        // Collected first so one caller's-fault error wins over the degraded parts' logging.
        let mut bundle = BootstrapResponse::default();
        match settings {
            Ok(s) => {
                bundle.settings = s.settings;
                bundle.settings_version = s.version;
            }
            Err((part, e)) => degraded(part, e)?,
        }
        match log {
            Ok(l) => {
                bundle.active_quests = l
                    .quests
                    .into_iter()
                    .filter(|q| q.status() == QuestStatus::Active)
                    .collect();
            }
            Err((part, e)) => degraded(part, e)?,
        }
        match region {
            Ok(r) => bundle.region = r.region,
            Err((part, e)) => degraded(part, e)?,
        }
        match weather {
            Ok(w) => bundle.weather = w.weather,
            Err((part, e)) => degraded(part, e)?,
        }
        match now {
            Ok(t) => bundle.time = Some(t),
            Err((part, e)) => degraded(part, e)?,
        }
        Ok(BootstrapResponse {
            player_id: out.player_id,
            degraded: out.degraded,
            player: Some(view),
            ..bundle
        })
    }

    async fn get_player(
        &self,
        ctx: Context,
        req: GetPlayerRequest,
    ) -> Result<GetPlayerResponse, Status> {
        let player = ctx.player(&req.player_id)?;
        let parts = self.in_players_language(parts_context(&ctx), &player).await;
        let (view, missing) = self.view(&parts, &player, None).await;
        let mut degraded = Vec::new();
        for (part, e) in missing {
            if callers_fault(e.code()) {
                return Err(e);
            }
            tracing::warn!(part, code = e.code().as_str(), error = %e.message(), "player view degraded");
            degraded.push(part.to_owned());
        }
        Ok(GetPlayerResponse {
            player: Some(view),
            degraded,
        })
    }

    async fn ingest_game_event(
        &self,
        ctx: Context,
        req: IngestGameEventRequest,
    ) -> Result<IngestGameEventResponse, Status> {
        let event = req
            .event
            .ok_or_else(|| Status::invalid_argument("event is required"))?;
        if event.r#type == crate::kit::content::TALKED_TO {
            return Err(Status::permission_denied(
                "talked_to is reported by the npc service when a player talks to an NPC (NpcService Talk); a game server cannot send it",
            ));
        }
        let def = self.events.get(&event.r#type).ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown event type {:?}; known: {}",
                event.r#type,
                self.events
                    .iter()
                    .map(|e| e.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let player = ctx.player(&event.player_id)?;
        if def.needs_region() && !crate::kit::content::valid_slug(&event.region_id, 64) {
            return Err(Status::invalid_argument(format!(
                "event.regionId is required for {} events",
                def.kind
            )));
        }
        let base = delivery_base(&ctx, &event)?;
        let payload = check_payload(def, event.payload.clone())?;
        let mut delivered_to = Vec::new();
        if let Some(q) = &def.quest {
            let target = match &q.target {
                Target::Region => event.region_id.clone(),
                Target::Field(f) => string_field(&payload, f).unwrap_or_default().to_owned(),
            };
            if !crate::kit::content::valid_slug(&target, 48) {
                return Err(Status::invalid_argument(format!(
                    "the {} event's target {target:?} must be an id (lowercase letters, digits or '-')",
                    def.kind
                )));
            }
            let amount = q
                .amount
                .as_deref()
                .and_then(|a| number_field(&payload, a))
                .unwrap_or(1.0);
            if !(1.0..=1000.0).contains(&amount) {
                return Err(Status::invalid_argument(format!(
                    "the {} event's amount must be 1 to 1000",
                    def.kind
                )));
            }
            self.quest
                .advance(
                    ctx.outgoing().idempotent(format!("{base}:quest")),
                    AdvanceRequest {
                        event: def.kind.clone(),
                        target,
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        amount: amount as u32,
                        player_id: player.clone(),
                    },
                )
                .await?;
            delivered_to.push("quest".to_owned());
        }
        if let Some(w) = &def.world {
            let [x, y, z] = w
                .position
                .clone()
                .map(|f| number_field(&payload, &f).unwrap_or_default());
            let id = format!("player-{player}");
            self.world
                .upsert_entity(
                    ctx.outgoing().idempotent(format!("{base}:world")),
                    UpsertEntityRequest {
                        entity: Some(Entity {
                            id: id.clone(),
                            region_id: event.region_id.clone(),
                            kind: "player".into(),
                            position: Some(Vec3 { x, y, z }),
                            ..Entity::default()
                        }),
                        expected_version: None,
                    },
                )
                .await?;
            let from = w.from.as_deref().and_then(|f| string_field(&payload, f));
            if let Some(from) = from.filter(|f| *f != event.region_id) {
                let left = self
                    .world
                    .remove_entity(
                        ctx.outgoing().idempotent(format!("{base}:world-left")),
                        RemoveEntityRequest {
                            region_id: from.to_owned(),
                            entity_id: id,
                            expected_version: None,
                        },
                    )
                    .await;
                match left {
                    // Not there (never placed, or removed already): nothing to undo.
                    Ok(_) => {}
                    Err(e) if e.code() == Code::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            delivered_to.push("world".to_owned());
        }
        if let Some(n) = &def.npc {
            let npc_id = string_field(&payload, &n.target)
                .unwrap_or_default()
                .to_owned();
            let kind = match n.kind {
                content::Interaction::Greet => InteractionKind::Greet,
                content::Interaction::Insult => InteractionKind::Insult,
            };
            // Keyed by the event, so a retried event moves the NPC's mood once.
            let done = self
                .npc
                .interact(
                    ctx.outgoing().idempotent(format!("{base}:npc")),
                    InteractRequest {
                        npc_id: npc_id.clone(),
                        kind: kind as i32,
                        player_id: player.clone(),
                    },
                )
                .await;
            match done {
                Ok(_) => {}
                Err(e) if e.code() == Code::NotFound => {
                    return Err(Status::invalid_argument(format!(
                        "the {} event names no known NPC {npc_id:?} (an NPC id, e.g. brenna-hale)",
                        def.kind
                    )));
                }
                Err(e) => return Err(e),
            }
            delivered_to.push("npc".to_owned());
        }
        if let Some(topic) = def.publish {
            let topic = match topic {
                Topic::Player => format!("player.{player}"),
                Topic::World => format!("world.{}", event.region_id),
            };
            // Only what the game server sent: a retry must carry the same body. The game's
            // fields sit beside the envelope's, not under a second `payload`: theirs are
            // lowercase snake_case by the routing table's rule, ours camelCase, so none collide.
            let mut fields: Vec<(String, Value)> = payload.into_iter().collect();
            fields.push(("playerId".to_owned(), text(&player)));
            fields.push(("regionId".to_owned(), text(&event.region_id)));
            if event.occurred_at_ms > 0 {
                #[allow(clippy::cast_precision_loss)]
                fields.push((
                    "occurredAtMs".to_owned(),
                    number(event.occurred_at_ms as f64),
                ));
            }
            self.bus
                .publish(
                    ctx.outgoing().idempotent(format!("{base}:events")),
                    PublishRequest {
                        topic,
                        r#type: format!("game.{}", def.kind),
                        payload: Some(Value {
                            kind: Some(Kind::StructValue(Struct {
                                fields: fields.into_iter().collect(),
                            })),
                        }),
                    },
                )
                .await?;
            delivered_to.push("events".to_owned());
        }
        Ok(IngestGameEventResponse { delivered_to })
    }
}

#[cfg(test)]
mod tests;
