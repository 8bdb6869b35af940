//! Deletes expired records from the store now and then: idempotency records past their retention,
//! refresh tokens past their expiry, sessions whose newest refresh token has expired, cached
//! translations past their time to live, LLM spend totals of past days, and the console's
//! markers of changes already audited. Every replica and worker may run it: deletes are
//! conditional on the version read, so none removes a record someone just renewed.

use std::sync::Arc;
use std::time::Duration;

use handlers::kit::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

/// One pass every `every` until `stop`.
pub async fn run(store: Arc<dyn Store>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        report(
            "idempotency records",
            crate::router::idempotency::prune_once(store.as_ref(), &stop).await,
        );
        report(
            "refresh tokens and sessions",
            handlers::services::auth::prune_expired(store.as_ref(), || stop.is_cancelled()).await,
        );
        report(
            "finished workflow runs",
            handlers::services::orchestration::prune_finished(store.as_ref(), || {
                stop.is_cancelled()
            })
            .await,
        );
        report(
            "lapsed worker registrations",
            handlers::services::capability::prune_lapsed(store.as_ref(), || stop.is_cancelled())
                .await,
        );
        report(
            "LLM spend totals of past days",
            handlers::services::llm::spend::prune_spend(store.as_ref(), || stop.is_cancelled())
                .await,
        );
        report(
            "console audit markers",
            crate::ops::console::prune_applied(store.as_ref(), || stop.is_cancelled()).await,
        );
        report(
            "cached translations",
            handlers::services::language::prune_translations(store.as_ref(), || {
                stop.is_cancelled()
            })
            .await,
        );
    }
}

/// Reloads the set of revoked sessions every `every` until `stop`, so a logout on another replica
/// reaches the access tokens checked here within about `every`.
pub async fn sync_revoked(
    auth: Arc<handlers::services::auth::AuthService>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        match auth.sync_revoked().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("revoked sessions in sync again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot read revoked sessions; retrying");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

fn report(what: &str, result: Result<usize, StoreError>) {
    match result {
        Ok(0) => {}
        Ok(n) => tracing::debug!(removed = n, "expired {what} pruned"),
        Err(e) => tracing::warn!(error = %e, "pruning expired {what} failed"),
    }
}
