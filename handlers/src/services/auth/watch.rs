//! Waiting for the logout of one login session, for a stream that stays open long after its
//! token was checked.
//!
//! A logout reaches this process at once (here) or with the next sync of the revoked set (another
//! replica), and wakes only the watches of that session. A replica whose syncs failed for longer
//! than a revoked entry lives (an access token's lifetime) may never see an entry written
//! meanwhile: janitors prune it. So a sync after such a gap starts a new epoch, and each watch
//! then reads its session's record from the store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::Notify;

use super::AuthService;

/// Grows when a sync follows a gap long enough to have missed logouts.
pub(super) type Epoch = u64;

/// The open watches, by session.
pub(super) type Watchers = std::sync::Mutex<HashMap<String, Vec<Weak<Notify>>>>;

type Check = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Completes once one session is logged out, as far as this process can learn.
pub struct SessionWatch {
    sid: String,
    auth: Arc<AuthService>,
    /// Woken (a permit is kept if it is not waiting) when this session is newly revoked.
    notify: Arc<Notify>,
    changes: tokio::sync::watch::Receiver<Epoch>,
    /// The epoch whose store check this session passed (or the one it started in).
    checked: Epoch,
    /// A store check in flight, with its epoch: kept across polls, so a stream whose other
    /// branches keep winning still finishes it.
    check: Option<(Epoch, Check)>,
}

impl std::fmt::Debug for SessionWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWatch")
            .field("checked", &self.checked)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Watches session `sid`; None if it is already known to be logged out. Registered before
    /// the look, so a logout in between is heard by one or the other.
    pub fn watch_session(self: &Arc<Self>, sid: &str) -> Option<SessionWatch> {
        let changes = self.revocations.subscribe();
        let notify = Arc::new(Notify::new());
        self.watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(sid.to_owned())
            .or_default()
            .push(Arc::downgrade(&notify));
        let checked = *changes.borrow();
        // Dropped at once if the session is over: its Drop unregisters it.
        let watch = SessionWatch {
            sid: sid.to_owned(),
            auth: Arc::clone(self),
            notify,
            changes,
            checked,
            check: None,
        };
        (!self.is_revoked(sid)).then_some(watch)
    }

    /// Wakes the open watches of `sids`, newly revoked.
    pub(super) fn tell_watchers<'a>(&self, sids: impl IntoIterator<Item = &'a str>) {
        let watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        for sid in sids {
            for notify in watchers.get(sid).into_iter().flatten() {
                if let Some(notify) = notify.upgrade() {
                    notify.notify_one();
                }
            }
        }
    }

    /// Whether session `sid` is logged out (or gone) by its record in the store.
    async fn session_ended(&self, sid: &str) -> Result<bool, crate::kit::status::Status> {
        Ok(self.active_session_player(sid).await?.is_none())
    }
}

impl SessionWatch {
    /// Completes once the session is logged out. Cancel-safe: a store check in flight is kept
    /// for the next call. Never completes if revocations can no longer be heard.
    pub async fn ended(&mut self) {
        loop {
            if self.auth.is_revoked(&self.sid) {
                return;
            }
            let epoch = *self.changes.borrow_and_update();
            if epoch != self.checked {
                let (auth, sid) = (&self.auth, &self.sid);
                let (of, check) = self
                    .check
                    .get_or_insert_with(|| (epoch, store_check(Arc::clone(auth), sid.clone())));
                let ended = check.await;
                let of = *of;
                self.check = None;
                if ended {
                    return;
                }
                self.checked = of;
                continue;
            }
            tokio::select! {
                () = self.notify.notified() => {}
                changed = self.changes.changed() => if changed.is_err() {
                    // Revocations can no longer be heard; only this session's own still can.
                    self.notify.notified().await;
                }
            }
        }
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut watchers = self
            .auth
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = watchers.get_mut(&self.sid) {
            let mine = Arc::as_ptr(&self.notify);
            list.retain(|w| !std::ptr::eq(w.as_ptr(), mine) && w.strong_count() > 0);
            if list.is_empty() {
                watchers.remove(&self.sid);
            }
        }
    }
}

/// Reads the session's record, after a pause that spreads a replica's streams over a few
/// seconds; retried while the store fails (the stream lives on meanwhile, as it would have),
/// backing off to a minute with jitter, so a store just back is not flooded.
fn store_check(auth: Arc<AuthService>, sid: String) -> Check {
    Box::pin(async move {
        let spread = |ms: u64| Duration::from_millis(rand::thread_rng().gen_range(0..ms.max(1)));
        let mut pause = spread(3000);
        let mut backoff = 2000u64;
        loop {
            tokio::time::sleep(pause).await;
            match auth.session_ended(&sid).await {
                Ok(ended) => return ended,
                Err(_) => {
                    pause = Duration::from_millis(backoff / 2) + spread(backoff / 2);
                    backoff = (backoff * 2).min(60_000);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proto::aicore::auth::v1::{AuthServiceHandler as _, LogoutRequest};

    use super::*;
    use crate::kit::context::{Context, Principal};
    use crate::kit::store::Store;
    use crate::services::auth::AuthConfig;
    use crate::services::auth::tickets::tests::logged_in as login;

    async fn replicas() -> (
        tempfile::TempDir,
        Arc<dyn Store>,
        Arc<AuthService>,
        Arc<AuthService>,
    ) {
        let (dir, store) = crate::kit::testing::temp_store();
        let config = || AuthConfig {
            hash_concurrency: 1,
            ..AuthConfig::default()
        };
        let a = AuthService::new(Arc::clone(&store), config())
            .await
            .unwrap();
        let b = AuthService::new(Arc::clone(&store), config())
            .await
            .unwrap();
        (dir, store, Arc::new(a), Arc::new(b))
    }

    fn sid(ctx: &Context) -> &str {
        &ctx.session.as_ref().unwrap().0
    }

    async fn ends_within(watch: &mut SessionWatch, d: Duration) -> bool {
        tokio::time::timeout(d, watch.ended()).await.is_ok()
    }

    #[tokio::test]
    async fn a_logout_ends_watches_here_at_once_and_elsewhere_after_a_sync() {
        let (_dir, _store, a, b) = replicas().await;
        let (phone, refresh) = login(&a, "wren").await;
        let (laptop, _) = login(&a, "wren").await;
        assert!(matches!(phone.principal, Some(Principal::Player { .. })));
        let mut here = a.watch_session(sid(&phone)).unwrap();
        let mut there = b.watch_session(sid(&phone)).unwrap();
        let mut other_session = a.watch_session(sid(&laptop)).unwrap();
        let logout = LogoutRequest {
            refresh_token: refresh,
        };
        a.logout(phone.clone(), logout).await.unwrap();
        // Only the logged-out session's watches are woken, not every open stream's.
        let woken = tokio::time::timeout(Duration::ZERO, other_session.notify.notified());
        assert!(woken.await.is_err(), "another session's watch was woken");
        assert!(ends_within(&mut here, Duration::from_secs(1)).await);
        assert!(a.watch_session(sid(&phone)).is_none(), "known logged out");
        assert!(!ends_within(&mut there, Duration::from_millis(100)).await);
        b.sync_revoked().await.unwrap();
        assert!(ends_within(&mut there, Duration::from_secs(1)).await);
        assert!(!ends_within(&mut other_session, Duration::from_millis(100)).await);
    }

    /// A replica whose syncs failed for longer than a revoked entry lives (pruned meanwhile by
    /// another replica's janitor) still ends the logged-out session's streams: after the gap
    /// each watch reads its session's record.
    #[tokio::test(start_paused = true)]
    async fn after_a_long_sync_gap_watches_ask_the_store() {
        let (_dir, store, a, b) = replicas().await;
        let (phone, refresh) = login(&a, "ash").await;
        let (laptop, _) = login(&a, "ash").await;
        let mut phone_watch = b.watch_session(sid(&phone)).unwrap();
        let mut laptop_watch = b.watch_session(sid(&laptop)).unwrap();
        let logout = LogoutRequest {
            refresh_token: refresh,
        };
        a.logout(phone.clone(), logout).await.unwrap();
        // The entry is gone before `b` reads again, as after a janitor's pass.
        let key = format!("{}{}", super::super::REVOKED_PREFIX, sid(&phone));
        assert!(store.delete(&key, None).await.unwrap());
        b.sync_revoked().await.unwrap();
        assert!(
            !ends_within(&mut phone_watch, Duration::from_secs(10)).await,
            "no gap: nothing to ask"
        );
        // Now the same with the last whole read older than an entry's life.
        b.synced_ms.store(
            crate::kit::clock::now_ms() - b.revoked_for_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
        b.sync_revoked().await.unwrap();
        // A poll cut short keeps its store check for the next one (a busy stream's other
        // branches win most polls).
        assert!(!ends_within(&mut phone_watch, Duration::from_millis(1)).await);
        assert!(phone_watch.check.is_some(), "the check in flight is kept");
        assert!(ends_within(&mut phone_watch, Duration::from_secs(4)).await);
        // The live session's watch asks too, and goes on.
        assert!(!ends_within(&mut laptop_watch, Duration::from_secs(10)).await);
        assert_eq!(laptop_watch.checked, *b.revocations.borrow());
        assert!(laptop_watch.check.is_none());
        // Watches unregister when they end.
        drop((phone_watch, laptop_watch));
        assert!(b.watchers.lock().unwrap().is_empty());
    }
}
