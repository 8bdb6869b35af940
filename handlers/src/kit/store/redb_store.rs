//! The embedded backend: one redb file in the data directory, durable on commit (fsync).
//! Writes fsync, so they run on tokio's blocking pool. Reads are served from redb's page cache
//! (CPU work of a few microseconds, like parsing a request) and run inline: handing each one to
//! the blocking pool cost more in thread switches than the read itself (see the unary benchmark).
//! Listings of at most [`INLINE_ENTRIES`] entries run inline for the same reason; longer ones
//! (up to 500 entries a page) go to the blocking pool so as not to hold an async thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableTable, TableDefinition};

use super::{Page, Store, StoreError, Versioned, validate_key, validate_prefix};

/// key -> 8-byte little-endian version, then the value.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// "seq" -> the last version handed out (versions are global, so never reused).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Reads up to this many entries run on the calling thread.
const INLINE_ENTRIES: usize = 64;

/// A store in one redb file.
///
/// After an I/O error (a full disk) redb refuses every later transaction until the database is
/// reopened, so the store reopens it itself on the next call: the failed write is reported
/// ("nothing was written"), everything committed before stays, and the edge recovers without a
/// restart once space is freed.
#[derive(Clone)]
pub struct RedbStore {
    path: Arc<PathBuf>,
    db: Arc<RwLock<Option<Arc<Database>>>>,
    poisoned: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}

fn map_err<E: Into<redb::Error>>(e: E) -> StoreError {
    match e.into() {
        // ENOSPC, EFBIG (a file size limit), EDQUOT: no room for the write.
        redb::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::FileTooLarge
                    | std::io::ErrorKind::QuotaExceeded
            ) || matches!(io.raw_os_error(), Some(27 | 28 | 122)) =>
        {
            StoreError::Full
        }
        redb::Error::PreviousIo => {
            StoreError::Unavailable("the store is reopening after an I/O error".into())
        }
        other => StoreError::Backend(other.to_string()),
    }
}

fn decode(raw: &[u8]) -> Result<Versioned, StoreError> {
    let (head, value) = raw
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Backend("corrupt record: shorter than its version".into()))?;
    Ok(Versioned {
        value: Bytes::copy_from_slice(value),
        version: u64::from_le_bytes(*head),
    })
}

fn check_expected(current: Option<u64>, expected: Option<u64>) -> Result<(), StoreError> {
    match (expected, current) {
        (None, _) | (Some(0), None) => Ok(()),
        (Some(e), Some(c)) if e == c => Ok(()),
        _ => Err(StoreError::Conflict { current }),
    }
}

/// The page cache. redb's default is 1 GiB, so a replica's memory would grow with its store
/// until then (a soak run saw it climb); the hot set of game state is far smaller.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// `Database::create`, with the panics redb raises on some damaged files (a truncated file trips
/// an assertion) turned into an error that names the file: a damaged store must stop the start
/// with a clear message, never a crash. While the open runs, the panic hook records the message
/// instead of printing it (the swap is process-wide but lasts one open, at start or on reopen).
fn create_db(path: &Path) -> Result<Database, StoreError> {
    let caught = Arc::new(std::sync::Mutex::new(None::<String>));
    let record = Arc::clone(&caught);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let mut slot = record.lock().unwrap_or_else(|p| p.into_inner());
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        *slot = Some(message);
    }));
    let opened =
        std::panic::catch_unwind(|| Database::builder().set_cache_size(CACHE_BYTES).create(path));
    std::panic::set_hook(previous);
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::InUse),
        Ok(Err(other)) => Err(map_err(other)),
        Err(_) => {
            let why = caught
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            Err(StoreError::Backend(format!(
                "the store file is damaged ({why}); restore it from a backup or move it away"
            )))
        }
    }
}

impl RedbStore {
    /// Opens (or creates) `path`. Fails clearly if another process holds it or it is damaged.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A new file is private from its first byte: it will hold the token signing key.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::Backend(format!("cannot create the store: {e}"))),
            }
        }
        let db = create_db(path)?;
        let txn = db.begin_write().map_err(map_err)?;
        {
            txn.open_table(KV).map_err(map_err)?;
            txn.open_table(META).map_err(map_err)?;
        }
        txn.commit().map_err(map_err)?;
        Ok(RedbStore {
            path: Arc::new(path.to_owned()),
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            poisoned: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The open database; after an I/O error, reopened first (on the blocking pool: reopening
    /// reads the file).
    async fn db(&self) -> Result<Arc<Database>, StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.reopen())
                .await
                .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?;
        }
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        guard.clone().ok_or_else(|| {
            StoreError::Unavailable("the store is reopening after an I/O error".into())
        })
    }

    fn reopen(&self) {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.poisoned.load(Ordering::Acquire) {
            return;
        }
        // Drop our handle; a call still holding one finishes first, so this may take a retry.
        drop(guard.take());
        match create_db(self.path.as_path()) {
            Ok(db) => {
                *guard = Some(Arc::new(db));
                self.poisoned.store(false, Ordering::Release);
                tracing::warn!(path = %self.path.display(), "store reopened after an I/O error");
            }
            Err(e) => tracing::warn!(error = %e, "store reopen failed; retrying on the next call"),
        }
    }

    /// Notes errors after which redb must be reopened.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Full | StoreError::Unavailable(_) | StoreError::Backend(_)) = &result
        {
            self.poisoned.store(true, Ordering::Release);
        }
        result
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db().await?;
        let result = tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?;
        self.observe(result)
    }

    fn write(
        db: &Database,
        key: &str,
        value: Option<&[u8]>,
        expected: Option<u64>,
    ) -> Result<(Option<u64>, u64), StoreError> {
        let txn = db.begin_write().map_err(map_err)?;
        let (previous, version) = {
            let mut kv = txn.open_table(KV).map_err(map_err)?;
            let current = match kv.get(key).map_err(map_err)? {
                Some(raw) => Some(decode(raw.value())?.version),
                None => None,
            };
            check_expected(current, expected)?;
            let mut meta = txn.open_table(META).map_err(map_err)?;
            let seq = meta
                .get("seq")
                .map_err(map_err)?
                .map(|v| v.value())
                .unwrap_or(0)
                + 1;
            match value {
                Some(value) => {
                    meta.insert("seq", seq).map_err(map_err)?;
                    let mut raw = Vec::with_capacity(8 + value.len());
                    raw.extend_from_slice(&seq.to_le_bytes());
                    raw.extend_from_slice(value);
                    kv.insert(key, raw.as_slice()).map_err(map_err)?;
                }
                None => {
                    kv.remove(key).map_err(map_err)?;
                }
            }
            (current, seq)
        };
        txn.commit().map_err(map_err)?;
        Ok((previous, version))
    }
}

#[async_trait]
impl Store for RedbStore {
    fn sole_writer(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        validate_key(key)?;
        let db = self.db().await?;
        let read = || {
            let txn = db.begin_read().map_err(map_err)?;
            let kv = txn.open_table(KV).map_err(map_err)?;
            let raw = kv.get(key).map_err(map_err)?;
            raw.map(|r| decode(r.value())).transpose()
        };
        let result = read();
        drop(db);
        self.observe(result)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, StoreError> {
        for k in keys {
            validate_key(k)?;
        }
        if keys.len() <= INLINE_ENTRIES {
            let db = self.db().await?;
            let result = get_many(&db, keys);
            drop(db);
            return self.observe(result);
        }
        let keys = keys.to_vec();
        self.blocking(move |db| get_many(db, &keys)).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.blocking(move |db| Self::write(db, &key, Some(&value), expected).map(|(_, v)| v))
            .await
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, StoreError> {
        validate_key(key)?;
        if expected.is_some_and(|e| e > 0) || expected.is_none() {
            let key = key.to_owned();
            return self
                .blocking(move |db| {
                    Self::write(db, &key, None, expected).map(|(prev, _)| prev.is_some())
                })
                .await;
        }
        // expected == 0: "must not exist"; deleting nothing is then a successful no-op.
        match self.get(key).await? {
            None => Ok(false),
            Some(v) => Err(StoreError::Conflict {
                current: Some(v.version),
            }),
        }
    }

    async fn delete_many(&self, items: &[(String, u64)]) -> Result<usize, StoreError> {
        for (k, _) in items {
            validate_key(k)?;
        }
        let items = items.to_vec();
        // One transaction (one fsync) for the whole batch.
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(map_err)?;
            let mut removed = 0;
            {
                let mut kv = txn.open_table(KV).map_err(map_err)?;
                for (key, version) in &items {
                    let current = match kv.get(key.as_str()).map_err(map_err)? {
                        Some(raw) => Some(decode(raw.value())?.version),
                        None => None,
                    };
                    if current == Some(*version) {
                        kv.remove(key.as_str()).map_err(map_err)?;
                        removed += 1;
                    }
                }
            }
            txn.commit().map_err(map_err)?;
            Ok(removed)
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        validate_prefix(prefix)?;
        if limit <= INLINE_ENTRIES {
            let db = self.db().await?;
            let result = (|| {
                let txn = db.begin_read().map_err(map_err)?;
                let kv = txn.open_table(KV).map_err(map_err)?;
                page(&kv, prefix, after, limit)
            })();
            drop(db);
            return self.observe(result);
        }
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(map_err)?;
            let kv = txn.open_table(KV).map_err(map_err)?;
            page(&kv, &prefix, after.as_deref(), limit)
        })
        .await
    }

    async fn list_many(&self, prefixes: &[String], limit: usize) -> Result<Vec<Page>, StoreError> {
        for p in prefixes {
            validate_prefix(p)?;
        }
        let prefixes = prefixes.to_vec();
        // One thread hop and one read transaction for all of them.
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(map_err)?;
            let kv = txn.open_table(KV).map_err(map_err)?;
            prefixes.iter().map(|p| page(&kv, p, None, limit)).collect()
        })
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.blocking(|db| db.begin_read().map(|_| ()).map_err(map_err))
            .await
    }

    fn backend(&self) -> &'static str {
        "redb"
    }
}

/// The smallest string greater than every string starting with `prefix`, if there is one.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7F {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// The values at `keys`, in one read transaction.
fn get_many(db: &Database, keys: &[String]) -> Result<Vec<Option<Versioned>>, StoreError> {
    let txn = db.begin_read().map_err(map_err)?;
    let kv = txn.open_table(KV).map_err(map_err)?;
    keys.iter()
        .map(|k| match kv.get(k.as_str()).map_err(map_err)? {
            Some(raw) => decode(raw.value()).map(Some),
            None => Ok(None),
        })
        .collect()
}

/// One page of keys under `prefix` after `after`, from an open table.
fn page(
    kv: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Page, StoreError> {
    let limit = limit.max(1);
    let start = match after {
        Some(a) if a >= prefix => a,
        _ => prefix,
    };
    let mut entries = Vec::new();
    let mut more = false;
    // A bounded range: the first key past every key with this prefix (its last byte plus one;
    // keys are ASCII, so no prefix ends in 0xFF). An open-ended range costs redb far more.
    let end = prefix_end(prefix);
    let range = match &end {
        Some(end) => kv.range(start..end.as_str()),
        None => kv.range(start..),
    };
    for item in range.map_err(map_err)? {
        let (k, v) = item.map_err(map_err)?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        if after == Some(k) {
            continue;
        }
        if entries.len() == limit {
            more = true;
            break;
        }
        entries.push((k.to_owned(), decode(v.value())?));
    }
    let next_after = if more {
        entries.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    Ok(Page {
        entries,
        next_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::store::conformance;

    fn open() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("edge.redb")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn versions_and_cas() {
        let (_dir, store) = open();
        conformance::versions_and_cas(&store).await;
    }

    #[tokio::test]
    async fn listing() {
        let (_dir, store) = open();
        conformance::listing(&store).await;
    }

    #[tokio::test]
    async fn prune() {
        let (_dir, store) = open();
        conformance::prune(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_cas() {
        let (_dir, store) = open();
        conformance::concurrent_cas(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn recovers_from_a_poisoned_database() {
        let (_dir, store) = open();
        let v = store
            .put("k", Bytes::from_static(b"v"), None)
            .await
            .unwrap();
        // As after a failed commit: the next call reopens, and committed data is there.
        store.poisoned.store(true, Ordering::Release);
        assert_eq!(store.get("k").await.unwrap().unwrap().version, v);
        assert!(!store.poisoned.load(Ordering::Acquire));
        assert!(store.put("k2", Bytes::new(), None).await.unwrap() > v);
        assert!(matches!(
            map_err(redb::Error::Io(std::io::Error::from_raw_os_error(27))),
            StoreError::Full
        ));
        assert!(matches!(
            map_err(redb::Error::Io(std::io::Error::from_raw_os_error(28))),
            StoreError::Full
        ));
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.redb");
        let v = {
            let store = RedbStore::open(&path).unwrap();
            store
                .put("k", Bytes::from_static(b"kept"), None)
                .await
                .unwrap()
        };
        let store = RedbStore::open(&path).unwrap();
        let got = store.get("k").await.unwrap().unwrap();
        assert_eq!(got.value, Bytes::from_static(b"kept"));
        assert_eq!(got.version, v);
        // The sequence survives too: no version is reused after a restart.
        assert!(store.put("k2", Bytes::new(), None).await.unwrap() > v);
    }
}
