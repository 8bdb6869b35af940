//! LeakyBuckets-bucket counters by key, kept in this process: failed logins, bad credentials, new
//! idempotency records. Unlike a rate limiter, an event is counted only when it happens (a
//! failure, a record made), and whether a key is full can be asked without counting.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Keys kept; the coldest go first.
const CAPACITY: usize = 100_000;

#[derive(Debug)]
struct Level {
    level: f64,
    at: Instant,
}

/// LeakyBuckets buckets by key: `burst` events, then one more per `window / burst`. Bounded: the
/// coldest keys are evicted first.
pub struct LeakyBuckets<K: Eq + std::hash::Hash + Clone> {
    burst: f64,
    /// Events drained per second.
    rate: f64,
    levels: quick_cache::sync::Cache<K, Arc<Mutex<Level>>>,
}

impl<K: Eq + std::hash::Hash + Clone> LeakyBuckets<K> {
    /// `burst` events allowed, refilled evenly over `window`.
    pub fn new(burst: u32, window: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        LeakyBuckets {
            burst,
            rate: burst / window.as_secs_f64(),
            levels: quick_cache::sync::Cache::new(CAPACITY),
        }
    }

    fn drained(&self, l: &Level, now: Instant) -> f64 {
        (l.level - now.duration_since(l.at).as_secs_f64() * self.rate).max(0.0)
    }

    /// How long until `key` may have one more event, if it is full now.
    pub fn full(&self, key: &K) -> Option<Duration> {
        let cell = self.levels.get(key)?;
        let l = cell.lock().unwrap_or_else(PoisonError::into_inner);
        let level = self.drained(&l, Instant::now());
        (level + 1.0 > self.burst)
            .then(|| Duration::from_secs_f64((level + 1.0 - self.burst) / self.rate))
    }

    /// Counts one event of `key`.
    pub fn add(&self, key: &K) {
        let now = Instant::now();
        let cell = match self.levels.get(key) {
            Some(c) => c,
            None => {
                let c = Arc::new(Mutex::new(Level {
                    level: 0.0,
                    at: now,
                }));
                self.levels.insert(key.clone(), Arc::clone(&c));
                c
            }
        };
        let mut l = cell.lock().unwrap_or_else(PoisonError::into_inner);
        l.level = self.drained(&l, now) + 1.0;
        l.at = now;
    }

    /// Forgets `key`'s events.
    pub fn forget(&self, key: &K) {
        self.levels.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_after_burst_then_drains() {
        let l = LeakyBuckets::new(3, Duration::from_millis(300));
        for _ in 0..3 {
            assert_eq!(l.full(&"k"), None);
            l.add(&"k");
        }
        let wait = l.full(&"k").expect("full after the burst");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert_eq!(l.full(&"other"), None, "keys are apart");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(l.full(&"k"), None, "one drained");
        l.forget(&"k");
        assert_eq!(l.full(&"k"), None);
    }
}
