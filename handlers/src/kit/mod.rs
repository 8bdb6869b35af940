//! The kit: what every service uses and nothing that is one service's own. Who is calling and
//! until when ([`context`]), how a call ends ([`status`]), the clock, the store and the event log
//! with their backends, calls to other services through the router ([`calls`]), data files
//! ([`content`]), token and key verification (which the edge uses too), and small tools (a value
//! bound after start, leaky buckets, per-key permits, tokens sealed for clients).
//!
//! May import: `proto`, other kit modules. Never `crate::services` or `crate::content`: a layout
//! test (`tests/tests/layout.rs`) keeps it so.

pub mod api_keys;
pub mod calls;
pub mod canon;
pub mod clock;
pub mod content;
pub mod context;
pub mod event_log;
pub mod hours;
pub mod keyed_permits;
pub mod l10n;
pub mod late_bound;
pub mod leaky_bucket;
pub mod retry;
pub mod sealed;
pub mod status;
pub mod store;
#[cfg(test)]
pub mod testing;
pub mod tokens;
