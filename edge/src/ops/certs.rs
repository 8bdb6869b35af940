//! `edge certs ca` and `edge certs issue`: a private CA and the certificates it signs, for the
//! hops a public CA does not cover: the load balancer to the edge (the ALB does not check the
//! target's certificate, but the hop is encrypted), and NATS (servers, routes and clients trust
//! only this CA). Keys are written readable by their owner only; nothing is ever printed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::BoxError;

/// Longest validity `issue` grants: what browsers accept for public certificates, a sane
/// ceiling for private ones that must be rotated anyway.
pub const MAX_DAYS: u32 = 825;

/// The civil date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        i32::try_from(y).unwrap_or(i32::MAX),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

/// Today plus `days`, as a certificate date.
macro_rules! today_plus {
    ($days:expr) => {{
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0));
        let (y, m, d) = civil(now + $days);
        rcgen::date_time_ymd(y, m, d)
    }};
}

fn write_new(path: &Path, contents: &str, secret: bool) -> Result<(), BoxError> {
    if path.exists() {
        return Err(format!("{} exists; refusing to overwrite it", path.display()).into());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Writes a CA (`ca.pem`, `ca-key.pem`) named `name`, valid for `years`, into `dir`.
pub fn write_ca(dir: &Path, name: &str, years: u32) -> Result<PathBuf, BoxError> {
    if !(1..=20).contains(&years) {
        return Err("a CA is valid 1 to 20 years".into());
    }
    crate::private_files::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = today_plus!(-1);
    params.not_after = today_plus!(i64::from(years) * 365);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let ca = dir.join("ca.pem");
    write_new(&dir.join("ca-key.pem"), &key.serialize_pem(), true)?;
    write_new(&ca, &cert.pem(), false)?;
    Ok(ca)
}

/// What `issue` wrote.
#[derive(Debug)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM, owner-readable only).
    pub key: PathBuf,
}

/// Issues a certificate for `names` (DNS names or IP addresses; the first is the common name),
/// signed by the CA in `ca_dir`, valid `days`, for servers and, with `client`, for clients too
/// (NATS nodes are both on their routes). Writes `<out>/<first name>.pem` and `-key.pem`.
pub fn issue(
    ca_dir: &Path,
    out: &Path,
    names: &[String],
    client: bool,
    days: u32,
) -> Result<Issued, BoxError> {
    let first = names.first().ok_or("give at least one --name")?;
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(format!("a certificate is valid 1 to {MAX_DAYS} days").into());
    }
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()));
    let ca_key = KeyPair::from_pem(&read(ca_dir.join("ca-key.pem"))?)?;
    let issuer = Issuer::from_ca_cert_pem(&read(ca_dir.join("ca.pem"))?, ca_key)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, first.as_str());
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if client {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    params.not_before = today_plus!(-1);
    params.not_after = today_plus!(i64::from(days));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    crate::private_files::create_dir(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem: String = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let issued = Issued {
        cert: out.join(format!("{stem}.pem")),
        key: out.join(format!("{stem}-key.pem")),
    };
    write_new(&issued.key, &key.serialize_pem(), true)?;
    write_new(&issued.cert, &cert.pem(), false)?;
    Ok(issued)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier as _;
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(20_422), (2025, 11, 30));
    }

    #[test]
    fn an_issued_certificate_verifies_against_its_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        write_ca(&ca_dir, "Test NATS CA", 5).unwrap();
        assert!(
            write_ca(&ca_dir, "again", 5).is_err(),
            "never overwrites a CA"
        );
        let names = vec!["nats-0.nats.internal".to_owned()];
        let issued = issue(&ca_dir, &dir.path().join("out"), &names, true, 90).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&issued.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is the owner's alone");
        }
        let verify = |ca: &Path, host: &str| {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(ca).unwrap())
                .unwrap();
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                crate::http::tls::provider(),
            )
            .build()
            .unwrap();
            let cert = CertificateDer::from_pem_file(&issued.cert).unwrap();
            verifier.verify_server_cert(
                &cert,
                &[],
                &ServerName::try_from(host.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        verify(&ca_dir.join("ca.pem"), "nats-0.nats.internal").unwrap();
        assert!(verify(&ca_dir.join("ca.pem"), "nats-1.nats.internal").is_err());
        let other = dir.path().join("other");
        write_ca(&other, "Another CA", 1).unwrap();
        assert!(verify(&other.join("ca.pem"), "nats-0.nats.internal").is_err());
        assert!(issue(&ca_dir, &dir.path().join("x"), &names, false, 10_000).is_err());
    }
}
