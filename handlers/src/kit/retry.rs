//! Retrying a call to a replicated backend (the JetStream store and event log) within the
//! request's deadline. While a NATS node is lost, JetStream elects a new leader for each stream
//! it led: for a few seconds calls time out or find no responder, then succeed again. A call is
//! retried, with growing, jittered pauses, until it succeeds, fails for good, or the time runs
//! out: a moment before the request's deadline (so the client gets a clean 503 with Retry-After,
//! not a 504), or [`DEFAULT_BUDGET`] from now outside any request (start-up, janitors).
//!
//! Retries are only safe against duplicates where the caller names the mechanism: the store and
//! the event log publish with a `Nats-Msg-Id` fixed for the logical write, which JetStream's
//! duplicate window recognises, and read back what a retried compare-and-set finds.
//!
//! Kit: imports nothing from the services.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a call outside any request keeps retrying.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(15);
/// Kept before the request's deadline, for the answer to reach the client.
pub const MARGIN: Duration = Duration::from_millis(500);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(1);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` as the deadline its backend calls retry within (none: the budget).
pub async fn within<F: Future>(deadline: Option<Instant>, f: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, f).await,
        None => f.await,
    }
}

/// The deadline set by [`within`] around the running task, if any.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The retries of one call: when to stop, and how long to pause before the next try.
#[derive(Debug)]
pub struct Retry {
    tries: u32,
    until: Instant,
}

impl Retry {
    /// Retries until a margin before the current request's deadline, else for `budget`.
    pub fn new(budget: Duration) -> Self {
        Self::until(deadline(), budget)
    }

    /// Retries until a margin before `deadline`, else for `budget` from now.
    pub fn until(deadline: Option<Instant>, budget: Duration) -> Self {
        let now = Instant::now();
        let until = match deadline {
            Some(d) => d
                .checked_sub(MARGIN)
                .unwrap_or(now)
                .min(now + budget.max(MARGIN)),
            None => now + budget,
        };
        Retry { tries: 0, until }
    }

    /// How many tries failed so far.
    pub fn failed_tries(&self) -> u32 {
        self.tries
    }

    /// The time left.
    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// After a failed try: the pause before the next one (25 ms, doubling up to 1 s, with up to
    /// half of it again at random so that many callers spread out), or `None` when the next
    /// try would start past the end.
    pub fn pause(&mut self) -> Option<Duration> {
        self.tries += 1;
        let base =
            Duration::from_millis(25u64 << self.tries.saturating_sub(1).min(6)).min(MAX_PAUSE);
        let pause = base + base.mul_f64(rand::random::<f64>() * 0.5);
        (Instant::now() + pause < self.until).then_some(pause)
    }

    /// Sleeps the pause after a failed try; `false` when the time is up.
    pub async fn wait(&mut self) -> bool {
        match self.pause() {
            Some(p) => {
                tokio::time::sleep(p).await;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pauses_grow_with_jitter_and_stop_at_the_end() {
        let mut r = Retry::until(None, Duration::from_secs(60));
        let first = r.pause().unwrap();
        assert!(first >= Duration::from_millis(25) && first <= Duration::from_millis(38));
        let second = r.pause().unwrap();
        assert!(second >= Duration::from_millis(50) && second <= Duration::from_millis(75));
        for _ in 0..20 {
            let p = r.pause().unwrap();
            assert!(p <= MAX_PAUSE + MAX_PAUSE / 2, "{p:?}");
        }
        assert_eq!(r.failed_tries(), 22);
        // Jittered: callers failing together do not retry together.
        let pauses: Vec<_> = (0..20)
            .map(|_| Retry::until(None, Duration::from_secs(9)).pause())
            .collect();
        assert!(pauses.iter().any(|p| *p != pauses[0]));
        // No time left: no retry.
        let mut spent = Retry::until(None, Duration::ZERO);
        assert_eq!(spent.pause(), None);
    }

    #[test]
    fn the_request_deadline_bounds_the_retries_less_a_margin() {
        let soon = Instant::now() + Duration::from_millis(600);
        let mut r = Retry::until(Some(soon), Duration::from_secs(60));
        assert!(r.left() <= Duration::from_millis(100));
        r.pause();
        r.pause();
        r.pause();
        assert_eq!(r.pause(), None);
        // A deadline already past: no retry, and no panic.
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        assert_eq!(
            Retry::until(Some(past), Duration::from_secs(60)).pause(),
            None
        );
        // A distant deadline is capped by the budget.
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(Retry::until(Some(far), Duration::from_secs(5)).left() <= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_deadline_is_seen_inside_the_scope_only() {
        assert_eq!(deadline(), None);
        let d = Instant::now() + Duration::from_secs(3);
        assert_eq!(within(Some(d), async { deadline() }).await, Some(d));
        assert_eq!(within(None, async { deadline() }).await, None);
    }
}
