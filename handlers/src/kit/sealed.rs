//! Sealed tokens: short values a service hands a client and takes back (a page cursor) that the
//! client can neither read, nor forge, nor carry to another query. AES-256-GCM with a synthetic
//! nonce (HMAC-SHA256 of the bound context and the value, so a nonce repeats only with its whole
//! message), under a secret kept in the store: every replica sharing the store opens what another
//! sealed, and a restart keeps tokens valid.
//!
//! Kit: imports nothing from the services.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::SecureRandom as _;

use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

/// Bytes of secret: an encryption key and a MAC key.
const SECRET_LEN: usize = 64;
/// The longest value a token carries (it travels in requests).
pub const MAX_VALUE: usize = 256;

/// Seals and opens tokens under one secret.
pub struct Sealer {
    enc: LessSafeKey,
    mac: hmac::Key,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// The sealer whose secret is at `key` in the store, made (once, whichever replica is
    /// first) when there is none.
    pub async fn load_or_create(store: &dyn Store, key: &str) -> Result<Sealer, StoreError> {
        let bad = || StoreError::Backend(format!("{key} is not a sealing secret"));
        let stored = match store.get(key).await? {
            Some(v) => v.value,
            None => {
                let mut secret = [0u8; SECRET_LEN];
                ring::rand::SystemRandom::new()
                    .fill(&mut secret)
                    .map_err(|_| StoreError::Backend("no randomness for a secret".into()))?;
                let encoded = Bytes::from(STANDARD.encode(secret));
                match store.put(key, encoded.clone(), Some(0)).await {
                    Ok(_) => encoded,
                    // Another replica made it first: theirs is everyone's.
                    Err(StoreError::Conflict { .. }) => {
                        store.get(key).await?.ok_or_else(bad)?.value
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let secret = STANDARD.decode(&stored).map_err(|_| bad())?;
        let secret: [u8; SECRET_LEN] = secret.try_into().map_err(|_| bad())?;
        Sealer::from_secret(&secret).ok_or_else(bad)
    }

    /// A sealer over `secret`.
    pub fn from_secret(secret: &[u8; SECRET_LEN]) -> Option<Sealer> {
        let (enc, mac) = secret.split_at(32);
        Some(Sealer {
            enc: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, enc).ok()?),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac),
        })
    }

    /// `value` sealed and bound to `context` (what it may be opened with), URL-safe.
    pub fn seal(&self, context: &[u8], value: &[u8]) -> Result<String, Status> {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(&(context.len() as u64).to_be_bytes());
        ctx.update(context);
        ctx.update(value);
        let tag = ctx.sign();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);
        if value.len() > MAX_VALUE {
            return Err(Status::internal("a sealed token's value is too long"));
        }
        let mut out = value.to_vec();
        self.enc
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut out,
            )
            .map_err(|_| Status::internal("cannot seal a token"))?;
        let mut token = nonce.to_vec();
        token.extend_from_slice(&out);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The value `token` carries, if this secret sealed it for `context`.
    pub fn open(&self, context: &[u8], token: &str) -> Option<Vec<u8>> {
        if token.len() > 2 * (NONCE_LEN + MAX_VALUE + 16) {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let value = self
            .enc
            .open_in_place(nonce, Aad::from(context), &mut sealed)
            .ok()?;
        Some(value.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_opens_only_for_its_context_and_on_every_replica() {
        let (_dir, store) = crate::kit::testing::temp_store();
        let a = Sealer::load_or_create(store.as_ref(), "test.secret")
            .await
            .unwrap();
        let t = a.seal(b"query 1", b"r.player-0123").unwrap();
        assert!(!t.contains("player"), "nothing of the value shows: {t}");
        assert_eq!(a.open(b"query 1", &t).unwrap(), b"r.player-0123");
        assert_eq!(
            t,
            a.seal(b"query 1", b"r.player-0123").unwrap(),
            "deterministic"
        );
        assert!(a.open(b"query 2", &t).is_none(), "another query's");
        // Another replica on the same store (or a restart) opens it.
        let b = Sealer::load_or_create(store.as_ref(), "test.secret")
            .await
            .unwrap();
        assert_eq!(b.open(b"query 1", &t).unwrap(), b"r.player-0123");
        // A changed byte, a cut token, junk: nothing.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let flipped = URL_SAFE_NO_PAD.encode(raw);
        for bad in [flipped.as_str(), &t[..t.len() - 2], "", "junk", "r.crate-1"] {
            assert!(a.open(b"query 1", bad).is_none(), "{bad:?}");
        }
        // Another secret opens nothing.
        let other = Sealer::from_secret(&[7; SECRET_LEN]).unwrap();
        assert!(other.open(b"query 1", &t).is_none());
    }
}
