//! The Events page: a topic's retained events from a sequence on (server-rendered), and a live
//! tail over SSE read straight from the event log the bus uses. `admin.*` topics may be read here:
//! only the admin listener serves this page.
//!
//! A tail holds one of the edge's stream slots (the same global limit, maximum duration and drain
//! as `/v1/events`: it ends with a final `event: error` when the edge shuts down), ends within
//! [`SESSION_CHECK`] of its session's end (logout, timeout, revoked key), and at most
//! [`TAILS_PER_SESSION`] per session and [`TAILS_IN_TOTAL`] on this replica are open at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use futures_util::StreamExt as _;
use handlers::Status;
use handlers::kit::event_log::{GAP, validate_topic};
use http::{HeaderMap, StatusCode};
use maud::html;
use proto::aicore::events::v1::Event;
use serde::Deserialize;

use super::{Shared, html, pages};
use crate::http::sse::{self, Shape};

/// Live tails one session may hold open; a third is refused with 429.
pub const TAILS_PER_SESSION: usize = 2;
/// Live tails this replica's console holds open at once.
pub const TAILS_IN_TOTAL: usize = 32;
/// How often a tail checks that its session is still live.
pub const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(2);
/// Events the replay list shows.
const REPLAY: usize = 50;

/// The open tails, by session (its CSRF token, which is as unique as the session).
#[derive(Debug, Default)]
pub(super) struct Tails {
    open: Mutex<HashMap<String, usize>>,
}

/// One open tail; dropping it (the stream ended or the browser left) frees its place.
pub(super) struct TailSlot {
    tails: Arc<Tails>,
    session: String,
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.tails.open.lock()
            && let Some(n) = open.get_mut(&self.session)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.session);
            }
        }
    }
}

impl Tails {
    /// A place for one more tail of `session`, if it and the replica have room.
    pub(super) fn take(self: &Arc<Self>, session: &str) -> Result<TailSlot, Status> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| Status::internal("console tails lock poisoned"))?;
        if open.values().sum::<usize>() >= TAILS_IN_TOTAL {
            return Err(Status::new(
                handlers::Code::ResourceExhausted,
                format!(
                    "this replica's console has {TAILS_IN_TOTAL} live tails open; stop one first"
                ),
            )
            .with_retry_after(std::time::Duration::from_secs(5)));
        }
        let mine = open.entry(session.to_owned()).or_default();
        if *mine >= TAILS_PER_SESSION {
            return Err(Status::new(
                handlers::Code::ResourceExhausted,
                format!("you have {TAILS_PER_SESSION} live tails open; stop one first"),
            )
            .with_retry_after(std::time::Duration::from_secs(5)));
        }
        *mine += 1;
        Ok(TailSlot {
            tails: Arc::clone(self),
            session: session.to_owned(),
        })
    }
}

#[derive(Deserialize, Default)]
pub(super) struct TopicQuery {
    #[serde(default)]
    topic: String,
    after: Option<String>,
}

/// The topic asked for, checked; `None` when none was given.
fn topic_of(q: &TopicQuery) -> Result<Option<String>, Status> {
    let topic = q.topic.trim();
    if topic.is_empty() {
        return Ok(None);
    }
    validate_topic(topic)?;
    Ok(Some(topic.to_owned()))
}

fn after_of(q: &TopicQuery) -> Result<Option<u64>, Status> {
    match q.after.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            Status::invalid_argument("the sequence to replay after is a whole number, 0 or more")
        }),
    }
}

/// An event's payload as indented JSON (shown as text: maud escapes it).
fn payload(e: &Event) -> String {
    e.payload
        .as_ref()
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| "(no payload)".to_owned())
}

fn publisher(e: &Event) -> String {
    match &e.publisher {
        Some(p) if !p.service.is_empty() => format!("service {}", p.service),
        Some(p) => p
            .kind()
            .as_str_name()
            .to_lowercase()
            .replace("publisher_kind_", ""),
        None => String::new(),
    }
}

/// `GET /console/events?topic=…&after=…`
pub(super) async fn page(
    State(c): Shared,
    headers: HeaderMap,
    Query(q): Query<TopicQuery>,
) -> Response {
    let session = match c.viewer(&headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let frame = c.frame(&session, "events");
    let asked = topic_of(&q).and_then(|t| Ok((t, after_of(&q)?)));
    let (topic, after) = match asked {
        Ok(v) => v,
        Err(status) => {
            let body = html! { p.error role="alert" { (status.message()) } (form(&q.topic, None)) };
            return html(StatusCode::BAD_REQUEST, pages::page(&frame, "Events", body));
        }
    };
    let log = c.state.events();
    let mut replay = None;
    let mut head = 0;
    if let Some(t) = &topic {
        let read = async {
            let head = log.head(t).await?;
            // Without a sequence, the newest events: the last REPLAY before the head.
            let from = after.unwrap_or(head.saturating_sub(REPLAY as u64));
            Ok::<_, Status>((head, log.read(t, from, REPLAY).await?))
        };
        match read.await {
            Ok((h, events)) => {
                head = h;
                replay = Some(events);
            }
            Err(status) => {
                return html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::message(&frame, "Events", &super::shown(&status)),
                );
            }
        }
    }
    let body = html! {
        (form(&q.topic, after))
        @if let (Some(t), Some(events)) = (&topic, &replay) {
            h2 { "Live tail of " code { (t) } }
            section #tail data-topic=(t) aria-labelledby="tail-heading" {
                p #tail-heading.note {
                    "New events on this topic appear here as they are published (newest first). "
                    "At most " (TAILS_PER_SESSION) " tails per session; a tail ends when the edge shuts down."
                }
                button #tail-toggle type="button" { "Start tail" }
                p #tail-status role="status" aria-live="polite" { "Not started." }
                ol #tail-events {}
            }
            h2 { "Retained events" }
            p.note {
                "The topic's head is sequence " (head) ". "
                @match after {
                    Some(a) => { "Showing up to " (REPLAY) " events after sequence " (a) "." }
                    None => { "Showing the newest " (REPLAY) "; give a sequence to replay from it." }
                }
            }
            @if events.is_empty() {
                p { "No retained event in that range." }
            }
            @for e in events {
                section.entry {
                    h3 { "#" (e.sequence) " · " (e.r#type) }
                    p.note {
                        (super::keys::when(u64::try_from(e.published_at_ms).unwrap_or(0)))
                        @let who = publisher(e);
                        @if !who.is_empty() { " · from " (who) }
                    }
                    pre { (payload(e)) }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        pages::page_with_script(&frame, "Events", body, Some("/console/assets/events.js")),
    )
}

fn form(topic: &str, after: Option<u64>) -> maud::Markup {
    html! {
        form method="get" action="/console/events" {
            p {
                label for="topic" { "Topic" }
                input #topic type="text" name="topic" value=(topic) required
                    placeholder="world, player.<id>, admin.audit" spellcheck="false";
            }
            p {
                label for="after" { "Replay after sequence (optional)" }
                input #after type="text" name="after" inputmode="numeric" pattern="[0-9]*"
                    value=[after];
            }
            button type="submit" { "Show" }
        }
    }
}

/// `GET /console/events/tail?topic=…&after=…`: the live tail as SSE (`event: subscribed`
/// first, then one `data:` per event with its sequence as the id).
pub(super) async fn tail(
    State(c): Shared,
    headers: HeaderMap,
    Query(q): Query<TopicQuery>,
) -> Response {
    // An EventSource cannot follow a redirect to the login page: a plain 401.
    let Ok(session) = c.viewer(&headers).await else {
        return crate::error::status_response(&Status::unauthenticated(
            "log in to the console first",
        ));
    };
    let topic = match topic_of(&q) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return crate::error::status_response(&Status::invalid_argument("name a topic"));
        }
        Err(status) => return crate::error::status_response(&status),
    };
    let after = match after_of(&q) {
        Ok(a) => a,
        Err(status) => return crate::error::status_response(&status),
    };
    let slot = match c.tails.take(&session.csrf) {
        Ok(s) => s,
        Err(status) => return crate::error::status_response(&status),
    };
    // The edge's global stream limit and its drain: the same as every SSE stream.
    let permit = match c.state.api.streams.admit(None, None) {
        Ok(p) => p,
        Err(status) => return crate::error::status_response(&status),
    };
    let log = c.state.events();
    let from = match after {
        Some(a) => a,
        None => match log.head(&topic).await {
            Ok(h) => h,
            Err(status) => return crate::error::status_response(&status),
        },
    };
    let follow = match log.follow(&topic, from).await {
        Ok(f) => f,
        Err(status) => return crate::error::status_response(&status),
    };
    tracing::info!(operator = %session.operator, topic = %topic, "console tail opened");
    let start = serde_json::json!({ "topic": topic, "after": from.to_string() }).to_string();
    let first = sse::frame(
        Some(&from.to_string()),
        Some("subscribed"),
        start.as_bytes(),
    );
    // The slot lives as long as the stream: moved into the closure that renders each event.
    let events =
        futures_util::stream::once(async move { Ok(first) }).chain(follow.map(move |item| {
            let _held = &slot;
            item.and_then(|e| render(&e))
        }));
    let id = c.sessions.id_from(&headers).unwrap_or_default();
    let console = Arc::clone(&c);
    // Yields only when the session has ended: the error is the stream's last word.
    let ended = futures_util::stream::unfold(false, move |done| {
        let (c, id, session) = (Arc::clone(&console), id.clone(), session.clone());
        async move {
            if done {
                return None;
            }
            loop {
                tokio::time::sleep(SESSION_CHECK).await;
                if !c.sessions.is_live(&id) || !c.still_allowed(&session).await {
                    let why = Status::unauthenticated("your console session ended; log in again");
                    return Some((Err(why), true));
                }
            }
        }
    });
    let frames = futures_util::stream::select(events, ended);
    sse::respond(
        &c.state.api.streams,
        permit,
        Box::pin(frames),
        Shape {
            gap_limit: false,
            ..Shape::connect()
        },
    )
    .await
    .into_response()
}

/// One SSE message for one event: `event: gap` for the log's marker, else plain `data:`.
fn render(e: &Event) -> Result<Bytes, Status> {
    let json = proto::codec::to_json_vec(e).map_err(Status::internal)?;
    let name = (e.r#type == GAP).then_some("gap");
    Ok(sse::frame(Some(&e.sequence.to_string()), name, &json))
}

/// The tail's script, served from `/console/assets/events.js` (the CSP allows scripts from this
/// origin only: no inline script, no eval).
pub const SCRIPT: &str = include_str!("events.js");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tails_are_capped_per_session_and_freed_on_drop() {
        let tails = Arc::new(Tails::default());
        let a = tails.take("s1").unwrap();
        let b = tails.take("s1").unwrap();
        let refused = tails.take("s1").err().unwrap();
        assert_eq!(refused.code(), handlers::Code::ResourceExhausted);
        assert!(tails.take("s2").is_ok(), "another session has its own");
        drop(a);
        let c = tails.take("s1").unwrap();
        drop((b, c));
        assert!(tails.open.lock().unwrap().is_empty());
    }

    #[test]
    fn tails_are_capped_in_total() {
        let tails = Arc::new(Tails::default());
        let held: Vec<_> = (0..TAILS_IN_TOTAL)
            .map(|i| tails.take(&format!("s{}", i / 2)).unwrap())
            .collect();
        assert!(tails.take("another").is_err());
        drop(held);
        assert!(tails.take("another").is_ok());
    }

    #[test]
    fn topics_and_sequences_are_checked() {
        let q = |t: &str, a: Option<&str>| TopicQuery {
            topic: t.into(),
            after: a.map(str::to_owned),
        };
        assert_eq!(topic_of(&q("", None)).unwrap(), None);
        assert_eq!(
            topic_of(&q(" admin.audit ", None)).unwrap().as_deref(),
            Some("admin.audit")
        );
        assert!(topic_of(&q("a b", None)).is_err());
        assert!(topic_of(&q("<script>", None)).is_err());
        assert_eq!(after_of(&q("w", Some("7"))).unwrap(), Some(7));
        assert!(after_of(&q("w", Some("-1"))).is_err());
        assert_eq!(after_of(&q("w", Some(""))).unwrap(), None);
    }

    #[test]
    fn events_render_as_sse_with_their_sequence() {
        let e = Event {
            topic: "world".into(),
            sequence: 9,
            r#type: "tick".into(),
            ..Event::default()
        };
        let f = render(&e).unwrap();
        let text = std::str::from_utf8(&f).unwrap();
        assert!(text.starts_with("id: 9\ndata: {"), "{text}");
    }
}
