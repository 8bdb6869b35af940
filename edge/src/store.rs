//! Where state lives: the `[store]` section, and opening the configured store (redb in the data
//! directory, or a JetStream key-value bucket) with the NATS connection it may need.

use std::net::SocketAddr;
use std::sync::Arc;

use handlers::store::{JetStreamStore, RedbStore, Store};
use serde::{Deserialize, Serialize};

use crate::nats;
use crate::private_files;

/// The store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// One redb file in the data directory: one machine.
    Redb,
    /// A NATS JetStream key-value bucket: shared by every edge replica and worker.
    Jetstream,
}

/// Where state lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// redb (default) or jetstream.
    pub backend: StoreBackend,
    /// The JetStream key-value bucket.
    pub bucket: String,
    /// JetStream replicas of the bucket (3 in a production cluster).
    pub replicas: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Redb,
            bucket: "edge".into(),
            replicas: 1,
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The redb file is held by a running edge.
    #[error("cannot open store {0}: it is in use by another process (a running edge?)")]
    InUse(std::path::PathBuf),
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// Connects to NATS (if configured) and opens the configured store.
pub async fn open_store(
    config: &StoreConfig,
    nats_config: &nats::NatsConfig,
    data_dir: &std::path::Path,
) -> Result<(Arc<dyn Store>, Option<nats::Nats>), OpenError> {
    let nats = match &nats_config.url {
        Some(_) => Some(
            nats::connect(nats_config, "edge")
                .await
                .map_err(|e| OpenError::Other(e.to_string()))?,
        ),
        None => None,
    };
    let store: Arc<dyn Store> = match (config.backend, &nats) {
        (StoreBackend::Jetstream, Some(client)) => Arc::new(
            JetStreamStore::open(client.client.clone(), &config.bucket, config.replicas)
                .await
                .map_err(|e| OpenError::Other(format!("cannot open the JetStream store: {e}")))?,
        ),
        (StoreBackend::Jetstream, None) => {
            return Err(OpenError::Other(
                "the jetstream store needs a NATS URL".into(),
            ));
        }
        (StoreBackend::Redb, _) => {
            private_files::create_dir(data_dir).map_err(|e| {
                OpenError::Other(format!(
                    "cannot create data directory {}: {e}",
                    data_dir.display()
                ))
            })?;
            let path = data_dir.join("edge.redb");
            match RedbStore::open(&path) {
                Ok(store) => {
                    private_files::warn_if_loose(&[data_dir, &path]);
                    // Whoever recorded an admin address here no longer holds the store.
                    forget_admin_address(data_dir);
                    Arc::new(store)
                }
                Err(handlers::store::StoreError::InUse) => return Err(OpenError::InUse(path)),
                Err(e) => {
                    return Err(OpenError::Other(format!(
                        "cannot open store {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    };
    Ok((store, nats))
}

/// The file in the data directory where a serving edge records its admin listener.
const ADMIN_ADDRESS_FILE: &str = "admin-address";

/// Records where the edge holding `data_dir`'s store answers `/admin/keys` (its bound address,
/// so port 0 works too). Written whole or not at all.
pub fn record_admin_address(data_dir: &std::path::Path, addr: SocketAddr) -> std::io::Result<()> {
    let tmp = data_dir.join(format!(".{ADMIN_ADDRESS_FILE}.tmp"));
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, data_dir.join(ADMIN_ADDRESS_FILE))
}

/// Removes a recorded address: done by whoever takes the store, so none outlives its holder.
pub fn forget_admin_address(data_dir: &std::path::Path) {
    match std::fs::remove_file(data_dir.join(ADMIN_ADDRESS_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot remove the stale admin address file"),
    }
}

/// The admin address the edge holding `data_dir`'s store recorded, if any.
pub fn recorded_admin_address(data_dir: &std::path::Path) -> Option<SocketAddr> {
    std::fs::read_to_string(data_dir.join(ADMIN_ADDRESS_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}
