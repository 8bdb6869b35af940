//! The shared event log: one JetStream stream, one subject per topic (`<prefix>.<topic>`), so every
//! edge replica and worker sees the same events and a client resumes on any of them.
//!
//! A topic's sequence is carried in the event (the stream's own sequence counts all topics). An
//! append reads the topic's last message and publishes with `Nats-Expected-Last-Subject-Sequence`
//! set to its stream sequence, so two replicas appending at once cannot both take the same number:
//! the loser retries. A topic whose events have all expired starts again above the stream's last
//! sequence, which is above any number the topic used before (a topic's number never exceeds the
//! stream sequence of its message), so numbers never go back.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use prost::Message as _;
use proto::BoxStream;
use proto::aicore::events::v1::Event;

use super::{EventLog, Retention};
use crate::status::Status;

const ATTEMPTS: usize = 32;

/// Events in a JetStream stream.
#[derive(Clone)]
pub struct JetStreamLog {
    js: jetstream::Context,
    stream: stream::Stream,
    prefix: String,
}

impl std::fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLog")
            .field("prefix", &self.prefix)
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
    /// `retention`) if missing. Fails clearly when the server has no JetStream.
    pub async fn open(
        client: async_nats::Client,
        name: &str,
        prefix: &str,
        replicas: usize,
        retention: &Retention,
    ) -> Result<Self, String> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.to_owned(),
                description: Some("Edge event bus: one subject per topic".into()),
                subjects: vec![format!("{prefix}.>")],
                max_messages_per_subject: i64::try_from(retention.per_topic).unwrap_or(i64::MAX),
                max_age: retention.max_age,
                discard: stream::DiscardPolicy::Old,
                allow_direct: true,
                storage: stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                format!(
                    "cannot open the JetStream event stream {name:?} (is JetStream enabled on the NATS server, e.g. `nats-server -js`?): {e}"
                )
            })?;
        Ok(JetStreamLog {
            js,
            stream,
            prefix: prefix.to_owned(),
        })
    }

    fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.prefix)
    }

    /// The topic's last message: its stream sequence and the event.
    async fn last(&self, topic: &str) -> Result<Option<(u64, Event)>, Status> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.subject(topic))
            .await
        {
            Ok(m) => Ok(Some((m.sequence, decode(&m.payload)?))),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable("reading a topic's last event", e)),
        }
    }

    async fn stream_last_sequence(&self) -> Result<u64, Status> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| unavailable("reading the stream's state", e))?;
        Ok(info.state.last_sequence)
    }
}

#[async_trait]
impl EventLog for JetStreamLog {
    async fn append(&self, mut event: Event) -> Result<u64, Status> {
        let subject = self.subject(&event.topic);
        for attempt in 0..ATTEMPTS {
            let (expected, seq) = match self.last(&event.topic).await? {
                Some((stream_seq, last)) => (stream_seq, last.sequence + 1),
                // Read after finding the topic empty: every number it used is at or below it.
                None => (0, self.stream_last_sequence().await? + 1),
            };
            event.sequence = seq;
            let publish = jetstream::message::PublishMessage::build()
                .payload(Bytes::from(event.encode_to_vec()))
                .expected_last_subject_sequence(expected);
            let ack = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(_) => return Ok(seq),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    // Another publisher took this number: read the topic again, after a short,
                    // growing pause so racing replicas spread out.
                    let pause = 1 + u64::try_from(attempt).unwrap_or(0) * 2;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(Status::payload_too_large(
                        "the event is larger than the NATS server accepts",
                    ));
                }
                Err(e) => return Err(unavailable("publishing", e)),
            }
        }
        Err(Status::unavailable(
            "the topic is too busy to publish to now; retry",
            Duration::from_secs(1),
        ))
    }

    async fn head(&self, topic: &str) -> Result<u64, Status> {
        Ok(self.last(topic).await?.map_or(0, |(_, e)| e.sequence))
    }

    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status> {
        let subject = self.subject(topic);
        // A topic's number never exceeds its message's stream sequence, so nothing after `after`
        // sits at or below stream sequence `after`.
        let mut from = after.saturating_add(1);
        let mut out = Vec::new();
        while out.len() < limit {
            match self
                .stream
                .direct_get_next_for_subject(subject.clone(), Some(from))
                .await
            {
                Ok(m) => {
                    from = m.sequence + 1;
                    let e = decode(&m.payload)?;
                    if e.sequence > after {
                        out.push(e);
                    }
                }
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => break,
                Err(e) => return Err(unavailable("reading events", e)),
            }
        }
        Ok(out)
    }

    async fn follow(
        &self,
        topic: &str,
        after: u64,
    ) -> Result<BoxStream<Result<Event, Status>>, Status> {
        // The stream's end is read before the topic's last message, so an event appended between
        // the two is still delivered (it lands above `floor`).
        let floor = self.stream_last_sequence().await?;
        let start = match self.last(topic).await? {
            Some((stream_seq, last)) if after >= last.sequence => stream_seq + 1,
            Some(_) => after.saturating_add(1),
            None => floor + 1,
        };
        let consumer = self
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                filter_subject: self.subject(topic),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("following a topic", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("following a topic", e))?;
        let events = messages.map(move |m| match m {
            Ok(m) => {
                let e = decode(&m.payload)?;
                Ok((e.sequence > after).then_some(e))
            }
            Err(e) => Err(unavailable("following a topic", e)),
        });
        Ok(Box::pin(events.filter_map(|r| {
            futures_util::future::ready(r.transpose())
        })))
    }

    fn backend(&self) -> &'static str {
        "jetstream"
    }
}
