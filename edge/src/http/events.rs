//! The event bus over SSE: `GET /v1/events?topics=a,b` and the Connect path of
//! `EventBusService/Subscribe`. Every message carries an `id:` that is the subscription's whole
//! position (`topic:sequence` for each topic, e.g. `player.ab12…:4,world:17`), so a client that
//! reconnects with `Last-Event-ID` resumes every topic exactly where it left off, on this replica
//! or (with the JetStream log) another one.
//!
//! The first message is `event: subscribed` (its id is the starting position, so even a client
//! that saw no event yet resumes without loss); events follow as plain `data:` messages; an
//! `event: gap` says events the client asked for are no longer retained.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt as _;
use handlers::kit::event_log::{EventLog, GAP, JetStreamLog, Retention, SUBSCRIBED, StoreLog};
use handlers::kit::store::Store;
use handlers::{Context, Principal, Status};
use http::HeaderMap;
use prost::Message as _;
use proto::aicore::events::v1::{Event, SubscribeRequest};
use proto::{Codec, Encoded, MethodDesc};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

use crate::error::status_response;
use crate::http::Api;
use crate::http::sse::{self, Shape};
use crate::router::Call;

/// `[events]` in the config file. The log follows the store: the embedded store keeps events in
/// this process's store; the JetStream store puts them in a JetStream stream every replica shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The newest events kept per topic.
    pub retain_per_topic: u64,
    /// How long the JetStream log keeps an event.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The JetStream stream's name.
    pub stream: String,
    /// The stream's subjects: `<subject_prefix>.<topic>`.
    pub subject_prefix: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let r = Retention::default();
        EventsConfig {
            retain_per_topic: r.per_topic,
            max_age: r.max_age,
            stream: "EDGE_EVENTS".into(),
            subject_prefix: "edge.events".into(),
        }
    }
}

impl EventsConfig {
    /// Retention within reason, NATS-valid names.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.retain_per_topic) {
            return Err("events.retain_per_topic must be 1 to 1000000".into());
        }
        if self.max_age < Duration::from_secs(1) {
            return Err("events.max_age must be at least 1s".into());
        }
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !token(&self.stream) {
            return Err("events.stream must be letters, digits, '_' or '-'".into());
        }
        if !self.subject_prefix.split('.').all(token) {
            return Err(
                "events.subject_prefix must be dot-separated tokens of letters, digits, '_' or '-'"
                    .into(),
            );
        }
        Ok(())
    }

    fn retention(&self) -> Retention {
        Retention {
            per_topic: self.retain_per_topic,
            max_age: self.max_age,
        }
    }
}

/// The event log the store calls for: a JetStream stream (with its replicas) beside a JetStream
/// store, otherwise the store itself.
pub async fn open_log(
    events: &EventsConfig,
    store: &Arc<dyn Store>,
    jetstream: Option<(&async_nats::Client, usize)>,
) -> Result<Arc<dyn EventLog>, String> {
    match jetstream {
        Some((client, replicas)) => Ok(Arc::new(
            JetStreamLog::open(
                client.clone(),
                &events.stream,
                &events.subject_prefix,
                replicas,
                &events.retention(),
            )
            .await?,
        )),
        None => {
            let log = StoreLog::new(Arc::clone(store), events.retention());
            let moved = log
                .migrate_legacy()
                .await
                .map_err(|e| format!("cannot move events to the current key layout: {e}"))?;
            if moved > 0 {
                tracing::info!(moved, "moved stored events to the current key layout");
            }
            Ok(Arc::new(log))
        }
    }
}

/// The method behind every event subscription.
pub fn subscribe_method() -> Option<&'static MethodDesc> {
    proto::method_by_path("/aicore.events.v1.EventBusService/Subscribe")
}

/// A subscription's position as an SSE id: `topic:seq` per topic, by topic name.
fn cursor_id(positions: &BTreeMap<String, u64>) -> String {
    let mut id = String::with_capacity(positions.len() * 24);
    for (i, (topic, seq)) in positions.iter().enumerate() {
        if i > 0 {
            id.push(',');
        }
        id.push_str(topic);
        id.push(':');
        id.push_str(&seq.to_string());
    }
    id
}

/// Reads an id [`cursor_id`] wrote.
fn parse_cursor(id: &str) -> Result<BTreeMap<String, u64>, Status> {
    let bad = || Status::invalid_argument("Last-Event-ID is not an id this server sent");
    let mut out = BTreeMap::new();
    if id.is_empty() {
        return Ok(out);
    }
    for part in id.split(',') {
        let (topic, seq) = part.rsplit_once(':').ok_or_else(bad)?;
        handlers::kit::event_log::validate_topic(topic).map_err(|_| bad())?;
        out.insert(topic.to_owned(), seq.parse().map_err(|_| bad())?);
        if out.len() > handlers::kit::event_log::MAX_TOPICS {
            return Err(bad());
        }
    }
    Ok(out)
}

/// `Last-Event-ID` positions (the header, else `fallback`: the `lastEventId` query parameter of
/// a browser that reconnects with a new ticket, as `EventSource` cannot set the header) override
/// the request's own for the topics it names.
fn resume_from(
    headers: &HeaderMap,
    fallback: Option<&str>,
    req: &mut SubscribeRequest,
) -> Result<(), Status> {
    let id = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .map_err(|_| Status::invalid_argument("Last-Event-ID is not an id this server sent"))?,
        None => match fallback {
            Some(id) => id,
            None => return Ok(()),
        },
    };
    for (topic, seq) in parse_cursor(id.trim())? {
        if req.topics.contains(&topic) {
            req.after.insert(topic, seq);
        }
    }
    Ok(())
}

/// `GET /v1/events?topics=a,b` (`topics` may also repeat; `ticket` is the authentication layer's,
/// `lastEventId` stands in for the header).
pub async fn get(State(state): State<Api>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let Ok(axum::extract::Query(pairs)) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
    else {
        return status_response(&Status::invalid_argument(
            "the query string does not parse; use topics=a,b",
        ));
    };
    let mut topics = Vec::new();
    let mut last_event_id = None;
    for (k, v) in pairs {
        match k.as_str() {
            "topics" => topics.extend(v.split(',').filter(|t| !t.is_empty()).map(str::to_owned)),
            "lastEventId" => last_event_id = Some(v),
            // Spent by the authentication layer; never echoed or logged.
            "ticket" => {}
            _ => {
                return status_response(&Status::invalid_argument(format!(
                    "unknown query parameter {k:?}; use topics=a,b (and ticket, lastEventId)"
                )));
            }
        }
    }
    let permit = match state.streams.admit_request(&parts) {
        Ok(p) => p,
        Err(status) => return status_response(&status),
    };
    let ctx = Context {
        principal: parts.extensions.get::<Principal>().cloned(),
        deadline: Some(Instant::now() + state.streams.config.max_duration),
        request_id: header(&parts.headers, "x-request-id").unwrap_or_default(),
        idempotency_key: None,
        traceparent: crate::trace::client_traceparent(&parts.headers),
        client_addr: parts
            .extensions
            .get::<crate::layers::client_addr::ClientAddr>()
            .map(|a| a.0),
        chain: Vec::new(),
        session: parts.extensions.get::<handlers::SessionId>().cloned(),
        // A client's own call: its principal pays.
        origin: None,
        accept_language: parts
            .headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(handlers::kit::context::accept_language),
    };
    let req = SubscribeRequest {
        topics,
        after: Default::default(),
    };
    serve(
        &state,
        permit,
        ctx,
        &parts.headers,
        last_event_id.as_deref(),
        req,
    )
    .await
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
}

/// Runs a subscription through the router (local or remote, with its limits) and streams it.
pub async fn serve(
    state: &Api,
    permit: crate::http::sse::StreamPermit,
    ctx: Context,
    headers: &HeaderMap,
    last_event_id: Option<&str>,
    mut req: SubscribeRequest,
) -> Response {
    if let Err(status) = resume_from(headers, last_event_id, &mut req) {
        return status_response(&status);
    }
    let Some(method) = subscribe_method() else {
        return status_response(&Status::internal(
            "events Subscribe missing from the descriptors",
        ));
    };
    let call = Call {
        method,
        codec: Codec::Proto,
        body: Bytes::from(req.encode_to_vec()),
        ctx,
    };
    let stream = match state.calls.clone().oneshot(call).await {
        Ok(Encoded::Stream(s)) => s,
        Ok(Encoded::Unary(_)) => {
            return status_response(&Status::internal("events Subscribe returned one message"));
        }
        Err(status) => return status_response(&status),
    };
    let frames = stream.scan(BTreeMap::new(), |positions, item| {
        futures_util::future::ready(Some(item.and_then(|bytes| render(positions, &bytes))))
    });
    sse::respond(
        &state.streams,
        permit,
        Box::pin(frames),
        Shape {
            gap_limit: false,
            ..Shape::connect()
        },
    )
    .await
}

/// One SSE message for one bus message, moving the position on.
fn render(positions: &mut BTreeMap<String, u64>, bytes: &[u8]) -> Result<Bytes, Status> {
    let event = Event::decode(bytes)
        .map_err(|e| Status::bad_gateway(format!("an event does not decode: {e}")))?;
    let name = match event.r#type.as_str() {
        SUBSCRIBED => {
            *positions = handlers::kit::event_log::positions_of(&event);
            Some("subscribed")
        }
        GAP => Some("gap"),
        _ => {
            positions.insert(event.topic.clone(), event.sequence);
            None
        }
    };
    let json = proto::codec::to_json_vec(&event).map_err(Status::internal)?;
    Ok(sse::frame(Some(&cursor_id(positions)), name, &json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let p: BTreeMap<String, u64> = [("world".to_owned(), 17), ("weather".to_owned(), 0)].into();
        let id = cursor_id(&p);
        assert_eq!(id, "weather:0,world:17");
        assert_eq!(parse_cursor(&id).unwrap(), p);
        assert!(parse_cursor("").unwrap().is_empty());
        for bad in ["world", "world:x", "a b:1", "world:-1", ":3"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn last_event_id_overrides_named_topics_only() {
        let mut h = HeaderMap::new();
        h.insert("last-event-id", "world:5,weather:2".parse().unwrap());
        let mut req = SubscribeRequest {
            topics: vec!["world".into()],
            after: [("world".to_owned(), 1)].into(),
        };
        resume_from(&h, Some("world:9"), &mut req).unwrap();
        assert_eq!(
            req.after,
            [("world".to_owned(), 5)].into(),
            "the header wins"
        );
        // Without the header, the query parameter's positions apply.
        resume_from(&HeaderMap::new(), Some("world:9,weather:3"), &mut req).unwrap();
        assert_eq!(req.after, [("world".to_owned(), 9)].into());
    }

    #[test]
    fn events_render_with_their_position() {
        let mut positions = BTreeMap::new();
        let marker = handlers::kit::event_log::subscribed(&[("world".to_owned(), 3)].into());
        let f = render(&mut positions, &marker.encode_to_vec()).unwrap();
        assert!(f.starts_with(b"id: world:3\nevent: subscribed\ndata: {"));
        let e = Event {
            topic: "world".into(),
            sequence: 4,
            r#type: "tick".into(),
            ..Event::default()
        };
        let f = render(&mut positions, &e.encode_to_vec()).unwrap();
        let text = std::str::from_utf8(&f).unwrap();
        assert!(text.starts_with("id: world:4\ndata: {"), "{text}");
        assert!(text.contains(r#""sequence":"4""#), "{text}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_last_event_id_parses_or_is_refused(id in ".{0,200}") {
                let _ = parse_cursor(&id);
                let mut h = HeaderMap::new();
                if let Ok(v) = http::HeaderValue::from_str(&id) {
                    h.insert("last-event-id", v);
                }
                let mut req = SubscribeRequest { topics: vec!["world".into()], after: Default::default() };
                let _ = resume_from(&h, Some(&id), &mut req);
            }

            #[test]
            fn positions_round_trip(
                positions in proptest::collection::btree_map(
                    "[A-Za-z0-9_-]{1,12}(\\.[A-Za-z0-9_-]{1,12}){0,3}", any::<u64>(), 0..8),
            ) {
                let id = cursor_id(&positions);
                prop_assert_eq!(parse_cursor(&id).unwrap(), positions);
            }
        }
    }
}
