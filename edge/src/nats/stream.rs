//! Streams over NATS (DESIGN section 4). The edge subscribes to a fresh inbox and flushes before
//! it publishes the request (with the inbox as reply subject and `Edge-Stream: 1`), so no message
//! can arrive before the subscription exists. The worker answers with numbered messages
//! (`Edge-Seq: 1, 2, ...`) and a last one that says how the stream ended (`Edge-End: ok`, or
//! `error` with the usual error headers). A gap or reordering in the numbers (a slow-consumer drop,
//! a lost worker) ends the stream with an error, never a silent hole. When the edge stops reading
//! (the client went away), it publishes on `<inbox>.cancel`, which the worker subscribed to before
//! it started, and the worker drops the work. A quiet stream carries unnumbered heartbeats, so a
//! worker that died (rather than ended its stream) is noticed within a few of them.
//!
//! Version 2 of the contract (`Edge-Stream: 2`) lets the worker coalesce: a message marked
//! `Edge-Frame: 1` carries several stream items, each length-delimited (a protobuf varint length,
//! then the bytes), so a fast generator costs one NATS message per frame, not per token. The
//! first item goes at once; later ones wait at most [`FRAME_LINGER`] for company, and a frame
//! never grows past [`FRAME_MAX_BYTES`]. The last frame may carry `Edge-End` with its items. The
//! edge still hands on one item at a time (one SSE event per token). A worker answers version 1
//! (one item per message) to an edge that asks for it, and this edge reads both forms, so edges
//! and workers of either version can be upgraded in any order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::{HeaderMap, Subscriber};
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use futures_util::StreamExt as _;
use handlers::{Context, Status};
use proto::{BoxStream, Codec, Encoded, MethodDesc};
use tokio_util::sync::CancellationToken;

use super::headers;

/// Marks a request whose answer is a stream; its value is the newest contract version the edge
/// reads (1: one item per message; 2: frames).
pub const STREAM: &str = "Edge-Stream";
/// The contract version this edge asks for.
const STREAM_VERSION: &str = "2";
/// On a message whose payload is a frame of length-delimited items (version 2).
pub const FRAME: &str = "Edge-Frame";
/// How long a worker holds a frame open for more items once it has one (never the first item).
const FRAME_LINGER: Duration = Duration::from_millis(2);
/// A frame is sent once its items reach this many bytes.
const FRAME_MAX_BYTES: usize = 16 * 1024;
/// The message's number, from 1.
pub const SEQ: &str = "Edge-Seq";
/// On the last message: `ok` or `error`.
pub const END: &str = "Edge-End";
/// On the first message and on heartbeats: the worker promises a message (a heartbeat when it has
/// nothing else) at least this often, in milliseconds.
pub const HEARTBEAT_MS: &str = "Edge-Heartbeat-Ms";
/// How often a worker sends something on a quiet stream (event subscriptions are quiet for long).
const WORKER_HEARTBEAT: Duration = Duration::from_secs(5);
/// Silence, in heartbeats, after which the edge takes the worker for lost.
const MISSED_HEARTBEATS: u32 = 4;

/// The subject the worker listens on for the edge's cancel.
pub fn cancel_subject(reply: &str) -> String {
    format!("{reply}.cancel")
}

/// Tells the worker to stop when the stream is dropped before its end.
struct CancelOnDrop {
    client: async_nats::Client,
    subject: String,
    ended: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let client = self.client.clone();
        let subject = std::mem::take(&mut self.subject);
        // Publishing only enqueues on the connection; the task ends within microseconds and
        // nothing waits for it (Drop cannot await).
        tokio::spawn(async move {
            let _ = client.publish(subject, Bytes::new()).await;
        });
    }
}

/// Opens a stream on `subject`: subscribe, flush, publish, wait for the first message. Errors
/// before the first message come back here (so they become HTTP statuses); later ones are items.
pub async fn open(
    client: &async_nats::Client,
    up: &tokio::sync::watch::Receiver<bool>,
    subject: async_nats::Subject,
    mut request_headers: HeaderMap,
    payload: Bytes,
    first_timeout: Duration,
    service: &'static str,
) -> Result<BoxStream<Result<Bytes, Status>>, Status> {
    let inbox = client.new_inbox();
    let bus_failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, service, "NATS stream setup failed");
        Status::unavailable("the message bus failed the request", Duration::from_secs(1))
    };
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| bus_failed(&e))?;
    client.flush().await.map_err(|e| bus_failed(&e))?;
    request_headers.insert(STREAM, STREAM_VERSION);
    client
        .publish_with_reply_and_headers(subject, inbox.clone(), request_headers, payload)
        .await
        .map_err(|e| bus_failed(&e))?;
    let mut guard = CancelOnDrop {
        client: client.clone(),
        subject: cancel_subject(&inbox),
        ended: false,
    };
    let mut up = up.clone();
    let first = tokio::select! {
        m = tokio::time::timeout(first_timeout, sub.next()) => m,
        _ = up.wait_for(|up| !*up) => {
            return Err(Status::unavailable(format!("the connection to {service}'s workers was lost"), Duration::from_secs(1)));
        }
    };
    let first = match first {
        Err(_) => {
            return Err(Status::deadline_exceeded(format!(
                "the {service} worker did not start the stream within {} ms",
                first_timeout.as_millis()
            )));
        }
        Ok(None) => {
            return Err(Status::unavailable(
                "the message bus closed the stream",
                Duration::from_secs(1),
            ));
        }
        Ok(Some(m)) => m,
    };
    if first.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        guard.ended = true;
        return Err(Status::unavailable(
            format!("no worker is serving {service}"),
            Duration::from_secs(1),
        ));
    }
    let mut state = Reader {
        sub,
        up,
        expected: 1,
        guard,
        pending: Some(first),
        service,
        finished: false,
        liveness: None,
        items: VecDeque::new(),
        tail: None,
    };
    // An error as the very first message is the call's error (a plain HTTP status upstream).
    match state.read().await {
        Some(Err(status)) => Err(status),
        None => Ok(Box::pin(futures_util::stream::empty())),
        Some(Ok(first)) => {
            let rest = futures_util::stream::unfold(state, |mut s| async move {
                s.read().await.map(|item| (item, s))
            });
            Ok(Box::pin(
                futures_util::stream::iter([Ok(first)]).chain(rest),
            ))
        }
    }
}

struct Reader {
    sub: Subscriber,
    up: tokio::sync::watch::Receiver<bool>,
    expected: u64,
    guard: CancelOnDrop,
    pending: Option<async_nats::Message>,
    service: &'static str,
    finished: bool,
    /// The longest silence tolerated, once the worker said it sends heartbeats.
    liveness: Option<Duration>,
    /// Items of the last frame not handed on yet.
    items: VecDeque<Bytes>,
    /// How the stream ended, once a message said so, to be told after `items`: `None` for a
    /// clean end.
    tail: Option<Option<Status>>,
}

impl Reader {
    /// The next item, the stream's error, or None at its end.
    async fn read(&mut self) -> Option<Result<Bytes, Status>> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(Ok(item));
            }
            if let Some(tail) = self.tail.take() {
                self.finished = true;
                return tail.map(Err);
            }
            if self.finished {
                return None;
            }
            if let Err(status) = self.next_message().await {
                self.finished = true;
                return Some(Err(status));
            }
        }
    }

    /// Reads one message into `items` and `tail`, or says why the stream cannot go on.
    async fn next_message(&mut self) -> Result<(), Status> {
        let msg = loop {
            let msg = match self.pending.take() {
                Some(m) => m,
                None => {
                    let silence = self.liveness.unwrap_or(Duration::MAX);
                    let next = tokio::select! {
                        m = tokio::time::timeout(silence, self.sub.next()) => m.map_err(|_| ()),
                        _ = self.up.wait_for(|up| !*up) => Ok(None),
                    };
                    match next {
                        Ok(Some(m)) => m,
                        Ok(None) => {
                            return Err(Status::unavailable(
                                format!(
                                    "the connection to the {} worker was lost mid-stream",
                                    self.service
                                ),
                                Duration::from_secs(1),
                            ));
                        }
                        Err(()) => {
                            tracing::warn!(
                                service = self.service,
                                "a NATS stream's worker went silent"
                            );
                            return Err(Status::unavailable(
                                format!("the {} worker stopped answering; retry", self.service),
                                Duration::from_secs(1),
                            ));
                        }
                    }
                }
            };
            let h = msg.headers.as_ref();
            if let Some(ms) = h
                .and_then(|h| h.get(HEARTBEAT_MS))
                .and_then(|v| v.as_str().parse::<u64>().ok())
            {
                self.liveness = Some(Duration::from_millis(ms.max(100)) * MISSED_HEARTBEATS);
                if h.and_then(|h| h.get(SEQ)).is_none() {
                    // A heartbeat: nothing to pass on.
                    continue;
                }
            }
            break msg;
        };
        let h = msg.headers.as_ref();
        let seq = h
            .and_then(|h| h.get(SEQ))
            .and_then(|v| v.as_str().parse::<u64>().ok());
        if seq != Some(self.expected) {
            // Ending with the guard un-ended: dropping it tells the worker to stop.
            let got = seq.map_or_else(|| "none".to_owned(), |s| s.to_string());
            tracing::warn!(service = self.service, expected = self.expected, got = %got, "gap in a NATS stream");
            return Err(Status::unavailable(
                format!(
                    "the stream from the {} worker lost messages (expected #{}, got #{got}); retry",
                    self.service, self.expected
                ),
                Duration::from_secs(1),
            ));
        }
        self.expected += 1;
        let end = h.and_then(|h| h.get(END)).map(|v| v.as_str().to_owned());
        if h.and_then(|h| h.get(FRAME)).is_some() {
            self.items = unframe(msg.payload).map_err(|e| {
                tracing::warn!(
                    service = self.service,
                    error = e,
                    "a malformed frame in a NATS stream"
                );
                Status::bad_gateway(format!(
                    "the {} worker sent a malformed frame",
                    self.service
                ))
            })?;
        } else if end.is_none() {
            // Version 1: the message is the item (an ending message carries none).
            self.items.push_back(msg.payload);
        }
        match end.as_deref() {
            Some("ok") => {
                self.guard.ended = true;
                self.tail = Some(None);
            }
            Some(_) => {
                self.guard.ended = true;
                self.tail = Some(Some(headers::status_from_reply(h).unwrap_or_else(|| {
                    Status::internal("a worker ended its stream with an error but no status")
                })));
            }
            None => {}
        }
        Ok(())
    }
}

/// Appends one item to a frame: its length as a protobuf varint, then its bytes.
fn push_item(frame: &mut BytesMut, item: &[u8]) {
    prost::encoding::encode_varint(item.len() as u64, frame);
    frame.put_slice(item);
}

/// The items of a frame, in order.
fn unframe(mut frame: Bytes) -> Result<VecDeque<Bytes>, &'static str> {
    let mut items = VecDeque::new();
    while frame.has_remaining() {
        let len = prost::encoding::decode_varint(&mut frame).map_err(|_| "a bad item length")?;
        let len = usize::try_from(len).map_err(|_| "an item too long")?;
        if len > frame.remaining() {
            return Err("an item longer than its frame");
        }
        items.push_back(frame.split_to(len));
    }
    Ok(items)
}

/// The contract version a stream request asks for (1 when the value is not a number).
pub fn requested_version(h: Option<&HeaderMap>) -> u32 {
    h.and_then(|h| h.get(headers::name(STREAM)))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(1)
}

/// Where a worker sends a stream, and in which form.
pub struct Reply {
    /// The edge's inbox.
    pub subject: String,
    /// The contract version the edge asked for ([`requested_version`]).
    pub version: u32,
}

/// Worker side: runs a streaming method for the request whose reply subject is `reply` and
/// publishes its messages there, until the end, the edge's cancel, the deadline or `closing`.
pub async fn serve(
    client: async_nats::Client,
    svc: handlers::LocalService,
    method: &'static MethodDesc,
    ctx: Context,
    payload: Bytes,
    reply: Reply,
    closing: CancellationToken,
) {
    let Reply {
        subject: reply,
        version,
    } = reply;
    let framed = version >= 2;
    // Listen for the cancel before any work, so it cannot be missed once the stream has begun.
    let mut cancel = match client.subscribe(cancel_subject(&reply)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to a stream's cancel subject");
            return;
        }
    };
    let deadline = ctx
        .deadline
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    let mut seq = 0u64;
    let heartbeat_ms = WORKER_HEARTBEAT.as_millis().to_string();
    let mut send = async |payload: Bytes, end: Option<&Status>, ok_end: bool, frame: bool| {
        seq += 1;
        let mut h = match end {
            Some(status) => {
                let (err, mut h) = headers::error_reply(status);
                h.insert(headers::SERVICE_ERROR, err.status.as_str());
                h.insert(headers::SERVICE_ERROR_CODE, err.code.to_string().as_str());
                h.insert(END, "error");
                h
            }
            None => HeaderMap::new(),
        };
        if ok_end {
            h.insert(END, "ok");
        }
        if frame {
            h.insert(FRAME, "1");
        }
        h.insert(SEQ, seq.to_string().as_str());
        if seq == 1 {
            h.insert(HEARTBEAT_MS, heartbeat_ms.as_str());
        }
        client.publish_with_headers(reply.clone(), h, payload).await
    };
    let started = svc.call(ctx, method, Codec::Proto, payload);
    let stream = tokio::select! {
        r = tokio::time::timeout_at(deadline.into(), started) => match r {
            Ok(Ok(Encoded::Stream(s))) => s,
            Ok(Ok(Encoded::Unary(_))) => {
                let _ = send(Bytes::new(), Some(&Status::internal("a streaming method returned one message")), false, false).await;
                return;
            }
            Ok(Err(status)) => {
                let _ = send(Bytes::new(), Some(&status), false, false).await;
                return;
            }
            Err(_) => {
                let _ = send(Bytes::new(), Some(&Status::deadline_exceeded("the worker did not start before the deadline")), false, false).await;
                return;
            }
        },
        _ = cancel.next() => return,
    };
    let mut stream = stream;
    let mut first_frame = true;
    loop {
        let quiet = tokio::time::sleep(WORKER_HEARTBEAT);
        tokio::select! {
            () = quiet => {
                let mut h = HeaderMap::new();
                h.insert(HEARTBEAT_MS, heartbeat_ms.as_str());
                if let Err(e) = client.publish_with_headers(reply.clone(), h, Bytes::new()).await {
                    tracing::warn!(error = %e, method = method.path, "cannot publish a stream heartbeat");
                    break;
                }
            }
            item = stream.next() => {
                let first = std::mem::replace(&mut first_frame, false);
                let (payload, ending) = match item {
                    Some(Ok(bytes)) if framed => {
                        let mut frame = BytesMut::with_capacity(bytes.len() + 8);
                        push_item(&mut frame, &bytes);
                        let ending = gather(&mut stream, &mut frame, first).await;
                        (frame.freeze(), ending)
                    }
                    Some(Ok(bytes)) => (bytes, None),
                    Some(Err(status)) => (Bytes::new(), Some(Some(status))),
                    None => (Bytes::new(), Some(None)),
                };
                // A frame may be empty only when it is the bare end of the stream.
                let frame = framed && !payload.is_empty();
                let sent = match &ending {
                    None => send(payload, None, false, frame).await,
                    Some(None) => send(payload, None, true, frame).await,
                    Some(Some(status)) => send(payload, Some(status), false, frame).await,
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, method = method.path, "cannot publish a stream message");
                    break;
                }
                if ending.is_some() {
                    break;
                }
            }
            // The edge's client went away: dropping the stream stops the work.
            _ = cancel.next() => {
                tracing::debug!(method = method.path, "stream cancelled by the edge");
                break;
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                let _ = send(Bytes::new(), Some(&Status::deadline_exceeded("the stream reached its deadline")), false, false).await;
                break;
            }
            () = closing.cancelled() => {
                let _ = send(Bytes::new(), Some(&Status::unavailable("the worker is shutting down; retry", Duration::from_secs(1))), false, false).await;
                break;
            }
        }
    }
}

/// Adds to `frame` what the stream has ready, and, unless this is the stream's first frame,
/// what comes within [`FRAME_LINGER`], up to [`FRAME_MAX_BYTES`]. Says how the stream ended if
/// it did: `Some(None)` cleanly, `Some(Some(status))` with an error.
async fn gather(
    stream: &mut BoxStream<Result<Bytes, Status>>,
    frame: &mut BytesMut,
    first: bool,
) -> Option<Option<Status>> {
    use futures_util::FutureExt as _;
    let until = Instant::now() + FRAME_LINGER;
    while frame.len() < FRAME_MAX_BYTES {
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            // The first item goes at once: time to first token never waits for a frame.
            None if first => return None,
            None => match tokio::time::timeout_at(until.into(), stream.next()).await {
                Ok(next) => next,
                Err(_) => return None,
            },
        };
        match next {
            Some(Ok(item)) => push_item(frame, &item),
            Some(Err(status)) => return Some(Some(status)),
            None => return Some(None),
        }
    }
    None
}

/// Whether a worker request asks for a stream.
pub fn is_stream_request(h: Option<&HeaderMap>) -> bool {
    h.and_then(|h| h.get(headers::name(STREAM))).is_some()
}

/// Transcodes each protobuf message of a remote stream for a JSON caller.
pub fn for_codec(
    stream: BoxStream<Result<Bytes, Status>>,
    codec: Codec,
    method: &'static MethodDesc,
    service: &'static str,
) -> BoxStream<Result<Bytes, Status>> {
    match codec {
        Codec::Proto => stream,
        Codec::Json => Box::pin(stream.map(move |item| {
            item.and_then(|proto| {
                (method.transcode.proto_to_json)(&proto)
                    .map(Bytes::from)
                    .map_err(|e| {
                        tracing::warn!(error = %e, service, "undecodable stream message from a worker");
                        Status::bad_gateway(format!(
                            "the {service} worker sent a message that is not a valid {}",
                            method.output_type
                        ))
                    })
            })
        })),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn items(v: &[&'static str]) -> Vec<Result<Bytes, Status>> {
        v.iter()
            .map(|s| Ok(Bytes::from_static(s.as_bytes())))
            .collect()
    }

    #[test]
    fn a_frame_gives_back_its_items_in_order() {
        let mut frame = BytesMut::new();
        let long = vec![b'x'; 300];
        for item in [&b"Well"[..], b"", b" met", &long] {
            push_item(&mut frame, item);
        }
        let got = unframe(frame.freeze()).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], "Well");
        assert_eq!(got[1], "");
        assert_eq!(got[2], " met");
        assert_eq!(got[3].len(), 300);
    }

    #[test]
    fn a_malformed_frame_is_refused() {
        // A length past the frame's end.
        let mut frame = BytesMut::new();
        prost::encoding::encode_varint(10, &mut frame);
        frame.put_slice(b"abc");
        assert!(unframe(frame.freeze()).is_err());
        // A varint that never ends.
        assert!(unframe(Bytes::from_static(&[0xff; 11])).is_err());
        assert!(unframe(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn the_requested_version_defaults_to_one() {
        let mut h = HeaderMap::new();
        assert_eq!(requested_version(Some(&h)), 1);
        h.insert(STREAM, "1");
        assert_eq!(requested_version(Some(&h)), 1);
        h.insert(STREAM, "2");
        assert_eq!(requested_version(Some(&h)), 2);
        h.insert(STREAM, "two");
        assert_eq!(requested_version(Some(&h)), 1);
        assert_eq!(requested_version(None), 1);
    }

    #[tokio::test]
    async fn what_is_ready_joins_a_frame_and_the_end_rides_with_it() {
        let mut s: BoxStream<Result<Bytes, Status>> =
            Box::pin(futures_util::stream::iter(items(&["a", "b", "c"])));
        let mut frame = BytesMut::new();
        push_item(&mut frame, b"first");
        assert_eq!(gather(&mut s, &mut frame, true).await, Some(None));
        let got = unframe(frame.freeze()).unwrap();
        assert_eq!(got, ["first", "a", "b", "c"]);

        let mut s: BoxStream<Result<Bytes, Status>> = Box::pin(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"a")),
            Err(Status::unavailable("gone", Duration::from_secs(1))),
        ]));
        let mut frame = BytesMut::new();
        let end = gather(&mut s, &mut frame, false).await;
        assert!(matches!(end, Some(Some(_))), "{end:?}");
        assert_eq!(unframe(frame.freeze()).unwrap(), ["a"]);
    }

    #[tokio::test]
    async fn a_frame_stops_at_its_size() {
        let big: Vec<_> = (0..100)
            .map(|_| Ok(Bytes::from(vec![b'z'; 1024])))
            .collect();
        let mut s: BoxStream<Result<Bytes, Status>> = Box::pin(futures_util::stream::iter(big));
        let mut frame = BytesMut::new();
        assert_eq!(gather(&mut s, &mut frame, false).await, None);
        assert!(frame.len() >= FRAME_MAX_BYTES && frame.len() < FRAME_MAX_BYTES + 1100);
        assert_eq!(
            s.count().await,
            100 - unframe(frame.freeze()).unwrap().len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_frame_never_waits_and_later_ones_wait_a_little() {
        let slow = || -> BoxStream<Result<Bytes, Status>> {
            Box::pin(futures_util::stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                (n < 5).then(|| (Ok(Bytes::from(n.to_string())), n + 1))
            }))
        };
        let started = tokio::time::Instant::now();
        let mut s = slow();
        let mut frame = BytesMut::new();
        assert_eq!(gather(&mut s, &mut frame, true).await, None);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the first frame went at once"
        );
        assert!(unframe(frame.freeze()).unwrap().is_empty());

        let mut s = slow();
        let mut frame = BytesMut::new();
        assert_eq!(gather(&mut s, &mut frame, false).await, None);
        assert!(started.elapsed() <= FRAME_LINGER + Duration::from_millis(1));
        // Items 1 ms apart: those within the linger joined the frame.
        let joined = unframe(frame.freeze()).unwrap();
        assert!(!joined.is_empty() && joined.len() < 5, "{joined:?}");
    }
}
