//! `[console]` settings (sessions, logins and how long the audit is kept), apart from the console so the config can name them without importing
//! the console (which imports the config through the state).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[console]`: the operators' sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session ends after this long without a request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after its login, however busy.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Login attempts (good or bad) this replica checks a minute; more are refused with 429.
    pub logins_per_minute: u32,
    /// Audit entries older than this are deleted (checked hourly, by every replica).
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 60 * 60),
            logins_per_minute: 10,
            // Three of humantime's months (30.44 days), so the setting reads `3months`.
            audit_retention: Duration::from_secs(3 * 2_630_016),
        }
    }
}
