//! Where state lives: the `[store]` section, and opening the configured store (redb in the data
//! directory, or a JetStream key-value bucket) with the NATS connection it may need.

use std::net::SocketAddr;
use std::sync::Arc;

use handlers::kit::store::{JetStreamStore, RedbStore, Store};
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
                Err(handlers::kit::store::StoreError::InUse) => return Err(OpenError::InUse(path)),
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
/// so port 0 works too; a wildcard as loopback of its family). Written whole or not at all,
/// private (0600), never through a planted link.
pub fn record_admin_address(data_dir: &std::path::Path, addr: SocketAddr) -> std::io::Result<()> {
    use std::io::Write as _;
    let addr = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    };
    let tmp = data_dir.join(format!(".{ADMIN_ADDRESS_FILE}.tmp"));
    // A stale or planted temporary file (a link included) is removed, never written through.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut file = open.open(&tmp)?;
    file.write_all(format!("{addr}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, data_dir.join(ADMIN_ADDRESS_FILE))
}

/// Removes a recorded address: done by the edge when its admin listener closes, and by whoever
/// takes the store next, so none outlives its listener.
pub fn forget_admin_address(data_dir: &std::path::Path) {
    match std::fs::remove_file(data_dir.join(ADMIN_ADDRESS_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot remove the admin address file"),
    }
}

/// The admin address the edge holding `data_dir`'s store recorded: None if there is none; an
/// error if the file is not a regular file of the directory's owner that only they can write (in
/// a directory only they can write), since `edge keys` sends its admin token there.
pub fn recorded_admin_address(data_dir: &std::path::Path) -> Result<Option<SocketAddr>, String> {
    let path = data_dir.join(ADMIN_ADDRESS_FILE);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let untrusted = |why: &str| {
        Err(format!(
            "{} is not to be trusted ({why}); remove it, or fix the data directory's permissions",
            path.display()
        ))
    };
    if !meta.file_type().is_file() {
        return untrusted("not a regular file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let dir = std::fs::metadata(data_dir)
            .map_err(|e| format!("cannot read {}: {e}", data_dir.display()))?;
        if meta.uid() != dir.uid() {
            return untrusted("another user's file");
        }
        if meta.mode() & 0o022 != 0 || dir.mode() & 0o022 != 0 {
            return untrusted("others may write it or its directory");
        }
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| format!("{} holds no address", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_address_round_trips_privately_and_untrusted_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        private_files::create_dir(&dir).unwrap();
        assert_eq!(recorded_admin_address(&dir), Ok(None));
        record_admin_address(&dir, "0.0.0.0:9901".parse().unwrap()).unwrap();
        assert_eq!(
            recorded_admin_address(&dir),
            Ok(Some("127.0.0.1:9901".parse().unwrap()))
        );
        record_admin_address(&dir, "[::]:9902".parse().unwrap()).unwrap();
        assert_eq!(
            recorded_admin_address(&dir),
            Ok(Some("[::1]:9902".parse().unwrap()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let file = dir.join(ADMIN_ADDRESS_FILE);
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            // A planted link at the temporary name is replaced, its target left alone.
            let target = tmp.path().join("victim");
            std::fs::write(&target, "keep").unwrap();
            std::os::unix::fs::symlink(&target, dir.join(".admin-address.tmp")).unwrap();
            record_admin_address(&dir, "127.0.0.1:9903".parse().unwrap()).unwrap();
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
            // Writable by others: refused, not followed.
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o622)).unwrap();
            assert!(
                recorded_admin_address(&dir)
                    .unwrap_err()
                    .contains("not to be trusted")
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            assert!(recorded_admin_address(&dir).is_err());
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            // A link in its place: refused.
            std::fs::remove_file(&file).unwrap();
            std::os::unix::fs::symlink(&target, &file).unwrap();
            assert!(
                recorded_admin_address(&dir)
                    .unwrap_err()
                    .contains("regular file")
            );
        }
        forget_admin_address(&dir);
        assert_eq!(recorded_admin_address(&dir), Ok(None));
    }
}
