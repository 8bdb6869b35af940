//! What the janitor deletes of auth's records once they can no longer be used.

use super::{
    REFRESH_PREFIX, REVOKED_PREFIX, RefreshRecord, SESSION_PREFIX, SessionRecord, admin, tickets,
};
use crate::kit::store::{Store, StoreError};

/// Deletes what can no longer be used: refresh records past their expiry, spent or not (an
/// expired token is refused before its spent flag is looked at, so keeping it for reuse detection
/// buys nothing), and sessions whose newest refresh token has expired. Without this every login
/// and every refresh would leave records behind forever. Returns how many were removed.
pub async fn prune_expired(
    store: &dyn Store,
    stop: impl Fn() -> bool + Send + Sync,
) -> Result<usize, StoreError> {
    let now = crate::kit::clock::now_ms();
    let tokens = crate::kit::store::prune_prefix(
        store,
        REFRESH_PREFIX,
        |v| serde_json::from_slice::<RefreshRecord>(v).map_or(true, |r| r.expires_ms <= now),
        &stop,
    )
    .await?;
    let sessions = crate::kit::store::prune_prefix(
        store,
        SESSION_PREFIX,
        |v| {
            serde_json::from_slice::<SessionRecord>(v)
                .map_or(true, |s| s.expires_ms != 0 && s.expires_ms <= now)
        },
        &stop,
    )
    .await?;
    let revoked = crate::kit::store::prune_prefix(
        store,
        REVOKED_PREFIX,
        |v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .is_none_or(|until| until <= now)
        },
        &stop,
    )
    .await?;
    let index = crate::kit::store::prune_prefix(
        store,
        admin::PLAYER_SESSIONS_PREFIX,
        |v| admin::session_entry_expired(v, now),
        &stop,
    )
    .await?;
    let tickets = tickets::prune_spent(store, &stop).await?;
    // Not a deletion, but the janitor's to do once: indexes for what older versions wrote.
    let indexed = admin::backfill(store, &stop).await?;
    if indexed > 0 {
        tracing::info!(
            indexed,
            "auth: indexed accounts and sessions made before the operators' lookups"
        );
    }
    Ok(tokens + sessions + revoked + tickets + index)
}
