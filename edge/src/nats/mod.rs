//! NATS: the connection, the wire headers, the router's remote endpoint, the responder prober, and
//! `edge worker`.

pub mod endpoint;
pub mod headers;
pub mod probe;
pub mod stream;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectOptions, Event};

use crate::BoxError;
use crate::config::NatsConfig;

/// A NATS connection and a view of whether it is up, updated from the client's events.
#[derive(Clone)]
pub struct Nats {
    /// The client.
    pub client: async_nats::Client,
    /// `true` while connected; in-flight requests watch it to fail at once on a disconnect rather
    /// than wait out their timeout.
    pub up: tokio::sync::watch::Receiver<bool>,
}

/// Connects in the background: the call returns at once and the client keeps (re)connecting by
/// itself, so an edge starts, and stays up, while NATS is down. Calls meanwhile fail fast (503).
pub async fn connect(cfg: &NatsConfig, name: &str) -> Result<Nats, BoxError> {
    let url = cfg
        .url
        .as_deref()
        .ok_or("no NATS URL configured (--nats / EDGE_NATS_URL)")?;
    let (up_tx, up) = tokio::sync::watch::channel(false);
    let up_tx = Arc::new(up_tx);
    let mut opts = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let up_tx = Arc::clone(&up_tx);
            async move {
                match event {
                    Event::Connected => {
                        up_tx.send_replace(true);
                        tracing::info!("NATS connected");
                    }
                    Event::Disconnected => {
                        up_tx.send_replace(false);
                        tracing::warn!("NATS disconnected; reconnecting");
                    }
                    Event::SlowConsumer(sid) => {
                        tracing::warn!(sid, "NATS slow consumer: messages dropped")
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }
        });
    if let Some(ca) = &cfg.ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if let Some(creds) = &cfg.credentials {
        opts = opts
            .credentials_file(creds)
            .await
            .map_err(|e| format!("cannot read NATS credentials {}: {e}", creds.display()))?;
    }
    let client = opts
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))?;
    Ok(Nats { client, up })
}

/// Whether the client is connected now.
pub fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
