//! NATS service discovery for the worker registry (capability `List`): every few seconds a
//! `$SRV.INFO` goes out, and the NATS micro services that answer within a short window are kept,
//! as `discovered` workers, until the next round. So workers and standard NATS micro services
//! appear without registering and disappear soon after they stop. Owned by the server.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use proto::aicore::capability::v1::Worker;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// How long replies to one round are collected.
const WINDOW: Duration = Duration::from_millis(300);
/// Most services kept from one round.
const MAX_FOUND: usize = 1000;

/// What the last round found.
#[derive(Debug, Default)]
pub struct Discovered {
    found: Mutex<Vec<Worker>>,
}

impl handlers::services::capability::Discovery for Discovered {
    fn discovered(&self) -> Vec<Worker> {
        self.found.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// The part of a `$SRV.INFO` reply the registry shows.
#[derive(Deserialize)]
struct Info {
    name: String,
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    metadata: Option<std::collections::HashMap<String, String>>,
}

async fn round(client: &async_nats::Client) -> Option<Vec<Worker>> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.ok()?;
    client
        .publish_with_reply("$SRV.INFO", inbox, Bytes::new())
        .await
        .ok()?;
    let now = i64::try_from(handlers::kit::clock::now_ms()).unwrap_or(i64::MAX);
    let mut found = Vec::new();
    let window = tokio::time::sleep(WINDOW);
    tokio::pin!(window);
    loop {
        tokio::select! {
            () = &mut window => break,
            msg = replies.next() => match msg {
                Some(m) if m.status.is_some() => {
                    if m.status.is_some_and(|s| s == async_nats::StatusCode::NO_RESPONDERS) {
                        break;
                    }
                }
                Some(m) => {
                    if let Ok(info) = serde_json::from_slice::<Info>(&m.payload)
                        && found.len() < MAX_FOUND
                    {
                            found.push(Worker {
                                id: info.id.chars().take(64).collect(),
                                services: vec![info.name.chars().take(64).collect()],
                                version: info.version.chars().take(64).collect(),
                                // What a micro service says about itself, bounded like a
                                // registration's.
                                metadata: info
                                    .metadata
                                    .unwrap_or_default()
                                    .into_iter()
                                    .filter(|(k, v)| k.len() <= 64 && v.len() <= 256)
                                    .take(16)
                                    .collect(),
                                last_seen_ms: now,
                                source: "discovered".into(),
                                ..Worker::default()
                            });
                    }
                }
                None => break,
            },
        }
    }
    let _ = replies.unsubscribe().await;
    found.sort_by(|a, b| (&a.services, &a.id).cmp(&(&b.services, &b.id)));
    Some(found)
}

/// Discovers every `every` until `stop`.
pub async fn run(
    client: async_nats::Client,
    into: std::sync::Arc<Discovered>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        let found = if super::connected(&client) {
            round(&client).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        if let Ok(mut f) = into.found.lock() {
            *f = found;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
