//! Versioned key-value storage. Every backend gives the same guarantees: versions only grow (a key
//! deleted and written again never reuses a version), and compare-and-set is atomic.
//!
//! Kit: imports the clock and no service.

pub(crate) mod jetstream;
mod redb_store;

use async_trait::async_trait;
use bytes::Bytes;

pub use jetstream::JetStreamStore;
pub use redb_store::RedbStore;

/// A value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Bytes,
    /// Its version; greater than every version the key had before.
    pub version: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Keys in ascending order, with their values.
    pub entries: Vec<(String, Versioned)>,
    /// The key to pass as `after` for the next page, if there is one.
    pub next_after: Option<String>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The expected version did not match; `current` is the key's version, `None` if absent.
    #[error("version mismatch (current: {current:?})")]
    Conflict {
        /// The key's current version.
        current: Option<u64>,
    },
    /// The key is not a valid key.
    #[error("{0}")]
    InvalidKey(String),
    /// The store is held by another process (redb allows one).
    #[error("the store is in use by another process")]
    InUse,
    /// No space left: nothing was written.
    #[error("storage full")]
    Full,
    /// The backend cannot be reached now; retrying may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; a bug or corruption. Logged, never shown to clients.
    #[error("store failure: {0}")]
    Backend(String),
}

/// A feed of changes: each key with its new value, or `None` when it went.
pub type Changes =
    futures_util::stream::BoxStream<'static, Result<(String, Option<Versioned>), StoreError>>;

/// Versioned storage shared by every service.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// The values at several keys, in order, in one read where the backend can (a query checking
    /// the generations of the grid cells it covers).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    /// Writes `value`. `expected`: `None` unconditional, `Some(0)` only if absent, `Some(n)` only
    /// at version `n`. Returns the new version.
    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64, StoreError>;

    /// Deletes `key` (with the same `expected` rules). Returns whether it existed.
    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, StoreError>;

    /// Keys starting with `prefix`, in order, after `after` (exclusive), at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// The first page of each of several prefixes (each with its own `limit`), in one read where
    /// the backend can: a query over many small key ranges (the world's grid cells) pays one
    /// round trip, not one per range.
    async fn list_many(&self, prefixes: &[String], limit: usize) -> Result<Vec<Page>, StoreError> {
        let mut pages = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            pages.push(self.list(p, None, limit).await?);
        }
        Ok(pages)
    }

    /// Deletes each key that is still at its version; a key changed or gone since is left.
    /// Returns how many it deleted. One write where the backend can (a prune's batch).
    async fn delete_many(&self, items: &[(String, u64)]) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (key, version) in items {
            match self.delete(key, Some(*version)).await {
                Ok(true) => removed += 1,
                Ok(false) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Deletes the records under `prefix` whose value `expired` says are, a batch at a time,
    /// until done or `stop()` says so; returns how many. Each delete is conditional on the
    /// version read, so a record rewritten meanwhile stays.
    async fn prune(
        &self,
        prefix: &str,
        expired: &(dyn for<'v> Fn(&'v [u8]) -> bool + Send + Sync),
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<usize, StoreError> {
        let mut after: Option<String> = None;
        let mut removed = 0;
        loop {
            let page = self.list(prefix, after.as_deref(), PRUNE_BATCH).await?;
            let batch: Vec<(String, u64)> = page
                .entries
                .iter()
                .filter(|(_, v)| expired(&v.value))
                .map(|(k, v)| (k.clone(), v.version))
                .collect();
            if !batch.is_empty() {
                removed += self.delete_many(&batch).await?;
            }
            match page.next_after {
                Some(next) if !stop() => after = Some(next),
                _ => return Ok(removed),
            }
        }
    }

    /// Changes under `prefix` as they happen (each key with its new value, or `None` when it
    /// went), where other processes can change the store too. `None` where this process owns
    /// the store (redb): then there is nothing to follow.
    async fn watch(&self, _prefix: &str) -> Result<Option<Changes>, StoreError> {
        Ok(None)
    }

    /// Whether this process is the store's only writer (redb: the file is locked to one
    /// process), so what it wrote is what the store holds and a cache it keeps in step with its
    /// own writes needs no check against the store.
    fn sole_writer(&self) -> bool {
        false
    }

    /// Whether the store can serve (for readiness).
    async fn check(&self) -> Result<(), StoreError>;

    /// The backend's name, for status pages.
    fn backend(&self) -> &'static str;
}

/// Deletes the records under `prefix` that `expired` says are, until done or `stop()` says so;
/// returns how many it removed. A record changed since it was read is left for the next pass.
pub async fn prune_prefix(
    store: &dyn Store,
    prefix: &str,
    expired: impl Fn(&[u8]) -> bool + Send + Sync,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    store.prune(prefix, &expired, &stop).await
}

/// How many records a prune reads and deletes at a time (one write transaction on redb).
pub const PRUNE_BATCH: usize = 500;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 512;

/// Keys are dot-separated segments of `[A-Za-z0-9_=/-]`: the subset every backend (including NATS
/// JetStream key-value, where '.' separates subject tokens) stores unchanged.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidKey(format!(
            "key must be 1 to {MAX_KEY_LEN} characters"
        )));
    }
    validate_segments(key)
}

/// A prefix may end in '.', or be empty.
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidKey(format!(
            "prefix longer than {MAX_KEY_LEN}"
        )));
    }
    validate_segments(prefix.strip_suffix('.').unwrap_or(prefix))
}

fn validate_segments(key: &str) -> Result<(), StoreError> {
    // Every store operation passes here: one pass over the bytes for the keys that are fine,
    // the walk below only to say what is wrong with one that is not.
    let mut previous = b'.';
    let fine = key.bytes().all(|b| {
        let ok = b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'-' | b'/' | b'=')
            || (b == b'.' && previous != b'.');
        previous = b;
        ok
    }) && previous != b'.';
    if fine {
        return Ok(());
    }
    for segment in key.split('.') {
        if segment.is_empty() {
            return Err(StoreError::InvalidKey(
                "key segments must not be empty (no leading, trailing or double '.')".into(),
            ));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '=')))
        {
            return Err(StoreError::InvalidKey(format!(
                "key contains {c:?}; allowed: letters, digits, '_', '-', '/', '=' and '.' between segments"
            )));
        }
    }
    Ok(())
}

/// Shared behaviour tests, run against every backend.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    pub async fn versions_and_cas(store: &dyn Store) {
        assert_eq!(store.get("a.b").await.unwrap(), None);
        let v1 = store
            .put("a.b", Bytes::from_static(b"1"), Some(0))
            .await
            .unwrap();
        assert!(v1 > 0);
        match store.put("a.b", Bytes::from_static(b"x"), Some(0)).await {
            Err(StoreError::Conflict { current }) => assert_eq!(current, Some(v1)),
            other => panic!("expected conflict, got {other:?}"),
        }
        let v2 = store
            .put("a.b", Bytes::from_static(b"2"), Some(v1))
            .await
            .unwrap();
        assert!(v2 > v1);
        match store.put("a.b", Bytes::from_static(b"x"), Some(v1)).await {
            Err(StoreError::Conflict { current }) => assert_eq!(current, Some(v2)),
            other => panic!("expected conflict, got {other:?}"),
        }
        let got = store.get("a.b").await.unwrap().unwrap();
        assert_eq!(
            got,
            Versioned {
                value: Bytes::from_static(b"2"),
                version: v2
            }
        );
        let v3 = store
            .put("a.b", Bytes::from_static(b"3"), None)
            .await
            .unwrap();
        assert!(v3 > v2);
        // Delete with a stale version fails; with the right one succeeds.
        assert!(matches!(
            store.delete("a.b", Some(v2)).await,
            Err(StoreError::Conflict { current: Some(c) }) if c == v3
        ));
        assert!(store.delete("a.b", Some(v3)).await.unwrap());
        assert!(!store.delete("a.b", None).await.unwrap());
        assert!(matches!(
            store.delete("a.b", Some(v3)).await,
            Err(StoreError::Conflict { current: None })
        ));
        // A recreated key never reuses an old version.
        let v4 = store
            .put("a.b", Bytes::from_static(b"4"), Some(0))
            .await
            .unwrap();
        assert!(v4 > v3);
        assert!(matches!(
            store.put("bad..key", Bytes::new(), None).await,
            Err(StoreError::InvalidKey(_))
        ));
    }

    pub async fn listing(store: &dyn Store) {
        for k in ["p.1.c", "p.1.a", "p.1.b", "p.2.a", "q.1"] {
            store.put(k, Bytes::from(k.to_owned()), None).await.unwrap();
        }
        let page = store.list("p.1.", None, 2).await.unwrap();
        let keys: Vec<_> = page.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["p.1.a", "p.1.b"]);
        let next = page.next_after.clone().unwrap();
        let page = store.list("p.1.", Some(&next), 2).await.unwrap();
        let keys: Vec<_> = page.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["p.1.c"]);
        assert_eq!(page.next_after, None);
        assert_eq!(store.list("p.", None, 10).await.unwrap().entries.len(), 4);
        assert_eq!(store.list("", None, 10).await.unwrap().entries.len(), 5);
        // Several prefixes at once: each page as `list` gives it.
        let prefixes = ["p.1.".to_owned(), "p.2.".to_owned(), "r.".to_owned()];
        let pages = store.list_many(&prefixes, 2).await.unwrap();
        let keys: Vec<Vec<&str>> = pages
            .iter()
            .map(|p| p.entries.iter().map(|(k, _)| k.as_str()).collect())
            .collect();
        assert_eq!(keys, vec![vec!["p.1.a", "p.1.b"], vec!["p.2.a"], vec![]]);
        assert_eq!(pages[0].next_after.as_deref(), Some("p.1.b"));
        assert!(store.list_many(&["bad..".to_owned()], 2).await.is_err());
        // Many keys, small pages (JetStream reads keys only and fetches the page's values):
        // every key once, in order, with its value and version, deleted ones left out.
        for i in 0..30 {
            let k = format!("big.k{i:02}");
            store.put(&k, Bytes::from(k.clone()), None).await.unwrap();
        }
        store.delete("big.k07", None).await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list("big.", after.as_deref(), 5).await.unwrap();
            assert!(page.entries.len() <= 5);
            for (k, v) in &page.entries {
                assert_eq!(v.value, Bytes::from(k.clone()));
                assert_eq!(store.get(k).await.unwrap().unwrap().version, v.version);
                seen.push(k.clone());
            }
            match page.next_after {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let want: Vec<String> = (0..30)
            .filter(|i| *i != 7)
            .map(|i| format!("big.k{i:02}"))
            .collect();
        assert_eq!(seen, want);
        // A page past the inline size reads the same keys.
        let whole = store.list("big.", None, 100).await.unwrap();
        let keys: Vec<String> = whole.entries.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, want);
        // Several keys in one read: in order, absent ones as None, versions as `get` gives them.
        let keys = ["big.k01".to_owned(), "big.k07".to_owned(), "q.1".to_owned()];
        let got = store.get_many(&keys).await.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap().value, Bytes::from("big.k01"));
        assert!(got[1].is_none());
        assert_eq!(
            got[2].as_ref().unwrap().version,
            store.get("q.1").await.unwrap().unwrap().version
        );
        assert!(store.get_many(&["bad..".to_owned()]).await.is_err());
        let many: Vec<String> = (0..100).map(|i| format!("big.k{:02}", i % 30)).collect();
        assert_eq!(store.get_many(&many).await.unwrap().len(), 100);
    }

    /// Prune and conditional batch deletes: only what is expired, only at the version read,
    /// nothing outside the prefix, and stopping when told.
    pub async fn prune(store: &dyn Store) {
        for i in 0..1200 {
            let v = if i % 3 == 0 { "new" } else { "old" };
            store
                .put(&format!("pr.k{i:04}"), Bytes::from(v), None)
                .await
                .unwrap();
        }
        store.put("prx.k1", Bytes::from("old"), None).await.unwrap();
        let old = |v: &[u8]| v == b"old";
        // Told to stop after its first batch: some, not all.
        let some = prune_prefix(store, "pr.", old, || true).await.unwrap();
        assert!(some > 0 && some < 800, "{some}");
        let rest = prune_prefix(store, "pr.", old, || false).await.unwrap();
        assert_eq!(some + rest, 800);
        let mut left = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list("pr.", after.as_deref(), 500).await.unwrap();
            left.extend(
                page.entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone())),
            );
            match page.next_after {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(left.len(), 400);
        assert!(left.iter().all(|(_, v)| v.as_ref() == b"new"));
        assert!(store.get("pr.k0001").await.unwrap().is_none());
        assert!(
            store.get("prx.k1").await.unwrap().is_some(),
            "outside the prefix"
        );
        // A key rewritten since it was read stays; one at its version goes.
        let a = store.put("pr.a", Bytes::from("x"), None).await.unwrap();
        let b = store.put("pr.b", Bytes::from("x"), None).await.unwrap();
        store.put("pr.a", Bytes::from("y"), None).await.unwrap();
        let gone = store
            .delete_many(&[
                ("pr.a".into(), a),
                ("pr.b".into(), b),
                ("pr.none".into(), 1),
            ])
            .await
            .unwrap();
        assert_eq!(gone, 1);
        assert_eq!(
            store.get("pr.a").await.unwrap().unwrap().value,
            Bytes::from("y")
        );
        assert!(store.get("pr.b").await.unwrap().is_none());
        // A key deleted by a prune can be created again.
        store.put("pr.b", Bytes::from("z"), Some(0)).await.unwrap();
    }

    pub async fn concurrent_cas(store: std::sync::Arc<dyn Store>) {
        let v = store
            .put("race", Bytes::from_static(b"0"), Some(0))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.put("race", Bytes::from(vec![i]), Some(v)).await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => wins += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(wins, 1, "exactly one writer wins a version");
    }
}

#[cfg(test)]
mod tests;
