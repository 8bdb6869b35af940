//! Counts the workers answering each remote service, for the route table: every few seconds a
//! `$SRV.PING.<service>` goes out and the replies that arrive within a short window are counted.
//! Owned by the server, which stops it at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

/// How many instances answered the last ping; -1 until the first ping (or for legacy workers on
/// overridden subjects, which are not NATS micro services and never answer).
pub type Responders = Arc<AtomicI64>;

/// A fresh, unknown count.
pub fn unknown() -> Responders {
    Arc::new(AtomicI64::new(-1))
}

/// How long replies to one ping are collected.
const WINDOW: Duration = Duration::from_millis(250);
/// Time between pings.
pub const INTERVAL: Duration = Duration::from_secs(5);

async fn ping(client: &async_nats::Client, service: &str) -> Option<i64> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.ok()?;
    client
        .publish_with_reply(format!("$SRV.PING.{service}"), inbox, Bytes::new())
        .await
        .ok()?;
    let mut count = 0;
    let window = tokio::time::sleep(WINDOW);
    tokio::pin!(window);
    loop {
        tokio::select! {
            _ = &mut window => break,
            msg = replies.next() => match msg {
                // The server's "no responders" status (503) is not an instance: nobody listens.
                Some(m) if m.status.is_some_and(|s| s == async_nats::StatusCode::NO_RESPONDERS) => break,
                Some(m) if m.status.is_some() => {}
                Some(_) => count += 1,
                None => break,
            },
        }
    }
    let _ = replies.unsubscribe().await;
    Some(count)
}

/// Pings every `(service, counter)` until `stop`.
pub async fn run(
    client: async_nats::Client,
    targets: Vec<(&'static str, Responders)>,
    stop: CancellationToken,
) {
    if targets.is_empty() {
        return;
    }
    loop {
        for (service, counter) in &targets {
            if !super::connected(&client) {
                counter.store(0, Ordering::Relaxed);
                continue;
            }
            if let Some(n) = ping(&client, service).await {
                let before = counter.swap(n, Ordering::Relaxed);
                if before != n && (before <= 0 || n == 0) {
                    tracing::info!(service, responders = n, "remote service responders changed");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
