//! Streams over NATS (DESIGN section 4). The edge subscribes to a fresh inbox and flushes before
//! it publishes the request (with the inbox as reply subject and `Edge-Stream: 1`), so no message
//! can arrive before the subscription exists. The worker answers with numbered messages
//! (`Edge-Seq: 1, 2, ...`) and a last one that says how the stream ended (`Edge-End: ok`, or
//! `error` with the usual error headers). A gap or reordering in the numbers (a slow-consumer drop,
//! a lost worker) ends the stream with an error, never a silent hole. When the edge stops reading
//! (the client went away), it publishes on `<inbox>.cancel`, which the worker subscribed to before
//! it started, and the worker drops the work. A quiet stream carries unnumbered heartbeats, so a
//! worker that died (rather than ended its stream) is noticed within a few of them.

use std::time::{Duration, Instant};

use async_nats::{HeaderMap, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt as _;
use handlers::{Context, Status};
use proto::{BoxStream, Codec, Encoded, MethodDesc};
use tokio_util::sync::CancellationToken;

use super::headers;

/// Marks a request whose answer is a stream.
pub const STREAM: &str = "Edge-Stream";
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
    request_headers.insert(STREAM, "1");
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
}

impl Reader {
    /// The next message's payload, the stream's error, or None at its end.
    async fn read(&mut self) -> Option<Result<Bytes, Status>> {
        if self.finished {
            return None;
        }
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
                            self.finished = true;
                            return Some(Err(Status::unavailable(
                                format!(
                                    "the connection to the {} worker was lost mid-stream",
                                    self.service
                                ),
                                Duration::from_secs(1),
                            )));
                        }
                        Err(()) => {
                            self.finished = true;
                            tracing::warn!(
                                service = self.service,
                                "a NATS stream's worker went silent"
                            );
                            return Some(Err(Status::unavailable(
                                format!("the {} worker stopped answering; retry", self.service),
                                Duration::from_secs(1),
                            )));
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
            self.finished = true;
            let got = seq.map_or_else(|| "none".to_owned(), |s| s.to_string());
            tracing::warn!(service = self.service, expected = self.expected, got = %got, "gap in a NATS stream");
            return Some(Err(Status::unavailable(
                format!(
                    "the stream from the {} worker lost messages (expected #{}, got #{got}); retry",
                    self.service, self.expected
                ),
                Duration::from_secs(1),
            )));
        }
        self.expected += 1;
        match h.and_then(|h| h.get(END)).map(|v| v.as_str()) {
            Some("ok") => {
                self.guard.ended = true;
                self.finished = true;
                None
            }
            Some(_) => {
                self.guard.ended = true;
                self.finished = true;
                Some(Err(headers::status_from_reply(h).unwrap_or_else(|| {
                    Status::internal("a worker ended its stream with an error but no status")
                })))
            }
            None => Some(Ok(msg.payload)),
        }
    }
}

/// Worker side: runs a streaming method for the request whose reply subject is `reply` and
/// publishes its messages there, until the end, the edge's cancel, the deadline or `closing`.
pub async fn serve(
    client: async_nats::Client,
    svc: handlers::LocalService,
    method: &'static MethodDesc,
    ctx: Context,
    payload: Bytes,
    reply: String,
    closing: CancellationToken,
) {
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
    let mut send = async |payload: Bytes, end: Option<&Status>, ok_end: bool| {
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
                let _ = send(Bytes::new(), Some(&Status::internal("a streaming method returned one message")), false).await;
                return;
            }
            Ok(Err(status)) => {
                let _ = send(Bytes::new(), Some(&status), false).await;
                return;
            }
            Err(_) => {
                let _ = send(Bytes::new(), Some(&Status::deadline_exceeded("the worker did not start before the deadline")), false).await;
                return;
            }
        },
        _ = cancel.next() => return,
    };
    let mut stream = stream;
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
                let sent = match item {
                    Some(Ok(bytes)) => send(bytes, None, false).await,
                    Some(Err(status)) => {
                        let _ = send(Bytes::new(), Some(&status), false).await;
                        break;
                    }
                    None => {
                        let _ = send(Bytes::new(), None, true).await;
                        break;
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, method = method.path, "cannot publish a stream message");
                    break;
                }
            }
            // The edge's client went away: dropping the stream stops the work.
            _ = cancel.next() => {
                tracing::debug!(method = method.path, "stream cancelled by the edge");
                break;
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                let _ = send(Bytes::new(), Some(&Status::deadline_exceeded("the stream reached its deadline")), false).await;
                break;
            }
            () = closing.cancelled() => {
                let _ = send(Bytes::new(), Some(&Status::unavailable("the worker is shutting down; retry", Duration::from_secs(1))), false).await;
                break;
            }
        }
    }
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
