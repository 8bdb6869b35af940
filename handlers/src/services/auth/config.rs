//! The auth service's settings: the edge's `[auth]` section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::guard;

/// Token lifetimes, login limits and hashing limits: the edge's `[auth]` section as it is (the
/// serde names are its TOML keys), so its defaults live here only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Access token lifetime.
    #[serde(rename = "access_token_ttl", with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Refresh token (session) lifetime.
    #[serde(rename = "refresh_token_ttl", with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// Password hashes allowed at once. Not a setting: it follows the machine's cores.
    #[serde(skip)]
    pub hash_concurrency: usize,
    /// Failed logins per (account, client address) before each further one waits (refilled
    /// over 15 minutes; per replica). See [`guard`].
    #[serde(alias = "login_attempts_per_minute")]
    pub login_failures_per_address: u32,
    /// Failed logins per account from all clients without its device token, before each further
    /// one waits (refilled over an hour). A device that logged in before is never held back.
    pub login_failures_per_account: u32,
    /// Failed logins per device token (refilled over 15 minutes).
    pub login_failures_per_device: u32,
    /// How long a browser's stream ticket lives (at most [`MAX_TICKET_TTL`]): it travels in a URL.
    #[serde(with = "humantime_serde")]
    pub stream_ticket_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let limits = guard::LoginLimits::default();
        AuthConfig {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            login_failures_per_address: limits.per_address,
            login_failures_per_account: limits.per_account,
            login_failures_per_device: limits.per_device,
            stream_ticket_ttl: Duration::from_secs(30),
        }
    }
}

impl AuthConfig {
    /// The login guard's limits.
    pub fn login_limits(&self) -> guard::LoginLimits {
        guard::LoginLimits {
            per_address: self.login_failures_per_address,
            per_account: self.login_failures_per_account,
            per_device: self.login_failures_per_device,
        }
    }
}
