//! `aicore.events.v1.EventBusService`: topics with per-topic sequence numbers, published by
//! services (and by a player on their own topic), replayed by sequence, and followed live. Where
//! events live, and the rules of topics and markers, is the kit's [`crate::kit::event_log`].
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use proto::BoxStream;
use proto::aicore::events::v1::{
    Event, EventBusServiceHandler, PublishRequest, PublishResponse, Publisher, PublisherKind,
    ReplayRequest, ReplayResponse, SubscribeRequest,
};

use crate::kit::context::{Context, Principal};
use crate::kit::event_log::{
    EventLog, MAX_PAYLOAD_BYTES, MAX_TOPICS, gap, now_ms, subscribed, validate_topic,
};
use crate::kit::status::Status;

const MAX_TYPE_LEN: usize = 64;
/// Largest payload a player may publish (on their own topic): with the log's 1,000 newest events
/// per topic, a player's topic holds at most about 4 MiB, like their state quota.
pub const MAX_PLAYER_PAYLOAD_BYTES: usize = 4 * 1024;
const DEFAULT_REPLAY: u32 = 100;
const MAX_REPLAY: u32 = 1000;

/// Topics under `admin.` carry the operators' audit: the edge appends them to the log itself and
/// only its admin listener reads them; through this service no one reads or publishes them.
fn reserved_for_admin(topic: &str) -> Result<(), Status> {
    let head = topic.split_once('.').map_or(topic, |(head, _)| head);
    if head.eq_ignore_ascii_case("admin") {
        return Err(Status::permission_denied(
            "admin.* topics are the operators' audit, read only on the admin listener",
        ));
    }
    Ok(())
}

/// Whether the caller may read `topic`: services read everything but `admin.*`, a player reads
/// public topics and their own `player.<id>`.
pub fn may_read(ctx: &Context, topic: &str) -> Result<(), Status> {
    if ctx.principal.is_some() {
        reserved_for_admin(topic)?;
    }
    match &ctx.principal {
        Some(Principal::Service { .. }) => Ok(()),
        Some(Principal::Player { player_id }) => match topic.strip_prefix("player.") {
            Some(id) if id != player_id => Err(Status::permission_denied(
                "a player may read only their own player topic",
            )),
            _ => Ok(()),
        },
        None => Err(Status::unauthenticated("authentication required")),
    }
}

/// Type heads no player publishes besides the services' own names: `game.` is what bodybroker
/// fans out from game servers, `edge.` the bus's own markers, `player.` facts the backend states
/// about a player (quest's `player.leveled`).
const RESERVED_HEADS: [&str; 3] = ["game", "edge", "player"];

/// The service (or reserved word) a type's first segment names, compared in any case: `quest`,
/// `Quest.completed` and `GAME.boss_defeated` all name one.
fn reserved_head(kind: &str) -> Option<&'static str> {
    let head = kind.split_once('.').map_or(kind, |(head, _)| head);
    RESERVED_HEADS
        .iter()
        .copied()
        .find(|r| head.eq_ignore_ascii_case(r))
        .or_else(|| {
            proto::SERVICES
                .iter()
                .map(|s| s.short)
                .find(|s| head.eq_ignore_ascii_case(s))
        })
}

/// Whether the caller may publish to `topic`: services anywhere but `admin.*`, a player only on their own topic,
/// and never an event type whose head names a service, `game`, `edge` or `player`
/// (`quest.completed` is the quest service's word, `game.*` the game servers', `player.leveled`
/// quest's too). Consumers should still trust the event's `publisher` stamp, not its name.
pub fn may_publish(ctx: &Context, topic: &str, kind: &str) -> Result<(), Status> {
    if ctx.principal.is_some() {
        reserved_for_admin(topic)?;
    }
    match &ctx.principal {
        Some(Principal::Service { .. }) => Ok(()),
        Some(Principal::Player { player_id }) => {
            if let Some(head) = reserved_head(kind) {
                return Err(Status::permission_denied(format!(
                    "event types {head}.* (in any case) are published by services only"
                )));
            }
            if topic.strip_prefix("player.") == Some(player_id.as_str()) {
                Ok(())
            } else {
                Err(Status::permission_denied(format!(
                    "a player may publish only to player.{player_id}; other topics are published by services"
                )))
            }
        }
        None => Err(Status::unauthenticated("authentication required")),
    }
}

/// Who is publishing, from the caller's principal alone: a player, a service key, or one of the
/// backend's services (a call between services carries `svc:<name>`, which no key can be named).
pub fn publisher(ctx: &Context) -> Option<Publisher> {
    match &ctx.principal {
        Some(Principal::Player { .. }) => Some(Publisher {
            kind: PublisherKind::Player.into(),
            service: String::new(),
        }),
        Some(Principal::Service { name, .. }) => Some(Publisher {
            kind: PublisherKind::Service.into(),
            service: name
                .strip_prefix("svc:")
                .and_then(proto::ServiceDesc::by_short)
                .map(|s| s.short.to_owned())
                .unwrap_or_default(),
        }),
        None => None,
    }
}

/// For a type the backend declares (`proto::EVENT_TYPES`), the full name of its payload's message,
/// after checking that the payload is one (a service key publishing `quest.completed` must say it
/// in the declared shape, so a client decoding by `payloadType` never meets another); empty for
/// free-form types.
fn declared_payload(kind: &str, payload: Option<&pbjson_types::Value>) -> Result<String, Status> {
    let Some(declared) = proto::EventTypeDesc::by_type(kind) else {
        return Ok(String::new());
    };
    let json = match payload {
        Some(p) => proto::codec::to_json_vec(p).map_err(|e| Status::internal(e.to_string()))?,
        None => b"{}".to_vec(),
    };
    (declared.json_to_proto)(&json).map_err(|e| {
        Status::invalid_argument(format!(
            "payload of a {kind} event must be a {} in proto3 JSON: {e}",
            declared.message
        ))
    })?;
    Ok(declared.message.to_owned())
}

/// The event bus service.
#[derive(Clone)]
pub struct EventsService {
    log: std::sync::Arc<dyn EventLog>,
}

impl std::fmt::Debug for EventsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsService")
            .field("log", &self.log.backend())
            .finish()
    }
}

impl EventsService {
    /// The service over `log`.
    pub fn new(log: std::sync::Arc<dyn EventLog>) -> Self {
        EventsService { log }
    }
}

/// Topic names, checked, without repeats, in order.
fn topics(requested: &[String]) -> Result<Vec<String>, Status> {
    let mut out: Vec<String> = Vec::new();
    for t in requested {
        validate_topic(t)?;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    if out.is_empty() || out.len() > MAX_TOPICS {
        return Err(Status::invalid_argument(format!(
            "topics: 1 to {MAX_TOPICS} are required"
        )));
    }
    Ok(out)
}

impl EventBusServiceHandler for EventsService {
    type Context = Context;
    type Error = Status;

    async fn publish(&self, ctx: Context, req: PublishRequest) -> Result<PublishResponse, Status> {
        validate_topic(&req.topic)?;
        may_publish(&ctx, &req.topic, &req.r#type)?;
        if req.r#type.is_empty()
            || req.r#type.len() > MAX_TYPE_LEN
            || !req
                .r#type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(Status::invalid_argument(format!(
                "type must be 1 to {MAX_TYPE_LEN} letters, digits, '.', '_' or '-'"
            )));
        }
        if req
            .r#type
            .get(..5)
            .is_some_and(|h| h.eq_ignore_ascii_case("edge."))
        {
            return Err(Status::invalid_argument(
                "types starting with \"edge.\" are reserved for the bus's own markers",
            ));
        }
        let size = req.payload.as_ref().map_or(0, prost::Message::encoded_len);
        let max = match ctx.principal {
            Some(Principal::Player { .. }) => MAX_PLAYER_PAYLOAD_BYTES,
            _ => MAX_PAYLOAD_BYTES,
        };
        if size > max {
            return Err(Status::payload_too_large(format!(
                "payload is {size} bytes encoded; at most {max}"
            )));
        }
        let payload_type = declared_payload(&req.r#type, req.payload.as_ref())?;
        let sequence = self
            .log
            .append(Event {
                topic: req.topic,
                sequence: 0,
                r#type: req.r#type,
                payload: req.payload,
                published_at_ms: now_ms(),
                // From the principal only: nothing in the request says who published.
                publisher: publisher(&ctx),
                payload_type,
            })
            .await?;
        Ok(PublishResponse { sequence })
    }

    async fn replay(&self, ctx: Context, req: ReplayRequest) -> Result<ReplayResponse, Status> {
        validate_topic(&req.topic)?;
        may_read(&ctx, &req.topic)?;
        let limit = match req.limit {
            0 => DEFAULT_REPLAY,
            n if n <= MAX_REPLAY => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit must be 1 to {MAX_REPLAY} (0 means {DEFAULT_REPLAY}), got {n}"
                )));
            }
        };
        let events = self
            .log
            .read(&req.topic, req.after_sequence, limit as usize)
            .await?;
        Ok(ReplayResponse { events })
    }

    async fn subscribe(
        &self,
        ctx: Context,
        req: SubscribeRequest,
    ) -> Result<BoxStream<Result<Event, Status>>, Status> {
        let topics = topics(&req.topics)?;
        for t in &topics {
            may_read(&ctx, t)?;
        }
        // Each topic starts after what the client saw (never past the head: a position from a
        // log that was since emptied must not skip new events), else at the head.
        let mut positions = BTreeMap::new();
        let mut follows = Vec::with_capacity(topics.len());
        for t in topics {
            let head = self.log.head(&t).await?;
            let from = req.after.get(&t).map_or(head, |&a| a.min(head));
            follows.push(self.log.follow(&t, from).await?);
            positions.insert(t, from);
        }
        let first = subscribed(&positions);
        let events = futures_util::stream::select_all(follows)
            .scan(positions, |seen, item| {
                futures_util::future::ready(Some(check_order(seen, item)))
            })
            .flat_map(futures_util::stream::iter);
        Ok(Box::pin(
            futures_util::stream::once(futures_util::future::ready(Ok(first))).chain(events),
        ))
    }
}

/// Drops what the client has seen, and says so before a hole in a topic's numbers.
fn check_order(
    seen: &mut BTreeMap<String, u64>,
    item: Result<Event, Status>,
) -> Vec<Result<Event, Status>> {
    let event = match item {
        Ok(e) => e,
        Err(status) => return vec![Err(status)],
    };
    let last = seen.get(&event.topic).copied().unwrap_or(0);
    if event.sequence <= last {
        return Vec::new();
    }
    seen.insert(event.topic.clone(), event.sequence);
    // From 0 the client asked for whatever is retained: nothing it saw is missing.
    if last > 0 && event.sequence > last + 1 {
        vec![Ok(gap(&event.topic, last, event.sequence)), Ok(event)]
    } else {
        vec![Ok(event)]
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_tests;
