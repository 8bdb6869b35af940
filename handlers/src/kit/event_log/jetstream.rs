//! The shared event log: one JetStream stream, one subject per topic (`<prefix>.<topic>`), so every
//! edge replica and worker sees the same events and a client resumes on any of them.
//!
//! A topic's sequence is carried in the event (the stream's own sequence counts all topics). An
//! append reads the topic's last message and publishes with `Nats-Expected-Last-Subject-Sequence`
//! set to its stream sequence, so two replicas appending at once cannot both take the same number:
//! the loser retries. A topic whose events have all expired starts again above the stream's last
//! sequence, which is above any number the topic used before (a topic's number never exceeds the
//! stream sequence of its message), so numbers never go back.
//!
//! An append survives a lost node as a store write does (`kit::store::jetstream::write`): it
//! publishes under a `Nats-Msg-Id` fixed for the append and its expected position, awaits the
//! answer up to the request's deadline and never sends the event again while a copy may be in
//! flight (nats-server 2.9 would store both); it publishes again only when no server took it or
//! the topic moved on, and first reads whether the topic's last event is its own. An answer that
//! never came is 503, after a read-back that finds the event if it was stored. Reads go to any
//! replica (direct gets), so they go on while a leader is elected.
//!
//! Each process follows the whole stream once (one ordered consumer, from the stream's end when
//! the log opened) and hands events to its followers through the [`Hub`]; followers catch up with
//! direct gets, found by a binary search over stream sequences.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use prost::Message as _;
use proto::BoxStream;
use proto::aicore::events::v1::Event;
use std::future::IntoFuture as _;

use super::hub::{Hub, Source, follow};
use super::{EventLog, Retention};
use crate::kit::retry::{DEFAULT_BUDGET, Retry};
use crate::kit::status::Status;
use crate::kit::store::jetstream::{PUBLISH_WAIT, READ_TRY, TRY_TIMEOUT, ensure_stream};

const ATTEMPTS: usize = 32;

/// Events in a JetStream stream.
#[derive(Clone)]
pub struct JetStreamLog {
    reader: Reader,
    /// For appends: their answers are awaited up to the deadline.
    js: jetstream::Context,
    hub: Arc<Hub>,
    _tail: Arc<Tail>,
}

/// Reads the stream (what followers catch up with).
#[derive(Clone)]
struct Reader {
    stream: stream::Stream,
    prefix: String,
}

/// The task following the whole stream; stopped with the log.
struct Tail(tokio::task::JoinHandle<()>);

impl Drop for Tail {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLog")
            .field("prefix", &self.reader.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Status {
    tracing::warn!(error = %e, "event log: {what}");
    Status::unavailable(
        format!("the event log cannot be reached ({what})"),
        Duration::from_secs(1),
    )
}

fn decode(payload: &[u8]) -> Result<Event, Status> {
    Event::decode(payload)
        .map_err(|e| Status::internal(format!("event in the stream does not decode: {e}")))
}

impl JetStreamLog {
    /// Opens stream `name` (subjects `<prefix>.>`), creating it (file storage, `replicas` copies,
    /// `retention`) if missing, and starts following it. Fails clearly when the server has no
    /// JetStream.
    pub async fn open(
        client: async_nats::Client,
        name: &str,
        prefix: &str,
        replicas: usize,
        retention: &Retention,
    ) -> Result<Self, String> {
        let publisher = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_WAIT)
            .build(client.clone());
        let js = jetstream::ContextBuilder::new()
            .timeout(TRY_TIMEOUT)
            .build(client);
        let stream = ensure_stream(
            &js,
            stream::Config {
                name: name.to_owned(),
                description: Some("Edge event bus: one subject per topic".into()),
                subjects: vec![format!("{prefix}.>")],
                max_messages_per_subject: i64::try_from(retention.per_topic).unwrap_or(i64::MAX),
                max_age: retention.max_age,
                discard: stream::DiscardPolicy::Old,
                allow_direct: true,
                // The window in which a retried append is recognised by its message id.
                duplicate_window: Duration::from_secs(120),
                storage: stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            format!(
                "cannot open the JetStream event stream {name:?} (is JetStream enabled on the NATS server, e.g. `nats-server -js`?): {e}"
            )
        })?;
        let reader = Reader {
            stream,
            prefix: prefix.to_owned(),
        };
        // Everything appended from now on reaches this process's followers; older events are
        // read by catching up.
        let from = reader
            .stream_last_sequence()
            .await
            .map_err(|e| format!("cannot read the event stream {name:?}: {}", e.message()))?;
        let hub = Arc::new(Hub::default());
        let tail = tokio::spawn(tail(
            reader.clone(),
            js.client(),
            Arc::clone(&hub),
            from + 1,
        ));
        Ok(JetStreamLog {
            reader,
            js: publisher,
            hub,
            _tail: Arc::new(Tail(tail)),
        })
    }
}

/// Follows the whole stream from `from`, handing each event to the hub; after an error it starts
/// again where it stopped.
async fn tail(reader: Reader, client: async_nats::Client, hub: Arc<Hub>, mut from: u64) {
    loop {
        let consumer = reader
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                filter_subject: format!("{}.>", reader.prefix),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await;
        match consumer {
            Ok(c) => match c.messages().await {
                Ok(mut messages) => {
                    while let Some(m) = messages.next().await {
                        match m {
                            Ok(m) => {
                                if let Ok(info) = m.info() {
                                    from = info.stream_sequence + 1;
                                }
                                match Event::decode(m.payload.as_ref()) {
                                    Ok(e) => hub.publish(&e),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "event log: an event does not decode")
                                    }
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "event log: following the stream failed; starting again");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event log: cannot follow the stream"),
            },
            Err(e) => tracing::warn!(error = %e, "event log: cannot follow the stream"),
        }
        // Followers meanwhile catch up from the log on their next event.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Reader {
    fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.prefix)
    }

    /// The topic's last message: its stream sequence and the event.
    async fn last(&self, topic: &str) -> Result<Option<(u64, Event)>, Status> {
        Ok(self
            .last_with_id(topic, &mut Retry::new(DEFAULT_BUDGET))
            .await?
            .map(|(at, e, _)| (at, e)))
    }

    /// The topic's last message from any replica, with its message id; retried within `retry`.
    async fn last_with_id(
        &self,
        topic: &str,
        retry: &mut Retry,
    ) -> Result<Option<(u64, Event, Option<String>)>, Status> {
        loop {
            let read = self.stream.direct_get_last_for_subject(self.subject(topic));
            // A read routed to a frozen replica is asked again rather than waited for.
            let read = tokio::time::timeout(READ_TRY, read)
                .await
                .unwrap_or_else(|_| Err(stream::DirectGetErrorKind::TimedOut.into()));
            match read {
                Ok(m) => {
                    let id = m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned());
                    return Ok(Some((m.sequence, decode(&m.payload)?, id)));
                }
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) if !retry.wait().await => {
                    return Err(unavailable("reading a topic's last event", e));
                }
                Err(_) => {}
            }
        }
    }

    /// The event stored at stream sequence `at` (a repeated append's first try).
    async fn at(&self, at: u64, retry: &mut Retry) -> Result<Event, Status> {
        loop {
            let read = tokio::time::timeout(READ_TRY, self.stream.direct_get(at))
                .await
                .unwrap_or_else(|_| Err(stream::DirectGetErrorKind::TimedOut.into()));
            match read {
                Ok(m) => return decode(&m.payload),
                Err(e) if !retry.wait().await => return Err(unavailable("reading an event", e)),
                Err(_) => {}
            }
        }
    }

    async fn stream_last_sequence(&self) -> Result<u64, Status> {
        let mut retry = Retry::new(DEFAULT_BUDGET);
        loop {
            match self.stream.get_info().await {
                Ok(info) => return Ok(info.state.last_sequence),
                Err(e) if !retry.wait().await => {
                    return Err(unavailable("reading the stream's state", e));
                }
                Err(_) => {}
            }
        }
    }

    /// The topic's first message at or after stream sequence `from`.
    async fn next_from(&self, subject: &str, from: u64) -> Result<Option<(u64, Event)>, Status> {
        match self
            .stream
            .direct_get_next_for_subject(subject, Some(from))
            .await
        {
            Ok(m) => Ok(Some((m.sequence, decode(&m.payload)?))),
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("reading events", e)),
        }
    }
}

#[async_trait]
impl Source for Reader {
    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status> {
        let Some((last_at, last)) = self.last(topic).await? else {
            return Ok(Vec::new());
        };
        if after >= last.sequence {
            return Ok(Vec::new());
        }
        // The first message numbered above `after` sits at a stream sequence in [after + 1,
        // last_at] (a topic's number never exceeds its stream sequence): binary search for it.
        let subject = self.subject(topic);
        let (mut lo, mut hi) = (after.saturating_add(1).min(last_at), last_at);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.next_from(&subject, mid).await? {
                Some((_, e)) if e.sequence > after => hi = mid,
                Some((at, _)) => lo = at + 1,
                None => break,
            }
        }
        let mut out = Vec::new();
        let mut from = lo;
        while out.len() < limit {
            match self.next_from(&subject, from).await? {
                Some((at, e)) => {
                    from = at + 1;
                    if e.sequence > after {
                        out.push(e);
                    }
                }
                None => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl EventLog for JetStreamLog {
    async fn append(&self, mut event: Event) -> Result<u64, Status> {
        let subject = self.reader.subject(&event.topic);
        // This append's name: each try expecting a given position publishes as `<base>.<pos>`.
        let base = uuid::Uuid::new_v4().simple().to_string();
        let mut retry = Retry::new(DEFAULT_BUDGET);
        let mut races = 0;
        // The position to try again when no server took the last try.
        let mut pending: Option<(u64, u64)> = None;
        loop {
            let (expected, seq) = match pending.take() {
                Some(p) => p,
                None => match self.reader.last_with_id(&event.topic, &mut retry).await? {
                    // A try of this append committed unseen: that is its position.
                    Some((_, last, Some(id))) if id.starts_with(&base) => return Ok(last.sequence),
                    Some((stream_seq, last, _)) => (stream_seq, last.sequence + 1),
                    // Read after finding the topic empty: every number it used is at or below it.
                    None => (0, self.reader.stream_last_sequence().await? + 1),
                },
            };
            event.sequence = seq;
            let publish = jetstream::message::PublishMessage::build()
                .payload(Bytes::from(event.encode_to_vec()))
                .message_id(format!("{base}.{expected}"))
                .expected_last_subject_sequence(expected);
            let wait = retry.left().max(Duration::from_millis(200));
            let ack = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => tokio::time::timeout(wait, ack.into_future())
                    .await
                    .unwrap_or_else(|_| Err(PublishErrorKind::TimedOut.into())),
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) if !ack.duplicate => return Ok(seq),
                // A repeat of a copy that committed: its event holds the number it took.
                Ok(ack) if ack.sequence > 0 => {
                    return Ok(self.reader.at(ack.sequence, &mut retry).await?.sequence);
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    // Another publisher took this number: read the topic again, after a short,
                    // growing pause so racing replicas spread out.
                    races += 1;
                    if races >= ATTEMPTS {
                        return Err(Status::unavailable(
                            "the topic is too busy to publish to now; retry",
                            Duration::from_secs(1),
                        ));
                    }
                    let pause = 1 + u64::try_from(races).unwrap_or(0) * 2;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    continue;
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(Status::payload_too_large(
                        "the event is larger than the NATS server accepts",
                    ));
                }
                // No server took it (no leader yet): nothing is in flight, so it may go again.
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    pending = Some((expected, seq));
                    if !retry.wait().await {
                        return Err(unavailable("publishing", e));
                    }
                }
                // No answer (or a repeat still in flight): it may yet be stored, so it is never
                // sent again; if it is the topic's last event now, it was.
                other => {
                    let why = other
                        .err()
                        .map_or_else(|| "still in flight".to_owned(), |e| e.to_string());
                    return match self.reader.last_with_id(&event.topic, &mut retry).await? {
                        Some((_, last, Some(id))) if id.starts_with(&base) => Ok(last.sequence),
                        _ => Err(unavailable(
                            "publishing",
                            format!("{why}; it may still be stored"),
                        )),
                    };
                }
            }
        }
    }

    async fn head(&self, topic: &str) -> Result<u64, Status> {
        Ok(self
            .reader
            .last(topic)
            .await?
            .map_or(0, |(_, e)| e.sequence))
    }

    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status> {
        self.reader.read(topic, after, limit).await
    }

    async fn follow(
        &self,
        topic: &str,
        after: u64,
    ) -> Result<BoxStream<Result<Event, Status>>, Status> {
        Ok(follow(self.reader.clone(), &self.hub, topic, after))
    }

    fn backend(&self) -> &'static str {
        "jetstream"
    }
}
