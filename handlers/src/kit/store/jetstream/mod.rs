//! The shared backend: NATS JetStream key-value, for several edge replicas and workers. A value's
//! version is the key's revision (the stream sequence): global and growing, like redb's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::{PRUNE_BATCH, Page, Store, StoreError, Versioned, validate_key, validate_prefix};
use crate::kit::retry::{DEFAULT_BUDGET, Retry};

mod open;
mod write;

pub(crate) use open::ensure_stream;
use write::Op;
pub(crate) use write::READ_TRY;

/// How long one try of a JetStream call waits: short, so that a call to a lost node is given up
/// and retried while a new leader takes over (see [`crate::kit::retry`]).
pub(crate) const TRY_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest wait for a write's answer (the request's deadline usually ends it sooner): a
/// write is never sent again while its first try may still be on its way (see [`write`]).
pub(crate) const PUBLISH_WAIT: Duration = Duration::from_secs(30);

/// A store in one JetStream key-value bucket.
#[derive(Clone)]
pub struct JetStreamStore {
    kv: kv::Store,
    js: jetstream::Context,
    /// The same connection for writes: their answers are awaited up to the deadline (see
    /// [`write`]).
    publisher: jetstream::Context,
    /// When (Unix ms) a call last found the bucket's stream gone (deleted under us); 0 while it
    /// is there. See [`JetStreamStore::bucket_present`].
    missing: Arc<AtomicU64>,
    /// More than one replica: a direct read may come from one a moment behind the leader, so
    /// a key it does not have yet is asked of the leader (see [`JetStreamStore::last`]).
    replicated: bool,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("bucket", &self.kv.name)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Whether an error says the bucket's stream does not exist (JetStream error 10059).
fn says_missing(text: &str) -> bool {
    text.contains("stream not found") || text.contains("10059")
}

impl JetStreamStore {
    /// [`unavailable`], noting a missing bucket.
    fn failed(&self, e: impl std::fmt::Display) -> StoreError {
        let text = e.to_string();
        if says_missing(&text) {
            self.missing
                .store(crate::kit::clock::now_ms().max(1), Ordering::Release);
        }
        StoreError::Unavailable(text)
    }

    /// A write to a deleted bucket waits for an acknowledgement that never comes. So once any
    /// call has found the bucket gone, writes are refused at once, and one caller looks the
    /// stream up again at most once a second: when an operator restores the bucket, writes
    /// resume without a restart.
    async fn bucket_present(&self) -> Result<(), StoreError> {
        let since = self.missing.load(Ordering::Acquire);
        if since == 0 {
            return Ok(());
        }
        let gone = || {
            StoreError::Unavailable(format!(
                "the key-value bucket {:?} is missing on the NATS server",
                self.kv.name
            ))
        };
        let now = crate::kit::clock::now_ms().max(1);
        if now.saturating_sub(since) < 1000
            || self
                .missing
                .compare_exchange(since, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Err(gone());
        }
        match self.js.get_stream(&self.kv.stream_name).await {
            Ok(_) => {
                self.missing.store(0, Ordering::Release);
                tracing::info!(bucket = %self.kv.name, "the key-value bucket is back");
                Ok(())
            }
            Err(e) => {
                self.failed(e);
                Err(gone())
            }
        }
    }

    /// An ordered consumer over the last value of every key under `whole` (whole subject tokens):
    /// how many it will deliver, and the messages.
    async fn scan(
        &self,
        whole: &str,
        headers_only: bool,
    ) -> Result<(u64, consumer::push::Ordered), StoreError> {
        let consumer = self
            .kv
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                filter_subject: format!("{}{whole}>", self.kv.prefix),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                replay_policy: consumer::ReplayPolicy::Instant,
                headers_only,
                ..Default::default()
            })
            .await
            .map_err(|e| self.failed(e))?;
        let pending = consumer.cached_info().num_pending;
        let messages = consumer.messages().await.map_err(|e| self.failed(e))?;
        Ok((pending, messages))
    }

    /// Reads `pending` messages: the live keys under `prefix` after `after`, with their values
    /// (empty when the scan was headers-only).
    async fn drain(
        &self,
        mut pending: u64,
        messages: &mut consumer::push::Ordered,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let mut entries = Vec::new();
        while pending > 0 {
            let msg = match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(self.failed(e)),
                Ok(None) | Err(_) => return Err(StoreError::Unavailable("listing stalled".into())),
            };
            let info = msg.info().map_err(|e| self.failed(e))?;
            pending = info.pending;
            let revision = info.stream_sequence;
            let deleted = msg
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_some_and(|op| op.as_str() != "PUT");
            let key = msg
                .subject
                .as_str()
                .strip_prefix(self.kv.prefix.as_str())
                .unwrap_or_default()
                .to_owned();
            if !deleted && key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
                entries.push((
                    key,
                    Versioned {
                        value: msg.payload.clone(),
                        version: revision,
                    },
                ));
            }
        }
        Ok(entries)
    }

    /// Opens `bucket`, creating it (file storage, `replicas` copies, latest value only) if missing.
    /// Safe to race with other processes starting at once (see [`ensure_stream`]). Fails clearly
    /// when the server has no JetStream.
    pub async fn open(
        client: async_nats::Client,
        bucket: &str,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        let publisher = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_WAIT)
            .build(client.clone());
        let js = jetstream::ContextBuilder::new()
            .timeout(TRY_TIMEOUT)
            .build(client);
        // The key-value stream layout of the NATS KV spec, created directly: the client's
        // create_key_value first reads account info, which it cannot parse from a 2.9 server.
        ensure_stream(
            &js,
            jetstream::stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("Edge state (versions are revisions)".into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                discard: jetstream::stream::DiscardPolicy::New,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                // The window in which a retried write is recognised by its message id.
                duplicate_window: Duration::from_secs(120),
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create JetStream key-value bucket {bucket:?} (is JetStream enabled on the NATS server, e.g. `nats-server -js`?): {e}"
            ))
        })?;
        let mut retry = Retry::until(None, open::START_BUDGET);
        let kv = loop {
            match js.get_key_value(bucket).await {
                Ok(kv) => break kv,
                Err(e) if !retry.wait().await => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot open JetStream key-value bucket {bucket:?}: {e}"
                    )));
                }
                Err(_) => {}
            }
        };
        let replicated = kv.stream.cached_info().config.num_replicas > 1;
        Ok(JetStreamStore {
            replicated,
            kv,
            js,
            publisher,
            missing: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Runs a call on the bucket. Once the bucket is known gone, refused at once (see
    /// [`JetStreamStore::bucket_present`]). A call to a deleted bucket times out rather than
    /// saying so (its direct gets and acknowledgements find no responder), so after a failure
    /// the stream is looked up once: the calls after it are then refused at once.
    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bucket_present().await?;
        let result = call.await;
        if let Err(StoreError::Unavailable(_)) = &result
            && self.missing.load(Ordering::Acquire) == 0
            && let Err(e) = self.js.get_stream(&self.kv.stream_name).await
        {
            self.failed(e);
        }
        result
    }

    /// The delete itself (see `delete`): a delete marker, written as [`write`] writes.
    async fn delete_now(&self, key: &str, expected: Option<u64>) -> Result<bool, StoreError> {
        let current = self.revision(key).await?;
        match (expected, current) {
            (Some(0), None) | (None, None) => Ok(false),
            (Some(0), Some(_)) => Err(StoreError::Conflict { current }),
            (Some(_), None) => Err(StoreError::Conflict { current: None }),
            (Some(n), Some(_)) => self
                .write(key, Bytes::new(), Some(n), Op::Delete)
                .await
                .map(|_| true),
            (None, Some(_)) => self
                .write(key, Bytes::new(), None, Op::Delete)
                .await
                .map(|_| true),
        }
    }

    /// Removes `key` if it is still at `revision`, leaving no delete marker behind (a purge of
    /// its subject below the next sequence: a newer value is kept). Whether it went.
    async fn purge_at(&self, key: &str, revision: u64) -> Result<bool, StoreError> {
        let info = self
            .kv
            .stream
            .purge()
            .filter(format!("{}{key}", self.kv.prefix))
            .sequence(revision + 1)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(info.purged > 0)
    }

    async fn revision(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.get(key).await?.map(|v| v.version))
    }

    /// One listing (see `list`), not retried.
    async fn list_once(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        // The server filters by whole subject tokens; the rest of the prefix is checked here.
        let whole = match prefix.rfind('.') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        // A key-value bucket has no ordered range read: every listing scans the prefix's keys.
        // A small one is read whole, values included, in one pass. A large one is scanned for
        // its keys only (headers, no payloads), and just the page's values are then fetched, so
        // paging through N keys moves N small messages per page, not N values.
        let (count, mut messages) = self.scan(whole, false).await?;
        let (mut found, headers_only) = if count <= (2 * limit) as u64 {
            (
                self.drain(count, &mut messages, prefix, after).await?,
                false,
            )
        } else {
            drop(messages);
            let (pending, mut messages) = self.scan(whole, true).await?;
            (
                self.drain(pending, &mut messages, prefix, after).await?,
                true,
            )
        };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let more = found.len() > limit;
        found.truncate(limit);
        let next_after = if more {
            found.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let entries = if headers_only {
            let fetched: Vec<Result<Option<(String, Versioned)>, StoreError>> =
                futures_util::stream::iter(found.into_iter().map(|(key, _)| async move {
                    match self
                        .kv
                        .entry(key.as_str())
                        .await
                        .map_err(|e| self.failed(e))?
                    {
                        Some(e) if e.operation == kv::Operation::Put => Ok(Some((
                            key,
                            Versioned {
                                value: e.value,
                                version: e.revision,
                            },
                        ))),
                        _ => Ok(None), // deleted since the scan
                    }
                }))
                .buffered(16)
                .collect()
                .await;
            fetched
                .into_iter()
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?
        } else {
            found
        };
        Ok(Page {
            entries,
            next_after,
        })
    }
}

#[async_trait]
impl Store for JetStreamStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        validate_key(key)?;
        // From any replica (the bucket allows direct reads), retried while a node is lost.
        let mut retry = Retry::new(DEFAULT_BUDGET);
        self.guarded(async {
            Ok(self
                .last(key, &mut retry)
                .await?
                .and_then(write::Last::versioned))
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, StoreError> {
        // Round trips in flight together: the cost of one, not of one per key.
        futures_util::future::try_join_all(keys.iter().map(|k| self.get(k))).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64, StoreError> {
        validate_key(key)?;
        self.guarded(self.write(key, value, expected, Op::Put))
            .await
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, StoreError> {
        validate_key(key)?;
        self.guarded(self.delete_now(key, expected)).await
    }

    async fn watch(&self, prefix: &str) -> Result<Option<super::Changes>, StoreError> {
        validate_prefix(prefix)?;
        let watch = self
            .kv
            .watch(format!("{prefix}>"))
            .await
            .map_err(|e| self.failed(e))?;
        let missing = Arc::clone(&self.missing);
        Ok(Some(Box::pin(watch.map(move |entry| {
            let e = entry.map_err(|e| {
                if says_missing(&e.to_string()) {
                    missing.store(crate::kit::clock::now_ms().max(1), Ordering::Release);
                }
                unavailable(e)
            })?;
            let value = (e.operation == kv::Operation::Put).then_some(Versioned {
                value: e.value,
                version: e.revision,
            });
            Ok((e.key, value))
        }))))
    }

    async fn delete_many(&self, items: &[(String, u64)]) -> Result<usize, StoreError> {
        for (k, _) in items {
            validate_key(k)?;
        }
        let purged: Vec<Result<bool, StoreError>> = futures_util::stream::iter(
            items
                .iter()
                .cloned()
                .map(|(key, version)| async move { self.purge_at(&key, version).await }),
        )
        .buffer_unordered(32)
        .collect()
        .await;
        purged
            .into_iter()
            .try_fold(0, |n, r| r.map(|gone| n + usize::from(gone)))
    }

    async fn prune(
        &self,
        prefix: &str,
        expired: &(dyn for<'v> Fn(&'v [u8]) -> bool + Send + Sync),
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<usize, StoreError> {
        validate_prefix(prefix)?;
        // One pass over the prefix (paging would scan it once per page), purging a batch at a
        // time as expired records stream by.
        let whole = match prefix.rfind('.') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        let (mut pending, mut messages) = self.scan(whole, false).await?;
        let mut batch = Vec::with_capacity(PRUNE_BATCH);
        let mut removed = 0;
        while pending > 0 {
            let msg = match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(self.failed(e)),
                Ok(None) | Err(_) => return Err(StoreError::Unavailable("prune stalled".into())),
            };
            let info = msg.info().map_err(|e| self.failed(e))?;
            pending = info.pending;
            let revision = info.stream_sequence;
            let put = msg
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_none_or(|op| op.as_str() == "PUT");
            let key = msg
                .subject
                .as_str()
                .strip_prefix(self.kv.prefix.as_str())
                .unwrap_or_default();
            if put && key.starts_with(prefix) && expired(&msg.payload) {
                batch.push((key.to_owned(), revision));
            }
            if batch.len() == PRUNE_BATCH || (pending == 0 && !batch.is_empty()) {
                removed += self.delete_many(&batch).await?;
                batch.clear();
                if stop() {
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        validate_prefix(prefix)?;
        // A listing only reads: retried whole while a node is lost.
        let mut retry = Retry::new(DEFAULT_BUDGET);
        loop {
            match self.list_once(prefix, after, limit).await {
                Err(StoreError::Unavailable(e))
                    if self.missing.load(Ordering::Acquire) == 0 && retry.wait().await =>
                {
                    tracing::debug!(error = %e, "listing failed; retrying");
                }
                other => return other,
            }
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        // A fresh look at the stream: the client's cached status would say "ok" after the bucket
        // was deleted.
        self.bucket_present().await?;
        self.js
            .get_stream(&self.kv.stream_name)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }

    fn backend(&self) -> &'static str {
        "jetstream"
    }
}

#[cfg(test)]
pub(crate) mod tests;
