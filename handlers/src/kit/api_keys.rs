//! Service API keys for game servers and tools: `edge_<prefix>_<secret>`, sent as a bearer token.
//!
//! The prefix (12 hex digits) is not secret: it names the record, so a key is found with one read.
//! The secret (32 random bytes) is stored only as its SHA-256 (a high-entropy secret needs no slow
//! hash) and compared in constant time. Records live in the shared store, so a key works on every
//! replica and worker; verified records are cached for [`CACHE_TTL`], which bounds how long a
//! revoked key keeps working on other replicas.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::kit::context::Principal;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Every key starts with this, so it is told apart from an access token (and found by scanners).
pub const KEY_PREFIX: &str = "edge_";
/// How long a looked-up key is trusted before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
const PREFIX_LEN: usize = 12;
const SECRET_LEN: usize = 43;

/// A key as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Unique name, e.g. `game-server-eu`.
    pub name: String,
    /// The non-secret part of the key, `edge_<prefix>_...`.
    pub prefix: String,
    /// `*`, a service (`payment`), a method (`payment.Credit`), or `console`.
    pub scopes: Vec<String>,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Unix milliseconds, once revoked.
    #[serde(default)]
    pub revoked_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    info: KeyInfo,
    /// SHA-256 of the secret, hex.
    hash: String,
}

fn id_key(prefix: &str) -> String {
    format!("apikey.id.{prefix}")
}
fn name_key(name: &str) -> String {
    format!("apikey.name.{name}")
}

/// The scope that lets a key's holder log in to the operators' console; it grants no method.
pub const CONSOLE_SCOPE: &str = "console";

/// Checks a scope against the catalog: `*`, a service's short name, `service.Method`, or
/// [`CONSOLE_SCOPE`].
pub fn validate_scope(scope: &str) -> Result<(), Status> {
    if scope == "*" || scope == CONSOLE_SCOPE {
        return Ok(());
    }
    let (svc, method) = match scope.split_once('.') {
        Some((s, m)) => (s, Some(m)),
        None => (scope, None),
    };
    let Some(desc) = proto::ServiceDesc::by_short(svc) else {
        return Err(Status::invalid_argument(format!(
            "scope {scope:?}: no service {svc:?}"
        )));
    };
    match method {
        Some(m) if !desc.methods.iter().any(|d| d.name == m) => Err(Status::invalid_argument(
            format!("scope {scope:?}: {svc} has no method {m:?}"),
        )),
        _ => Ok(()),
    }
}

fn validate_name(name: &str) -> Result<(), Status> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(
            "a key name is 1 to 64 letters, digits, '-' or '_'",
        ))
    }
}

/// The key store and verifier.
pub struct ApiKeys {
    store: Arc<dyn Store>,
    /// prefix -> (when read, the record if any). Negative answers are cached too.
    cache: quick_cache::sync::Cache<String, (Instant, Option<Arc<Record>>)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeys")
    }
}

impl ApiKeys {
    /// Keys kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        ApiKeys {
            store,
            cache: quick_cache::sync::Cache::new(10_000),
        }
    }

    /// Creates a key; returns it and the full key, which is shown once and never stored.
    pub async fn create(&self, name: &str, scopes: &[String]) -> Result<(KeyInfo, String), Status> {
        validate_name(name)?;
        if scopes.is_empty() {
            return Err(Status::invalid_argument(
                "a key needs at least one scope (*, a service, or service.Method)",
            ));
        }
        for s in scopes {
            validate_scope(s)?;
        }
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let secret = URL_SAFE_NO_PAD.encode(raw);
        let mut id = [0u8; PREFIX_LEN / 2];
        rand::thread_rng().fill_bytes(&mut id);
        let prefix: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let info = KeyInfo {
            name: name.to_owned(),
            prefix: prefix.clone(),
            scopes: scopes.to_vec(),
            created_ms: crate::kit::clock::now_ms(),
            revoked_ms: None,
        };
        let record = Record {
            info: info.clone(),
            hash: format!("{:x}", Sha256::digest(secret.as_bytes())),
        };
        // The name is claimed first, so two creators of one name cannot both succeed.
        match self
            .store
            .put(&name_key(name), Bytes::from(prefix.clone()), Some(0))
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(Status::already_exists(format!(
                    "a key named {name:?} exists; revoke it or pick another name"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let bytes = serde_json::to_vec(&record).map_err(Status::internal)?;
        self.store
            .put(&id_key(&prefix), Bytes::from(bytes), Some(0))
            .await?;
        Ok((info, format!("{KEY_PREFIX}{prefix}_{secret}")))
    }

    /// Every key, revoked ones included, by prefix.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, Status> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list("apikey.id.", after.as_deref(), 500).await?;
            for (_, v) in &page.entries {
                let r: Record = serde_json::from_slice(&v.value).map_err(Status::internal)?;
                out.push(r.info);
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Revokes the key named `name`; later requests with it are refused.
    pub async fn revoke(&self, name: &str) -> Result<KeyInfo, Status> {
        validate_name(name)?;
        let Some(prefix) = self.store.get(&name_key(name)).await? else {
            return Err(Status::not_found(format!("no key named {name:?}")));
        };
        let prefix = String::from_utf8_lossy(&prefix.value).into_owned();
        loop {
            let v = self
                .store
                .get(&id_key(&prefix))
                .await?
                .ok_or_else(|| Status::internal(format!("key record {prefix} missing")))?;
            let mut r: Record = serde_json::from_slice(&v.value).map_err(Status::internal)?;
            if r.info.revoked_ms.is_some() {
                return Ok(r.info);
            }
            r.info.revoked_ms = Some(crate::kit::clock::now_ms());
            let bytes = serde_json::to_vec(&r).map_err(Status::internal)?;
            match self
                .store
                .put(&id_key(&prefix), Bytes::from(bytes), Some(v.version))
                .await
            {
                Ok(_) => {
                    self.cache.remove(&prefix);
                    return Ok(r.info);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The service principal a key speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, Status> {
        let invalid = || Status::unauthenticated("invalid API key");
        let rest = token.strip_prefix(KEY_PREFIX).ok_or_else(invalid)?;
        let (prefix, secret) = rest.split_once('_').ok_or_else(invalid)?;
        if prefix.len() != PREFIX_LEN
            || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
            || secret.len() != SECRET_LEN
        {
            return Err(invalid());
        }
        let record = match self.cache.get(prefix) {
            Some((at, r)) if at.elapsed() < CACHE_TTL => r,
            _ => {
                let r = match self.store.get(&id_key(prefix)).await? {
                    Some(v) => Some(Arc::new(
                        serde_json::from_slice::<Record>(&v.value).map_err(Status::internal)?,
                    )),
                    None => None,
                };
                self.cache
                    .insert(prefix.to_owned(), (Instant::now(), r.clone()));
                r
            }
        };
        let record = record.ok_or_else(invalid)?;
        let given = Sha256::digest(secret.as_bytes());
        let stored = decode_hex(&record.hash);
        if !bool::from(given.as_slice().ct_eq(stored.as_slice())) {
            return Err(invalid());
        }
        if record.info.revoked_ms.is_some() {
            return Err(Status::unauthenticated("this API key was revoked"));
        }
        Ok(Principal::Service {
            name: record.info.name.clone(),
            scopes: record.info.scopes.clone().into(),
        })
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::status::Code;

    fn keys() -> (tempfile::TempDir, ApiKeys) {
        let (dir, store) = crate::kit::testing::temp_redb();
        (dir, ApiKeys::new(store))
    }

    #[tokio::test]
    async fn create_verify_list_revoke() {
        let (_d, keys) = keys();
        let scopes = vec!["payment".to_owned(), "time.SetScale".to_owned()];
        let (info, key) = keys.create("game-server", &scopes).await.unwrap();
        assert!(key.starts_with(&format!("edge_{}_", info.prefix)));
        assert_eq!(
            keys.verify(&key).await.unwrap(),
            Principal::Service {
                name: "game-server".into(),
                scopes: scopes.clone().into()
            }
        );
        let listed = keys.list().await.unwrap();
        assert_eq!(listed, vec![info.clone()]);
        let text = serde_json::to_string(&listed).unwrap();
        assert!(!text.contains(&key[18..]), "no secret in listings");
        let err = keys.create("game-server", &scopes).await.unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);

        let revoked = keys.revoke("game-server").await.unwrap();
        assert!(revoked.revoked_ms.is_some());
        let err = keys.verify(&key).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unauthenticated, "this API key was revoked")
        );
        assert_eq!(
            keys.revoke("nope").await.unwrap_err().code(),
            Code::NotFound
        );
    }

    #[tokio::test]
    async fn wrong_secrets_and_garbage_are_refused_alike() {
        let (_d, keys) = keys();
        let (_, key) = keys.create("tool", &["*".to_owned()]).await.unwrap();
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
        let unknown = format!("edge_000000000000_{}", &key[18..]);
        for bad in [
            wrong.as_str(),
            unknown.as_str(),
            "edge_",
            "edge_x_y",
            "nope",
            &key[..30],
        ] {
            let err = keys.verify(bad).await.unwrap_err();
            assert_eq!(err.message(), "invalid API key", "{bad}");
        }
        assert!(keys.verify(&key).await.is_ok());
    }

    #[tokio::test]
    async fn scopes_and_names_are_validated() {
        let (_d, keys) = keys();
        for bad in [
            vec![],
            vec!["paymnt".to_owned()],
            vec!["payment.Steal".to_owned()],
        ] {
            assert_eq!(
                keys.create("k", &bad).await.unwrap_err().code(),
                Code::InvalidArgument
            );
        }
        let ok = vec!["*".to_owned()];
        for bad in ["", "has space", &"x".repeat(65)] {
            assert_eq!(
                keys.create(bad, &ok).await.unwrap_err().code(),
                Code::InvalidArgument
            );
        }
    }
}
