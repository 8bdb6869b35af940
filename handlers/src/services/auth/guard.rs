//! Login abuse defences, after OWASP's "slow down online guessing attacks with device cookies":
//! only failures count (never successful logins), and they count in three places:
//!
//! - per (account, client address), so a guesser is slowed on the accounts it guesses at;
//! - per account across all addresses, as a slow-down against guessing spread over a botnet;
//! - per device, for clients that show a device token: a token issued to this account at an
//!   earlier successful login. Such a client skips the first two, so nobody else's failures can
//!   lock the owner out of their account; a stolen token is itself slowed by its own counter.
//!
//! Each counter is a [`LeakyBuckets`] bucket: `burst` failures, then one more per `window / burst`. The
//! counters live in this process (bounded: cold entries are evicted first).
//!
//! Device tokens are `dv1.<nonce>.<mac>`: HMAC-SHA256 under a key kept in the store (shared by
//! replicas) over the account and a random nonce. They prove nothing but "this account logged in
//! from here before", and grant nothing but a login attempt.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

use crate::kit::leaky_bucket::LeakyBuckets;
use crate::kit::status::{Code, Status};
use crate::kit::store::{Store, StoreError};

const DEVICE_KEY: &str = "auth.device_key";
const PREFIX: &str = "dv1.";

/// How many failures each counter allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per (account, address) before the slow-down (refilled over 15 minutes).
    pub per_address: u32,
    /// Failures per account from clients without its device token (refilled over an hour).
    pub per_account: u32,
    /// Failures per device token (refilled over 15 minutes).
    pub per_device: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_address: 10,
            per_account: 100,
            per_device: 10,
        }
    }
}

/// The address a limit counts: an IPv4 address, or an IPv6 /64 (one subscriber's prefix).
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

/// Who is trying to log in, as the guard sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Showed a valid device token for this account: counted by that token only.
    Device(String),
    /// Anyone else: counted by account and by address.
    Untrusted {
        /// The account.
        account: String,
        /// The client's address key, if known.
        addr: Option<IpAddr>,
    },
}

/// Counts login failures and issues device tokens.
pub struct LoginGuard {
    key: ring::hmac::Key,
    per_address: LeakyBuckets<(String, IpAddr)>,
    per_account: LeakyBuckets<String>,
    per_device: LeakyBuckets<String>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginGuard")
    }
}

fn too_many(wait: Duration) -> Status {
    Status::new(
        Code::ResourceExhausted,
        "too many failed logins; try again later (a device that logged in to this account before is not held back)",
    )
    .with_retry_after(wait.max(Duration::from_secs(1)))
}

impl LoginGuard {
    /// Loads (or creates) the device token key from the store.
    pub async fn open(store: &dyn Store, limits: LoginLimits) -> Result<Self, StoreError> {
        let secret = match store.get(DEVICE_KEY).await? {
            Some(v) => v.value,
            None => {
                let mut fresh = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
                    .map_err(|_| StoreError::Backend("no randomness for the device key".into()))?;
                match store
                    .put(DEVICE_KEY, Bytes::copy_from_slice(&fresh), Some(0))
                    .await
                {
                    Ok(_) => Bytes::copy_from_slice(&fresh),
                    Err(StoreError::Conflict { .. }) => {
                        store
                            .get(DEVICE_KEY)
                            .await?
                            .ok_or_else(|| StoreError::Backend("device key vanished".into()))?
                            .value
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let quarter = Duration::from_secs(15 * 60);
        Ok(LoginGuard {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            per_address: LeakyBuckets::new(limits.per_address, quarter),
            per_account: LeakyBuckets::new(limits.per_account, Duration::from_secs(3600)),
            per_device: LeakyBuckets::new(limits.per_device, quarter),
        })
    }

    fn mac(&self, account: &str, nonce: &str) -> ring::hmac::Tag {
        ring::hmac::sign(&self.key, format!("device\n{account}\n{nonce}").as_bytes())
    }

    /// A new device token for `account` (lowercased username).
    pub fn issue(&self, account: &str) -> String {
        let nonce = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(self.mac(account, &nonce).as_ref());
        format!("{PREFIX}{nonce}.{tag}")
    }

    /// The nonce of `token` if it is a device token of `account` (checked in constant time).
    fn device(&self, account: &str, token: &str) -> Option<String> {
        let (nonce, tag) = token.strip_prefix(PREFIX)?.split_once('.')?;
        if nonce.len() > 32 || tag.len() > 64 {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let msg = format!("device\n{account}\n{nonce}");
        ring::hmac::verify(&self.key, msg.as_bytes(), &tag).ok()?;
        Some(nonce.to_owned())
    }

    /// Classifies an attempt and refuses it at once if its counters are full.
    pub fn admit(
        &self,
        account: &str,
        addr: Option<IpAddr>,
        device_token: &str,
    ) -> Result<Attempt, Status> {
        if let Some(nonce) = self.device(account, device_token) {
            if let Some(wait) = self.per_device.full(&nonce) {
                return Err(too_many(wait));
            }
            return Ok(Attempt::Device(nonce));
        }
        let addr = addr.map(address_key);
        if let Some(a) = addr
            && let Some(wait) = self.per_address.full(&(account.to_owned(), a))
        {
            return Err(too_many(wait));
        }
        if let Some(wait) = self.per_account.full(&account.to_owned()) {
            return Err(too_many(wait));
        }
        Ok(Attempt::Untrusted {
            account: account.to_owned(),
            addr,
        })
    }

    /// Counts a failed attempt.
    pub fn failed(&self, attempt: &Attempt) {
        match attempt {
            Attempt::Device(nonce) => self.per_device.add(nonce),
            Attempt::Untrusted { account, addr } => {
                if let Some(a) = addr {
                    self.per_address.add(&(account.clone(), *a));
                }
                self.per_account.add(account);
            }
        }
    }

    /// A successful login forgives this client's own failures (not the account's).
    pub fn succeeded(&self, attempt: &Attempt) {
        match attempt {
            Attempt::Device(nonce) => self.per_device.forget(nonce),
            Attempt::Untrusted { account, addr } => {
                if let Some(a) = addr {
                    self.per_address.forget(&(account.clone(), *a));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::store::RedbStore;

    async fn guard(limits: LoginLimits) -> (tempfile::TempDir, LoginGuard) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("g.redb")).unwrap();
        let g = LoginGuard::open(&store, limits).await.unwrap();
        (dir, g)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test]
    async fn only_failures_count_and_a_known_device_is_never_locked_out() {
        let limits = LoginLimits {
            per_address: 3,
            per_account: 5,
            per_device: 2,
        };
        let (_d, g) = guard(limits).await;
        // The owner's device token, from an earlier login.
        let device = g.issue("alice");
        // Successes do not count.
        for _ in 0..10 {
            let a = g.admit("alice", ip("10.0.0.1"), "").unwrap();
            g.succeeded(&a);
        }
        // An attacker fails from one address: slowed after 3.
        for _ in 0..3 {
            let a = g.admit("alice", ip("203.0.113.9"), "").unwrap();
            g.failed(&a);
        }
        let err = g.admit("alice", ip("203.0.113.9"), "").unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.retry_after().is_some());
        // Others: the account cap (5) across addresses.
        for i in 0..2 {
            let a = g
                .admit("alice", ip(&format!("198.51.100.{i}")), "")
                .unwrap();
            g.failed(&a);
        }
        assert!(
            g.admit("alice", ip("192.0.2.77"), "").is_err(),
            "account slowed down"
        );
        // The owner's device gets in; a forged or another account's token does not help.
        assert!(matches!(
            g.admit("alice", ip("192.0.2.77"), &device),
            Ok(Attempt::Device(_))
        ));
        let bobs = g.issue("bob");
        assert!(g.admit("alice", ip("192.0.2.77"), &bobs).is_err());
        let forged = format!("{}x", &device[..device.len() - 1]);
        assert!(g.admit("alice", ip("192.0.2.77"), &forged).is_err());
        // A stolen device token is slowed by its own counter.
        for _ in 0..2 {
            let a = g.admit("alice", None, &device).unwrap();
            g.failed(&a);
        }
        assert!(g.admit("alice", None, &device).is_err());
    }

    #[test]
    fn ipv6_counts_by_64() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
