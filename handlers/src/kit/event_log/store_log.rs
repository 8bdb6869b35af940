//! The embedded event log: each topic's events in the store under
//! `events.t.<topic>.<sequence, 20 digits>` with the topic's dots written as '/', so a topic is one
//! key segment and no topic's listing is a prefix of another's (`player` never lists
//! `player.<id>`); the newest `per_topic` kept. The store is this
//! process's own (redb allows one), so appends are serialized here, which makes every event land
//! in sequence order: a reader never sees event n+1 before event n exists. Followers are woken by
//! the hub, which an append feeds after its write.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message as _;
use proto::BoxStream;
use proto::aicore::events::v1::Event;

use super::hub::{Hub, Source, follow};
use super::{EventLog, Retention};
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Most topic heads kept in memory.
const MAX_KNOWN_HEADS: usize = 10_000;

/// Events in the store.
pub struct StoreLog {
    store: Arc<dyn Store>,
    retention: Retention,
    /// Each topic's last sequence, once known; the lock serializes appends.
    pub(super) heads: tokio::sync::Mutex<HashMap<String, u64>>,
    pub(super) max_heads: usize,
    /// Live delivery to this process's followers.
    hub: Hub,
}

impl std::fmt::Debug for StoreLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLog")
            .field("store", &self.store.backend())
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Where events were kept before topics became one key segment (`events.log.<topic>.<seq>`,
/// where `world` listed `world.north`); [`StoreLog::migrate_legacy`] moves them.
const LEGACY: &str = "events.log.";

/// The key segment of a topic: '.' cannot occur in it, '/' cannot occur in a topic.
fn segment(topic: &str) -> String {
    topic.replace('.', "/")
}

fn prefix(topic: &str) -> String {
    format!("events.t.{}.", segment(topic))
}

fn key(topic: &str, seq: u64) -> String {
    format!("events.t.{}.{seq:020}", segment(topic))
}

fn seq_of(key: &str) -> Option<u64> {
    key.rsplit('.').next()?.parse().ok()
}

fn decode(value: &[u8]) -> Result<Event, Status> {
    Event::decode(value).map_err(|e| Status::internal(format!("stored event does not decode: {e}")))
}

/// Reads events back from the store.
struct StoreSource(Arc<dyn Store>);

#[async_trait]
impl Source for StoreSource {
    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status> {
        let page = self
            .0
            .list(&prefix(topic), Some(&key(topic, after)), limit)
            .await?;
        page.entries.iter().map(|(_, v)| decode(&v.value)).collect()
    }
}

impl StoreLog {
    /// A log in `store`, keeping `retention.per_topic` events per topic.
    pub fn new(store: Arc<dyn Store>, retention: Retention) -> Self {
        StoreLog {
            store,
            retention,
            heads: tokio::sync::Mutex::new(HashMap::new()),
            max_heads: MAX_KNOWN_HEADS,
            hub: Hub::default(),
        }
    }

    /// Moves events stored under the legacy layout to their topic's own keys (at start, before
    /// serving); returns how many moved. Safe to repeat and to interrupt: a copy is written only
    /// where none is, and the old key is deleted after.
    pub async fn migrate_legacy(&self) -> Result<usize, StoreError> {
        let mut moved = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(LEGACY, after.as_deref(), 500).await?;
            for (old, v) in page.entries {
                let parsed = old
                    .strip_prefix(LEGACY)
                    .and_then(|rest| rest.rsplit_once('.'))
                    .and_then(|(topic, seq)| Some((topic, seq.parse::<u64>().ok()?)));
                let Some((topic, seq)) = parsed else {
                    // Not written by the event log: left where it is, never deleted unread.
                    tracing::warn!(key = %old, "not an event key; left in place");
                    after = Some(old);
                    continue;
                };
                match self.store.put(&key(topic, seq), v.value, Some(0)).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
                match self.store.delete(&old, Some(v.version)).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => moved += 1,
                    Err(e) => return Err(e),
                }
                after = Some(old);
            }
            if page.next_after.is_none() {
                return Ok(moved);
            }
        }
    }

    /// The last sequence in the store (the listing is at most the retained events).
    async fn load_head(&self, topic: &str) -> Result<u64, StoreError> {
        let prefix = prefix(topic);
        let mut after: Option<String> = None;
        let mut head = 0;
        loop {
            let page = self.store.list(&prefix, after.as_deref(), 1000).await?;
            if let Some((k, _)) = page.entries.last() {
                head = seq_of(k).unwrap_or(head);
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(head),
            }
        }
    }

    /// Deletes the oldest events beyond retention (a few per append, so a lowered limit catches
    /// up gradually). A failure here loses nothing and is retried on the next append.
    async fn prune(&self, topic: &str, head: u64) {
        let Some(keep_from) = head.checked_sub(self.retention.per_topic) else {
            return;
        };
        let Ok(page) = self.store.list(&prefix(topic), None, 4).await else {
            return;
        };
        for (k, v) in page.entries {
            if seq_of(&k).is_some_and(|s| s <= keep_from)
                && let Err(e) = self.store.delete(&k, Some(v.version)).await
            {
                tracing::warn!(topic, error = %e, "could not prune an old event");
            }
        }
    }
}

#[async_trait]
impl EventLog for StoreLog {
    async fn append(&self, mut event: Event) -> Result<u64, Status> {
        let mut heads = self.heads.lock().await;
        let head = match heads.get(&event.topic) {
            Some(h) => *h,
            None => self.load_head(&event.topic).await?,
        };
        let seq = head + 1;
        event.sequence = seq;
        let k = key(&event.topic, seq);
        match self
            .store
            .put(&k, Bytes::from(event.encode_to_vec()), Some(0))
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                // Someone else wrote this topic (another process on a shared store): start over
                // from what the store says.
                heads.remove(&event.topic);
                return Err(Status::aborted(
                    "the topic moved on while publishing; retry",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        // Topics can be many (one per player): past the bound, forget another's head (it is
        // read again from the store when next needed).
        if heads.len() >= self.max_heads
            && !heads.contains_key(&event.topic)
            && let Some(other) = heads.keys().next().cloned()
        {
            heads.remove(&other);
        }
        heads.insert(event.topic.clone(), seq);
        drop(heads);
        self.hub.publish(&event);
        self.prune(&event.topic, seq).await;
        Ok(seq)
    }

    async fn head(&self, topic: &str) -> Result<u64, Status> {
        if let Some(h) = self.heads.lock().await.get(topic) {
            return Ok(*h);
        }
        Ok(self.load_head(topic).await?)
    }

    async fn read(&self, topic: &str, after: u64, limit: usize) -> Result<Vec<Event>, Status> {
        StoreSource(Arc::clone(&self.store))
            .read(topic, after, limit)
            .await
    }

    async fn follow(
        &self,
        topic: &str,
        after: u64,
    ) -> Result<BoxStream<Result<Event, Status>>, Status> {
        Ok(follow(
            StoreSource(Arc::clone(&self.store)),
            &self.hub,
            topic,
            after,
        ))
    }

    fn backend(&self) -> &'static str {
        "store"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_heads_are_bounded_and_sequences_survive_forgetting() {
        let (_dir, store) = crate::kit::testing::temp_store();
        let mut log = StoreLog::new(Arc::clone(&store), Retention::default());
        log.max_heads = 2;
        let event = |topic: &str| Event {
            topic: topic.into(),
            r#type: "tick".into(),
            ..Event::default()
        };
        for topic in ["a", "b", "c", "a", "d", "b"] {
            log.append(event(topic)).await.unwrap();
            assert!(log.heads.lock().await.len() <= 2);
        }
        assert_eq!(log.head("a").await.unwrap(), 2);
        assert_eq!(log.head("b").await.unwrap(), 2);
        assert_eq!(log.append(event("c")).await.unwrap(), 2);
    }
}
