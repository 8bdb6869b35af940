//! The operators' audit: every change made on the admin side (the console, `/admin/keys`,
//! `edge keys`) recorded durably in the store (who, what, when, before and after) and fed live
//! on the reserved topic [`TOPIC`], which only the edge appends to (straight to the event log,
//! never through the events service) and which no player or service key may read or publish
//! (`handlers::services::events::may_read`).

use std::sync::Arc;

use bytes::Bytes;
use handlers::Status;
use handlers::kit::event_log::EventLog;
use handlers::kit::store::Store;
use proto::aicore::events::v1::{Event, Publisher, PublisherKind};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The live feed of audit entries.
pub const TOPIC: &str = "admin.audit";
/// Store keys of entries: `audit.<20 digits, newest first>.<8 hex>`, so a listing from the
/// start reads the newest entries first.
const PREFIX: &str = "audit.";

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// Who: a console operator (`console:alice`), the admin listener's bearer (`admin-api`), or
    /// `edge keys` on the store (`cli`).
    pub who: String,
    /// What, as an event type: `admin.key_created`, `admin.key_revoked`.
    pub action: String,
    /// What it was done to: a key's name.
    pub target: String,
    /// The record before (null when it did not exist).
    pub before: Value,
    /// The record after.
    pub after: Value,
}

impl Entry {
    /// An entry stamped now.
    pub fn now(who: &str, action: &str, target: &str, before: Value, after: Value) -> Entry {
        Entry {
            at_ms: handlers::kit::clock::now_ms(),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            before,
            after,
        }
    }
}

fn key(at_ms: u64) -> String {
    let mut tail = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut tail);
    let hex: String = tail.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}{:020}.{hex}", u64::MAX - at_ms)
}

/// Records `entry` in `store` and, when this process has the event log, on [`TOPIC`]. The store
/// write is the record: a failed live feed is logged, not an error.
pub async fn record(
    store: &Arc<dyn Store>,
    events: Option<&Arc<dyn EventLog>>,
    entry: &Entry,
) -> Result<(), Status> {
    let bytes = serde_json::to_vec(entry).map_err(Status::internal)?;
    store
        .put(&key(entry.at_ms), Bytes::from(bytes), Some(0))
        .await?;
    tracing::info!(who = %entry.who, action = %entry.action, target = %entry.target, "audit");
    if let Some(log) = events {
        let payload = serde_json::to_value(entry)
            .and_then(serde_json::from_value::<pbjson_types::Value>)
            .map_err(Status::internal)?;
        let event = Event {
            topic: TOPIC.to_owned(),
            sequence: 0,
            r#type: entry.action.clone(),
            payload: Some(payload),
            published_at_ms: i64::try_from(entry.at_ms).unwrap_or(i64::MAX),
            publisher: Some(Publisher {
                kind: PublisherKind::Service.into(),
                service: String::new(),
            }),
            payload_type: String::new(),
        };
        if let Err(e) = log.append(event).await {
            tracing::warn!(error = %e.message(), "audit entry stored but not fed live");
        }
    }
    Ok(())
}

/// Deletes the entries recorded before `cutoff_ms` (Unix milliseconds), a page at a time until
/// none is left or `stop` says so; returns how many. Keys sort newest first, so the old ones are
/// exactly those after the cutoff's key.
pub async fn prune(
    store: &dyn Store,
    cutoff_ms: u64,
    stop: impl Fn() -> bool,
) -> Result<usize, Status> {
    let from = format!("{PREFIX}{:020}", u64::MAX - cutoff_ms);
    let mut removed = 0;
    while !stop() {
        let page = store.list(PREFIX, Some(&from), 256).await?;
        let items: Vec<(String, u64)> = page
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.version))
            .collect();
        if items.is_empty() {
            break;
        }
        let n = store.delete_many(&items).await?;
        removed += n;
        if n == 0 {
            // Changed under us (another replica pruned them): next pass.
            break;
        }
    }
    Ok(removed)
}

/// Prunes entries older than `retention` at start and every hour until `stop` (every replica
/// may: deletes are conditional on the version read).
pub async fn keep_for(
    store: Arc<dyn Store>,
    retention: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let cutoff = handlers::kit::clock::now_ms()
            .saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
        match prune(store.as_ref(), cutoff, || stop.is_cancelled()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned audit entries past their retention"),
            Err(e) => tracing::warn!(error = %e.message(), "cannot prune the audit"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}

/// The newest `limit` entries, newest first.
pub async fn recent(store: &Arc<dyn Store>, limit: usize) -> Result<Vec<Entry>, Status> {
    let page = store.list(PREFIX, None, limit).await?;
    page.entries
        .iter()
        .map(|(_, v)| serde_json::from_slice(&v.value).map_err(Status::internal))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn entries_are_kept_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(handlers::kit::store::RedbStore::open(&dir.path().join("a.redb")).unwrap());
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let mut e = Entry::now(
                "console:alice",
                "admin.key_created",
                name,
                Value::Null,
                json!({"name": name}),
            );
            e.at_ms = 1_000 + i as u64;
            record(&store, None, &e).await.unwrap();
        }
        let got = recent(&store, 2).await.unwrap();
        let names: Vec<&str> = got.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(names, ["c", "b"]);
        assert_eq!(got[0].who, "console:alice");
    }

    #[tokio::test]
    async fn entries_past_their_retention_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(handlers::kit::store::RedbStore::open(&dir.path().join("a.redb")).unwrap());
        for at in [1_000u64, 2_000, 3_000, 4_000] {
            let mut e = Entry::now(
                "cli",
                "admin.key_created",
                &at.to_string(),
                Value::Null,
                json!({}),
            );
            e.at_ms = at;
            record(&store, None, &e).await.unwrap();
        }
        assert_eq!(prune(store.as_ref(), 2_500, || false).await.unwrap(), 2);
        let left: Vec<String> = recent(&store, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(left, ["4000", "3000"]);
        assert_eq!(prune(store.as_ref(), 2_500, || false).await.unwrap(), 0);
        assert_eq!(
            prune(store.as_ref(), 10_000, || true).await.unwrap(),
            0,
            "stopped"
        );
    }

    #[tokio::test]
    async fn entries_are_fed_live_on_the_reserved_topic() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(handlers::kit::store::RedbStore::open(&dir.path().join("a.redb")).unwrap());
        let log: Arc<dyn EventLog> = Arc::new(handlers::kit::event_log::StoreLog::new(
            Arc::clone(&store),
            handlers::kit::event_log::Retention::default(),
        ));
        let e = Entry::now(
            "cli",
            "admin.key_revoked",
            "game",
            json!({"name": "game"}),
            json!({"name": "game", "revoked_ms": 5}),
        );
        record(&store, Some(&log), &e).await.unwrap();
        let fed = log.read(TOPIC, 0, 10).await.unwrap();
        assert_eq!(fed.len(), 1);
        assert_eq!(fed[0].r#type, "admin.key_revoked");
        let payload = serde_json::to_value(fed[0].payload.as_ref().unwrap()).unwrap();
        // Numbers in an event payload are JSON's: the time reads back as a float.
        assert_eq!(payload["who"], "cli");
        assert_eq!(payload["target"], "game");
        assert_eq!(payload["after"]["revoked_ms"], 5.0);
        assert_eq!(payload["at_ms"].as_f64(), Some(e.at_ms as f64));
    }
}
