//! Server-Sent Events, with the rules every stream follows, local or remote:
//! - errors before the first event are plain HTTP statuses: headers wait for the first message;
//! - errors after it are a final `event: error` with the Connect error JSON, never a silent end;
//! - a `: ping` comment every `heartbeat` of silence keeps the ALB's idle timer from firing
//!   (real bytes: HTTP/2 PING frames do not reset it);
//! - the stream is pulled, one message at a time, as the client reads: nothing queues up behind a
//!   slow client beyond one message and the socket buffers (a remote stream adds its NATS
//!   subscription's bounded buffer; an overflow drops messages, which shows as a gap in their
//!   numbers and ends the stream with an error), and a client that goes away drops the source,
//!   which stops the work;
//! - a limit on open streams (503 over it), a maximum duration and a maximum gap between
//!   messages, each ending the stream with an error event;
//! - on shutdown every open stream gets a final event telling the client to reconnect;
//! - a player's stream ends when the login session it was opened in is logged out (here at
//!   once, from another replica after the next sync of revoked sessions).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use handlers::kit::keyed_permits::{HeldPermits, KeyedPermits};
use handlers::services::auth::{AuthService, SessionWatch};
use handlers::{Principal, SessionId, Status};
use http::{HeaderValue, header};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::status_response;

/// `[streams]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsConfig {
    /// A comment line after this much silence; well inside the ALB's idle timeout (60 s).
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How long the first message may take; headers are not sent before it.
    #[serde(with = "humantime_serde")]
    pub first_event_timeout: Duration,
    /// The longest silence between two messages of a method's stream (event subscriptions are
    /// idle by nature and have no gap limit).
    #[serde(with = "humantime_serde")]
    pub max_gap: Duration,
    /// The longest a stream stays open; clients of event streams reconnect with Last-Event-ID.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Open streams in this process; over it, new ones get 503.
    pub max_concurrent: usize,
    /// Open streams of one principal (a player or a key); over it, 429. Per process.
    pub max_per_principal: usize,
    /// Open streams from one client address (an IPv6 /64), whoever they are; over it, 429.
    /// Generous: many players may share one carrier-grade NAT address. Per process.
    pub max_per_address: usize,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            heartbeat: Duration::from_secs(15),
            first_event_timeout: Duration::from_secs(30),
            max_gap: Duration::from_secs(300),
            max_duration: Duration::from_secs(3600),
            max_concurrent: 10_000,
            max_per_principal: 32,
            max_per_address: 1_000,
        }
    }
}

impl StreamsConfig {
    /// Positive durations, a heartbeat shorter than the gap, room for one stream.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat.is_zero()
            || self.first_event_timeout.is_zero()
            || self.max_gap.is_zero()
            || self.max_duration.is_zero()
        {
            return Err("streams: every duration must be above zero".into());
        }
        if self.max_concurrent == 0 || self.max_per_principal == 0 || self.max_per_address == 0 {
            return Err(
                "streams.max_concurrent, max_per_principal and max_per_address must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The open streams of this process.
#[derive(Debug)]
pub struct Streams {
    /// The limits.
    pub config: StreamsConfig,
    permits: Arc<Semaphore>,
    /// Streams open per principal and per address key.
    held: KeyedPermits<Holder>,
    closing: CancellationToken,
    /// Where logouts are heard; streams of a logged-out session end.
    sessions: Option<Arc<AuthService>>,
}

/// Whom a stream counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Principal(String),
    Address(IpAddr),
}

/// One open stream's slots: the process's, its principal's and its address's. Given back when
/// the stream ends.
#[derive(Debug)]
pub struct StreamPermit {
    _global: OwnedSemaphorePermit,
    _mine: HeldPermits<Holder>,
    session: Option<SessionWatch>,
}

impl Streams {
    /// Room for `config.max_concurrent` streams.
    pub fn new(config: StreamsConfig) -> Self {
        Streams {
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            held: KeyedPermits::default(),
            config,
            closing: CancellationToken::new(),
            sessions: None,
        }
    }

    /// Ends each player's stream when its login session is logged out in `auth`.
    #[must_use]
    pub fn ending_on_logout(mut self, auth: Arc<AuthService>) -> Self {
        self.sessions = Some(auth);
        self
    }

    /// A slot for one more stream of `principal` from `addr`: 429 at once when either has its
    /// share open, 503 when the process is full.
    pub fn admit(
        &self,
        principal: Option<&Principal>,
        addr: Option<IpAddr>,
    ) -> Result<StreamPermit, Status> {
        let mut holders = Vec::with_capacity(2);
        if let Some(p) = principal {
            holders.push((
                Holder::Principal(p.describe()),
                self.config.max_per_principal,
            ));
        }
        if let Some(a) = addr {
            holders.push((
                Holder::Address(handlers::services::auth::guard::address_key(a)),
                self.config.max_per_address,
            ));
        }
        let global = self.admit_global()?;
        let mine = self.held.take(&holders).map_err(|full| {
            crate::stats::refused("streams_per_client");
            let (whose, max) = match &holders[full] {
                (Holder::Principal(_), max) => ("you have", max),
                (Holder::Address(_), max) => ("your address has", max),
            };
            Status::new(
                handlers::Code::ResourceExhausted,
                format!("{whose} {max} streams open; close one first"),
            )
            .with_retry_after(Duration::from_secs(5))
        })?;
        Ok(StreamPermit {
            _global: global,
            _mine: mine,
            session: None,
        })
    }

    /// [`Streams::admit`] for a request's principal and client address, watching its login
    /// session, if it has one.
    pub fn admit_request(&self, parts: &http::request::Parts) -> Result<StreamPermit, Status> {
        let mut permit = self.admit(
            parts.extensions.get::<Principal>(),
            parts
                .extensions
                .get::<crate::layers::client_addr::ClientAddr>()
                .map(|a| a.0),
        )?;
        if let (Some(auth), Some(sid)) = (&self.sessions, parts.extensions.get::<SessionId>()) {
            let Some(watch) = auth.watch_session(&sid.0) else {
                return Err(Status::unauthenticated(
                    "this session was logged out; log in again",
                ));
            };
            permit.session = Some(watch);
        }
        Ok(permit)
    }

    fn admit_global(&self) -> Result<OwnedSemaphorePermit, Status> {
        if self.closing.is_cancelled() {
            crate::stats::refused("draining");
            return Err(Status::unavailable(
                "the server is shutting down; reconnect",
                Duration::from_secs(1),
            ));
        }
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            crate::stats::refused("streams");
            Status::unavailable(
                format!(
                    "too many open streams ({}); retry shortly",
                    self.config.max_concurrent
                ),
                Duration::from_secs(2),
            )
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.config.max_concurrent - self.permits.available_permits()
    }

    /// Ends every open stream with a reconnect event (on shutdown).
    pub fn close(&self) {
        self.closing.cancel();
    }
}

/// One SSE message: optional `id:` and `event:` lines, then the data (split on newlines).
pub fn frame(id: Option<&str>, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 32);
    if let Some(id) = id {
        b.put_slice(b"id: ");
        b.put_slice(id.as_bytes());
        b.put_u8(b'\n');
    }
    if let Some(event) = event {
        b.put_slice(b"event: ");
        b.put_slice(event.as_bytes());
        b.put_u8(b'\n');
    }
    for line in data.split(|&c| c == b'\n') {
        b.put_slice(b"data: ");
        b.put_slice(line.strip_suffix(b"\r").unwrap_or(line));
        b.put_u8(b'\n');
    }
    b.put_u8(b'\n');
    b.freeze()
}

/// `event: error` with the Connect error JSON.
pub fn connect_error(status: &Status) -> Bytes {
    frame(
        None,
        Some("error"),
        &crate::error::error_json(status.code(), status.message()),
    )
}

/// How one kind of stream frames its end and its errors.
#[derive(Clone)]
pub struct Shape {
    /// Sent after the last message of a stream that ended well.
    pub end: Option<Bytes>,
    /// Frames an error after the first message.
    pub error: fn(&Status) -> Bytes,
    /// Frames an error before the first message (an HTTP response).
    pub error_response: fn(&Status) -> Response,
    /// Whether the gap limit applies (not to idle-by-nature event subscriptions).
    pub gap_limit: bool,
}

impl Shape {
    /// Method streams on the Connect path: `event: end` when done, Connect error JSON.
    pub fn connect() -> Shape {
        Shape {
            end: Some(frame(None, Some("end"), b"{}")),
            error: connect_error,
            error_response: status_response,
            gap_limit: true,
        }
    }
}

/// A source of ready-made frames (each a whole SSE message).
pub type Frames = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send + 'static>>;

struct Pump {
    source: Frames,
    first: Option<Bytes>,
    shape: Shape,
    heartbeat: Duration,
    max_gap: Duration,
    ends_at: Instant,
    last_message: Instant,
    closing: CancellationToken,
    done: bool,
    /// Open while the stream is; ends with how it ended (when tracing is on).
    span: tracing::Span,
    /// The player's login session, when the stream has one.
    session: Option<SessionWatch>,
    _permit: StreamPermit,
}

impl Pump {
    fn finish(&mut self, how: &str) {
        self.done = true;
        crate::trace::record_stream_end(&self.span, how);
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        if !self.done {
            crate::trace::record_stream_end(&self.span, "client_gone");
        }
    }
}

impl Pump {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.done {
            return None;
        }
        let gap_at = self.last_message + self.max_gap;
        let idle = tokio::time::sleep(self.heartbeat);
        let has_session = self.session.is_some();
        let logged_out = async {
            match &mut self.session {
                Some(watch) => watch.ended().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = self.closing.cancelled() => {
                self.finish("shutdown");
                let mut b = BytesMut::from(&b"retry: 1000\n"[..]);
                b.extend_from_slice(&(self.shape.error)(&Status::unavailable(
                    "the server is shutting down; reconnect",
                    Duration::from_secs(1),
                )));
                Some(b.freeze())
            }
            // Before the source: a source always ready (a backlog, a fast generation) must not
            // keep a logged-out session's stream, or one past its maximum duration, alive.
            () = tokio::time::sleep_until(self.ends_at) => {
                self.finish("max_duration");
                Some((self.shape.error)(&Status::deadline_exceeded(
                    "the stream reached its maximum duration; reconnect to continue",
                )))
            }
            () = logged_out, if has_session => {
                self.finish("logged_out");
                Some((self.shape.error)(&Status::unauthenticated(
                    "this session was logged out; log in again",
                )))
            }
            item = self.source.next() => {
                self.last_message = Instant::now();
                match item {
                    Some(Ok(bytes)) => Some(bytes),
                    Some(Err(status)) => {
                        self.finish(&format!("error:{}", status.code().as_str()));
                        Some((self.shape.error)(&status))
                    }
                    None => {
                        self.finish("end");
                        self.shape.end.clone()
                    }
                }
            }
            () = tokio::time::sleep_until(gap_at), if self.shape.gap_limit => {
                self.finish("max_gap");
                Some((self.shape.error)(&Status::deadline_exceeded(format!(
                    "no message for {} s; the stream was ended",
                    self.max_gap.as_secs()
                ))))
            }
            () = idle => Some(Bytes::from_static(b": ping\n\n")),
        }
    }
}

/// Serves `source` as SSE under the rules, holding `permit` until the stream ends.
pub async fn respond(
    streams: &Streams,
    mut permit: StreamPermit,
    mut source: Frames,
    shape: Shape,
) -> Response {
    let config = &streams.config;
    let started = Instant::now();
    // Headers wait for the first message, so an early failure is an ordinary HTTP status.
    let first = tokio::select! {
        r = tokio::time::timeout(config.first_event_timeout, source.next()) => r,
        () = streams.closing.cancelled() => {
            return (shape.error_response)(&Status::unavailable("the server is shutting down; reconnect", Duration::from_secs(1)));
        }
    };
    let (first, done) = match first {
        Err(_) => {
            return (shape.error_response)(&Status::deadline_exceeded(format!(
                "the stream sent nothing within {} s",
                config.first_event_timeout.as_secs()
            )));
        }
        Ok(Some(Err(status))) => return (shape.error_response)(&status),
        Ok(Some(Ok(bytes))) => (Some(bytes), false),
        Ok(None) => (shape.end.clone(), true),
    };
    let pump = Pump {
        source,
        first,
        heartbeat: config.heartbeat,
        max_gap: config.max_gap,
        ends_at: started + config.max_duration,
        last_message: Instant::now(),
        closing: streams.closing.clone(),
        done,
        shape,
        span: crate::trace::stream_span(),
        session: permit.session.take(),
        _permit: permit,
    };
    if done {
        crate::trace::record_stream_end(&pump.span, "end");
    }
    let body = futures_util::stream::unfold(pump, |mut p| async move {
        p.next()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), p))
    });
    let mut res = Response::new(Body::from_stream(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx must pass each event on at once.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// Whether the client asked for SSE.
pub fn wants_sse(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().starts_with("text/event-stream"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use handlers::Code;

    #[test]
    fn frames() {
        assert_eq!(&frame(None, None, b"{}")[..], b"data: {}\n\n");
        assert_eq!(
            &frame(Some("world:7"), Some("tick"), b"a\nb")[..],
            b"id: world:7\nevent: tick\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn accept_header() {
        let mut h = http::HeaderMap::new();
        assert!(!wants_sse(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(wants_sse(&h));
    }

    #[tokio::test]
    async fn the_limit_refuses_at_once_and_frees_on_drop() {
        let s = Streams::new(StreamsConfig {
            max_concurrent: 1,
            ..Default::default()
        });
        let p = s.admit(None, None).unwrap();
        assert_eq!(s.open(), 1);
        assert_eq!(s.admit(None, None).unwrap_err().code(), Code::Unavailable);
        drop(p);
        assert!(s.admit(None, None).is_ok());
        s.close();
        assert!(s.admit(None, None).is_err());
    }
}
