//! Doing something once per game hour, across replicas: a cursor record holds the last game hour
//! handled, and moves forward by compare-and-set after the hour's work. Two replicas may both do
//! an hour's work (one of them then loses the compare-and-set), so the work must be idempotent:
//! the heralds publish under keys that name the hour. After downtime only the last
//! [`MAX_CATCH_UP_HOURS`] are handled: older news helps nobody.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;

use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Game ms in a game hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Most hours handled after downtime.
pub const MAX_CATCH_UP_HOURS: i64 = 24;

/// The cursor at `key`.
pub struct HourCursor {
    store: Arc<dyn Store>,
    key: &'static str,
}

/// Hours to handle, and the cursor's version to move it from.
pub struct Due {
    /// The hours begun since the last handled, oldest first.
    pub hours: RangeInclusive<i64>,
    version: u64,
}

impl HourCursor {
    /// The cursor stored at `key`.
    pub fn new(store: Arc<dyn Store>, key: &'static str) -> Self {
        HourCursor { store, key }
    }

    /// The hours begun up to `hour_now` that nobody handled yet; none on the very first call
    /// (handling starts with the next hour).
    pub async fn due(&self, hour_now: i64) -> Result<Option<Due>, Status> {
        let Some(v) = self.store.get(self.key).await? else {
            self.put(hour_now, 0).await?;
            return Ok(None);
        };
        let last = std::str::from_utf8(&v.value)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(hour_now - 1);
        Ok((last < hour_now).then(|| Due {
            hours: (last + 1).max(hour_now - MAX_CATCH_UP_HOURS + 1)..=hour_now,
            version: v.version,
        }))
    }

    /// Records the hours of `due` handled.
    pub async fn done(&self, due: Due) -> Result<(), Status> {
        self.put(*due.hours.end(), due.version).await
    }

    async fn put(&self, hour: i64, version: u64) -> Result<(), Status> {
        match self
            .store
            .put(self.key, Bytes::from(hour.to_string()), Some(version))
            .await
        {
            // Another replica moved it: it handled the same hours.
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn hours_are_due_once_and_old_ones_are_dropped() {
        let (_d, store) = crate::kit::testing::temp_store();
        let a = HourCursor::new(Arc::clone(&store), "t.cursor");
        let b = HourCursor::new(Arc::clone(&store), "t.cursor");
        assert!(
            a.due(100).await.unwrap().is_none(),
            "the first call starts the cursor"
        );
        assert!(a.due(100).await.unwrap().is_none());
        let due = a.due(103).await.unwrap().unwrap();
        assert_eq!(due.hours, 101..=103);
        // A second replica sees the same hours until one records them.
        let also = b.due(103).await.unwrap().unwrap();
        a.done(due).await.unwrap();
        b.done(also).await.unwrap();
        assert!(b.due(103).await.unwrap().is_none());
        // After a long stop, only the last day.
        let late = a.due(1000).await.unwrap().unwrap();
        assert_eq!(late.hours, 977..=1000);
    }
}
