//! TLS: rustls with TLS 1.2 and 1.3 only, ALPN h2 and http/1.1; development certificates.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::sync::RwLock;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// A TLS setup that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificate or key.
    #[error("certificate and key rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The one crypto provider used everywhere (ring: no cmake, no C toolchain surprises).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain and its private key, and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path, message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(cert, "no certificate in file".into()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| pem(key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        pem(
            key,
            format!(
                "the key does not match the certificate in {}: {e}",
                cert.display()
            ),
        )
    })?;
    Ok(certified)
}

/// The server certificate, swappable while the server runs: each new handshake gets the current
/// one; connections already open keep theirs.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// Starts with `key`.
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        Arc::new(CertResolver {
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Replaces the certificate for new handshakes.
    pub fn set(&self, key: CertifiedKey) {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(key);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let guard = match self.current.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(Arc::clone(&guard))
    }
}

/// A server configuration (TLS 1.2 and 1.3, ALPN h2 and http/1.1) serving `resolver`'s certificate.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-reads the certificate and key when either file changes (checked every `every`) or on SIGHUP,
/// until `stop`. A file that does not load keeps the current certificate and is logged.
pub async fn reload(
    resolver: Arc<CertResolver>,
    cert: PathBuf,
    key: PathBuf,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = (modified(&cert), modified(&key));
    loop {
        let forced = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        // File reads on the blocking pool, never on the threads serving requests.
        let (c, k) = (cert.clone(), key.clone());
        let Ok(now) = tokio::task::spawn_blocking(move || (modified(&c), modified(&k))).await
        else {
            continue;
        };
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let (c, k) = (cert.clone(), key.clone());
        let loaded = tokio::task::spawn_blocking(move || load_certified_key(&c, &k))
            .await
            .unwrap_or_else(|e| {
                Err(TlsError::Io {
                    path: cert.clone(),
                    source: std::io::Error::other(format!("reload task failed: {e}")),
                })
            });
        match loaded {
            Ok(k) => {
                resolver.set(k);
                tracing::info!(cert = %cert.display(), "reloaded the TLS certificate; new connections use it");
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate reload failed; still serving the previous certificate")
            }
        }
    }
}

/// Paths of a development CA and server certificate.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The CA certificate clients should trust.
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server key.
    pub key: PathBuf,
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(contents.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Writes a development CA (`ca.pem`, `ca-key.pem`) and a server certificate signed by it
/// (`cert.pem`, `key.pem`) for localhost, 127.0.0.1, ::1 and `extra_sans`.
pub fn write_dev_certs(dir: &Path, extra_sans: &[String]) -> Result<DevCerts, TlsError> {
    crate::private_files::create_dir(dir).map_err(io(dir))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Edge development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    sans.extend(extra_sans.iter().filter(|s| !s.is_empty()).cloned());
    let mut params = CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // Client auth too, so the same development certificate can do mutual TLS to NATS.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key = KeyPair::generate()?;
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer)?;

    let out = DevCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    write(&out.ca, &ca_cert.pem(), false)?;
    write(&dir.join("ca-key.pem"), &issuer.key().serialize_pem(), true)?;
    write(&out.cert, &cert.pem(), false)?;
    write(&out.key, &key.serialize_pem(), true)?;
    Ok(out)
}

/// The development certificate under `data_dir/tls`, made on first use.
pub fn ensure_dev_certs(data_dir: &Path) -> Result<(DevCerts, bool), TlsError> {
    let dir = data_dir.join("tls");
    let existing = DevCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if existing.ca.is_file() && existing.cert.is_file() && existing.key.is_file() {
        return Ok((existing, false));
    }
    Ok((write_dev_certs(&dir, &[])?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certs_load_into_rustls() {
        let dir = tempfile::tempdir().unwrap();
        let (certs, created) = ensure_dev_certs(dir.path()).unwrap();
        assert!(created);
        let config = server_config(CertResolver::new(
            load_certified_key(&certs.cert, &certs.key).unwrap(),
        ))
        .unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let (_, created) = ensure_dev_certs(dir.path()).unwrap();
        assert!(!created, "reused on the next start");
    }

    #[test]
    fn malformed_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        fs::write(&bad, "not a certificate").unwrap();
        let err = load_certified_key(&bad, &bad).unwrap_err();
        assert!(err.to_string().contains("bad.pem"), "{err}");
        // A key from another certificate is refused.
        let a = write_dev_certs(&dir.path().join("a"), &[]).unwrap();
        let b = write_dev_certs(&dir.path().join("b"), &[]).unwrap();
        let err = load_certified_key(&a.cert, &b.key).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}

/// TLS settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; none means a development certificate under the data directory.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// A TLS handshake must finish within this.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How often the certificate files are checked for changes (SIGHUP reloads at once).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            handshake_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(10),
        }
    }
}
