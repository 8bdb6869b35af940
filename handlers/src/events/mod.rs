//! `aicore.events.v1.EventBusService`: topics with per-topic sequence numbers, published by
//! services (and by a player on their own topic), replayed by sequence, and followed live.
//!
//! Where events live is an [`EventLog`]: the embedded one keeps a bounded log per topic in the
//! store ([`StoreLog`]); the shared one is a JetStream stream ([`JetStreamLog`]), so a client can
//! resume on any replica. Either way a topic's sequence numbers grow by one per event while the
//! events are retained, and a subscription resumes after the last sequence the client saw without
//! losing or repeating an event.
//!
//! A subscription's first message is a marker of type [`SUBSCRIBED`] whose payload gives each
//! topic's position, so a client can resume even before its first event; a marker of type [`GAP`]
//! says that events the client asked for are no longer retained (never a silent hole).

mod embedded;
mod hub;
mod jetstream;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use pbjson_types::{Struct, Value, value::Kind};
use proto::BoxStream;
use proto::aicore::events::v1::{
    Event, EventBusServiceHandler, PublishRequest, PublishResponse, ReplayRequest, ReplayResponse,
    SubscribeRequest,
};

pub use embedded::StoreLog;
pub use jetstream::JetStreamLog;

use crate::context::{Context, Principal, validate_player_id};
use crate::status::Status;

/// The type of a subscription's first message (payload: `{"positions": {topic: sequence}}`).
pub const SUBSCRIBED: &str = "edge.subscribed";
/// The type of the message saying events are missing (payload: `{"after": n, "next": m}`).
pub const GAP: &str = "edge.gap";
/// Most topics in one subscription.
pub const MAX_TOPICS: usize = 16;
/// Longest topic name.
pub const MAX_TOPIC_LEN: usize = 128;
/// Largest encoded event payload.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
const MAX_TYPE_LEN: usize = 64;
const DEFAULT_REPLAY: u32 = 100;
const MAX_REPLAY: u32 = 1000;

/// How long events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The newest events kept per topic.
    pub per_topic: u64,
    /// How long an event is kept (the JetStream log; the embedded log keeps `per_topic`).
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            per_topic: 1000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Where events are kept: appended with the next sequence of their topic, read back in order.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `event` (its topic, type, payload and time) as the topic's next event; returns its
    /// sequence.
    async fn append(&self, event: Event) -> Result<u64, Status>;

    /// The topic's last sequence (0 if it has no event).
    async fn head(&self, topic: &str) -> Result<u64, Status>;

    /// Retained events of `topic` after `after`, oldest first, at most `limit`.
    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status>;

    /// Every event of `topic` after `after`, then each new one as it is appended; never ends on its
    /// own. Dropping the stream stops following.
    async fn follow(
        &self,
        topic: &str,
        after: u64,
    ) -> Result<BoxStream<Result<Event, Status>>, Status>;

    /// The backend's name, for status pages.
    fn backend(&self) -> &'static str;
}

/// Topics are 1 to 8 dot-separated segments of `[A-Za-z0-9_-]`, at most 128 characters; a
/// topic under `player.` is exactly `player.<playerId>`, and the bare `player` is reserved.
pub fn validate_topic(topic: &str) -> Result<(), Status> {
    let segments_ok = topic.split('.').all(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if topic.is_empty()
        || topic.len() > MAX_TOPIC_LEN
        || !segments_ok
        || topic.split('.').count() > 8
    {
        return Err(Status::invalid_argument(format!(
            "topic {:?} is not valid: 1 to 8 dot-separated segments of letters, digits, '_' or '-', at most {MAX_TOPIC_LEN} characters",
            truncate(topic)
        )));
    }
    if topic == "player" {
        return Err(Status::invalid_argument(
            "topic \"player\" is reserved; a player topic is player.<playerId>",
        ));
    }
    if let Some(rest) = topic.strip_prefix("player.") {
        validate_player_id(rest).map_err(|_| {
            Status::invalid_argument("a player topic is player.<playerId> (32 hex digits)")
        })?;
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_TOPIC_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Whether the caller may read `topic`: services read everything, a player reads public topics
/// and their own `player.<id>`.
pub fn may_read(ctx: &Context, topic: &str) -> Result<(), Status> {
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

/// Whether the caller may publish to `topic`: services anywhere, a player only on their own topic,
/// and never an event type named after a service (`quest.completed` is the quest service's word,
/// so a game server can trust it).
pub fn may_publish(ctx: &Context, topic: &str, kind: &str) -> Result<(), Status> {
    match &ctx.principal {
        Some(Principal::Service { .. }) => Ok(()),
        Some(Principal::Player { player_id }) => {
            if let Some(svc) = kind
                .split_once('.')
                .and_then(|(head, _)| proto::ServiceDesc::by_short(head))
            {
                return Err(Status::permission_denied(format!(
                    "event types {}.* are published by the {} service only",
                    svc.short, svc.short
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

fn number(n: u64) -> Value {
    // Sequences stay far below 2^53, where f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn object(fields: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields.into_iter().collect(),
        })),
    }
}

/// The marker that opens a subscription.
pub fn subscribed(positions: &BTreeMap<String, u64>) -> Event {
    Event {
        r#type: SUBSCRIBED.into(),
        payload: Some(object([(
            "positions".to_owned(),
            object(positions.iter().map(|(t, s)| (t.clone(), number(*s)))),
        )])),
        published_at_ms: now_ms(),
        ..Event::default()
    }
}

/// The positions in a [`SUBSCRIBED`] marker.
pub fn positions_of(marker: &Event) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Some(Value {
        kind: Some(Kind::StructValue(s)),
    }) = &marker.payload
        && let Some(Value {
            kind: Some(Kind::StructValue(p)),
        }) = s.fields.get("positions")
    {
        for (topic, v) in &p.fields {
            if let Some(Kind::NumberValue(n)) = v.kind
                && n >= 0.0
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                out.insert(topic.clone(), n as u64);
            }
        }
    }
    out
}

fn gap(topic: &str, after: u64, next: u64) -> Event {
    Event {
        topic: topic.to_owned(),
        r#type: GAP.into(),
        payload: Some(object([
            ("after".to_owned(), number(after)),
            ("next".to_owned(), number(next)),
        ])),
        published_at_ms: now_ms(),
        ..Event::default()
    }
}

fn now_ms() -> i64 {
    i64::try_from(crate::now_ms()).unwrap_or(i64::MAX)
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
        if req.r#type.starts_with("edge.") {
            return Err(Status::invalid_argument(
                "types starting with \"edge.\" are reserved for the bus's own markers",
            ));
        }
        let size = req.payload.as_ref().map_or(0, prost::Message::encoded_len);
        if size > MAX_PAYLOAD_BYTES {
            return Err(Status::payload_too_large(format!(
                "payload is {size} bytes encoded; at most {MAX_PAYLOAD_BYTES}"
            )));
        }
        let sequence = self
            .log
            .append(Event {
                topic: req.topic,
                sequence: 0,
                r#type: req.r#type,
                payload: req.payload,
                published_at_ms: now_ms(),
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
