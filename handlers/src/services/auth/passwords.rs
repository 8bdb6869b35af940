//! argon2id password hashing off the async runtime, with a bound on concurrent hashes. One client
//! address (an IPv6 /64) holds at most a share of the hashing slots, so a burst from one place
//! cannot take them all; a check waits briefly for a free slot (a bounded number of waiters, a
//! bounded wait) rather than failing at once when honest logins merely coincide.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::Semaphore;

use crate::kit::keyed_permits::{HeldPermits, KeyedPermits};
use crate::kit::status::Status;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Slots one address may hold at once.
    share: usize,
    /// Slots held or awaited, per address key.
    holders: Arc<KeyedPermits<IpAddr>>,
    /// Checks waiting for a slot; at most `max_waiting`.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// A hash of a random password: verifying against it when the user does not exist keeps the
    /// answer's timing from revealing which usernames exist.
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

fn hash_blocking(password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Longest wait for a hashing slot.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// A place among the waiters; given back on drop.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn busy() -> Status {
    Status::unavailable(
        "too many password checks in progress",
        Duration::from_secs(1),
    )
}

impl Passwords {
    /// `concurrency` hashes may run at once, at most half of them (at least one) for one address.
    pub fn new(concurrency: usize) -> Result<Self, String> {
        let random = uuid::Uuid::new_v4();
        let dummy = hash_blocking(random.as_bytes())?;
        let concurrency = concurrency.max(1);
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency)),
            share: (concurrency / 2).max(1),
            holders: Arc::default(),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: concurrency * 8,
            dummy: dummy.into(),
        })
    }

    /// Takes one of `addr`'s share of slots, or refuses at once when its share is in use.
    fn take_share(&self, addr: Option<IpAddr>) -> Result<Option<HeldPermits<IpAddr>>, Status> {
        let Some(addr) = addr.map(super::guard::address_key) else {
            return Ok(None);
        };
        self.holders
            .take(&[(addr, self.share)])
            .map(Some)
            .map_err(|_| {
                Status::new(
                    crate::kit::status::Code::ResourceExhausted,
                    "too many password checks from your address at once; retry shortly",
                )
                .with_retry_after(Duration::from_secs(1))
            })
    }

    async fn run<T: Send + 'static>(
        &self,
        addr: Option<IpAddr>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Status> {
        let share = self.take_share(addr)?;
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(busy());
                }
                let _place = Waiting(Arc::clone(&self.waiting));
                tokio::time::timeout(MAX_WAIT, Arc::clone(&self.permits).acquire_owned())
                    .await
                    .map_err(|_| busy())?
                    .map_err(|_| busy())?
            }
        };
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            drop(share);
            out
        })
        .await
        .map_err(Status::internal)
    }

    /// An argon2id PHC string for `password`, hashed for a client at `addr`.
    pub async fn hash(&self, addr: Option<IpAddr>, password: String) -> Result<String, Status> {
        self.run(addr, move || hash_blocking(password.as_bytes()))
            .await?
            .map_err(Status::internal)
    }

    /// Whether `password` matches `phc`; with `None` (no such user) it still does the work.
    pub async fn verify(
        &self,
        addr: Option<IpAddr>,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, Status> {
        let exists = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.to_string());
        let ok = self
            .run(addr, move || match PasswordHash::new(&phc) {
                Ok(parsed) => Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let p = Passwords::new(2).unwrap();
        let phc = p.hash(None, "correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(
            p.verify(None, "correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify(None, "wrong".into(), Some(phc)).await.unwrap());
        assert!(!p.verify(None, "anything".into(), None).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_address_cannot_take_every_slot() {
        let p = Passwords::new(4).unwrap();
        let flood: IpAddr = "203.0.113.5".parse().unwrap();
        let honest: IpAddr = "198.51.100.7".parse().unwrap();
        let burst = futures_util::future::join_all(
            (0..30).map(|_| p.verify(Some(flood), "guess".into(), None)),
        );
        let others = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            futures_util::future::join_all(
                (0..2).map(|_| p.verify(Some(honest), "mine".into(), None)),
            )
            .await
        };
        let (burst, others) = tokio::join!(burst, others);
        let refused = burst.iter().filter(|r| r.is_err()).count();
        assert!(
            refused >= 20,
            "the flood holds at most its share: {refused} refused"
        );
        for r in others {
            assert!(r.is_ok(), "an honest check is served: {r:?}");
        }
    }
}
