//! Live delivery inside one process: each appended event (from this process's appends, or from the
//! JetStream log's one tail of the stream) is handed to the topic's followers through a small
//! broadcast channel, so a thousand followers of `world` cost one read of each event, not a
//! thousand. The log stays the source of truth: a follower first catches up from the log, and
//! whenever it misses something live (it lagged behind the channel, or a number is skipped) it
//! reads the log again, so nothing is lost and nothing is repeated.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use proto::BoxStream;
use proto::aicore::events::v1::Event;
use tokio::sync::broadcast;

use crate::kit::status::Status;

/// Events buffered per topic for followers that are a little behind; further behind, they read
/// the log.
const CHANNEL: usize = 64;
/// Events read from the log at once while catching up.
const PAGE: usize = 64;

/// Reads a topic's retained events after a sequence (the log behind the hub).
#[async_trait]
pub(crate) trait Source: Send + Sync + 'static {
    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status>;
}

/// Per-topic broadcast channels, created by the first follower and forgotten with the last.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<String, broadcast::Sender<Arc<Event>>>>,
}

impl Hub {
    pub(crate) fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<Event>> {
        let mut map = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        // Topics nobody follows any more are dropped whenever the map has doubled.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
        map.entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL).0)
            .subscribe()
    }

    /// Hands `event` (already readable from the log) to its topic's followers.
    pub(crate) fn publish(&self, event: &Event) {
        let mut map = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(&event.topic) {
            if tx.receiver_count() == 0 {
                map.remove(&event.topic);
            } else {
                let _ = tx.send(Arc::new(event.clone()));
            }
        }
    }
}

struct Follow<S> {
    source: S,
    topic: String,
    cursor: u64,
    live: broadcast::Receiver<Arc<Event>>,
    ready: VecDeque<Event>,
    catching_up: bool,
    failed: bool,
}

/// Every event of `topic` after `after`: from the log, then live. The live channel is subscribed
/// before the first read, so an event appended meanwhile is either read or received.
pub(crate) fn follow<S: Source>(
    source: S,
    hub: &Hub,
    topic: &str,
    after: u64,
) -> BoxStream<Result<Event, Status>> {
    let state = Follow {
        live: hub.subscribe(topic),
        source,
        topic: topic.to_owned(),
        cursor: after,
        ready: VecDeque::new(),
        catching_up: true,
        failed: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        if s.failed {
            return None;
        }
        loop {
            if let Some(e) = s.ready.pop_front() {
                s.cursor = e.sequence;
                return Some((Ok(e), s));
            }
            if s.catching_up {
                match s.source.read(&s.topic, s.cursor, PAGE).await {
                    Ok(mut page) => {
                        // Only this topic's newer events; a page with none ends the catch-up
                        // (never re-reading the same page forever).
                        let cursor = s.cursor;
                        page.retain(|e| e.topic == s.topic && e.sequence > cursor);
                        page.sort_by_key(|e| e.sequence);
                        if page.is_empty() {
                            s.catching_up = false;
                        } else {
                            s.ready.extend(page);
                        }
                    }
                    Err(status) => {
                        s.failed = true;
                        return Some((Err(status), s));
                    }
                }
                continue;
            }
            match s.live.recv().await {
                Ok(e) if e.sequence <= s.cursor => {}
                Ok(e) if e.sequence == s.cursor + 1 => s.ready.push_back((*e).clone()),
                // Something was missed live; the log has it.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => s.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => {
                    s.failed = true;
                    return Some((
                        Err(Status::unavailable(
                            "the event log closed; reconnect",
                            std::time::Duration::from_secs(1),
                        )),
                        s,
                    ));
                }
            }
        }
    }))
}
