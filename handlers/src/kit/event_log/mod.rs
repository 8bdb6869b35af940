//! The event log beneath the event bus: where events live ([`EventLog`]), its two backends (a
//! bounded log per topic in the store, [`StoreLog`]; a JetStream stream, [`JetStreamLog`]), and
//! the rules every reader and writer shares (topics, the subscription markers).
//!
//! Either way a topic's sequence numbers grow by one per event while the events are retained, and
//! a subscription resumes after the last sequence the client saw without losing or repeating an
//! event. A subscription's first message is a marker of type [`SUBSCRIBED`] whose payload gives
//! each topic's position, so a client can resume even before its first event; a marker of type
//! [`GAP`] says that events the client asked for are no longer retained (never a silent hole).
//!
//! Kit: imports nothing from the services.

mod hub;
mod jetstream;
mod store_log;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use pbjson_types::{Struct, Value, value::Kind};
use proto::BoxStream;
use proto::aicore::events::v1::{Event, PublishRequest};

pub use jetstream::JetStreamLog;
pub use store_log::StoreLog;

use crate::kit::context::validate_player_id;
use crate::kit::status::Status;

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

pub fn gap(topic: &str, after: u64, next: u64) -> Event {
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

/// The Publish request for a backend event: `msg` in proto3 JSON (as the API writes it: 64-bit
/// integers as strings, enums by name) on `topic`, under the type its message declares. Built
/// from the message only, so the event says a fact in the API's shape.
pub fn typed_event<M>(topic: String, msg: &M) -> Result<PublishRequest, Status>
where
    M: proto::EventMessage + serde::Serialize,
{
    let payload = serde_json::to_value(msg)
        .and_then(serde_json::from_value)
        .map_err(|e| Status::internal(format!("{} payload: {e}", M::TYPE)))?;
    Ok(PublishRequest {
        topic,
        r#type: M::TYPE.to_owned(),
        payload: Some(payload),
    })
}

/// Now, as an event's `published_at_ms`.
pub fn now_ms() -> i64 {
    i64::try_from(crate::kit::clock::now_ms()).unwrap_or(i64::MAX)
}
