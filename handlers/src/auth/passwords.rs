//! argon2id password hashing off the async runtime, with a bound on concurrent hashes so a login
//! flood is refused at once rather than queued.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::Semaphore;

use crate::status::Status;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
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

impl Passwords {
    /// `concurrency` hashes may run at once; more are refused with `unavailable`.
    pub fn new(concurrency: usize) -> Result<Self, String> {
        let random = uuid::Uuid::new_v4();
        let dummy = hash_blocking(random.as_bytes())?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Status> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::unavailable(
                "too many password checks in progress",
                Duration::from_secs(1),
            )
        })?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(Status::internal)
    }

    /// An argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, Status> {
        self.run(move || hash_blocking(password.as_bytes()))
            .await?
            .map_err(Status::internal)
    }

    /// Whether `password` matches `phc`; with `None` (no such user) it still does the work.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Status> {
        let exists = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.to_string());
        let ok = self
            .run(move || match PasswordHash::new(&phc) {
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
        let phc = p.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(
            p.verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong".into(), Some(phc)).await.unwrap());
        assert!(!p.verify("anything".into(), None).await.unwrap());
    }
}
