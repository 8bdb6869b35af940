//! Counted shares of something held open (hashing slots, streams) per key: a key may hold at
//! most its maximum at once, and a share goes back when its guard is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// How many shares each key holds now.
#[derive(Debug)]
pub struct KeyedPermits<K: Eq + Hash + Clone> {
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash + Clone> Default for KeyedPermits<K> {
    fn default() -> Self {
        KeyedPermits {
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// KeyedPermits held for some keys; given back on drop.
#[derive(Debug)]
pub struct HeldPermits<K: Eq + Hash + Clone> {
    held: Arc<Mutex<HashMap<K, usize>>>,
    keys: Vec<K>,
}

impl<K: Eq + Hash + Clone> Drop for HeldPermits<K> {
    fn drop(&mut self) {
        let mut map = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for k in &self.keys {
            if let Some(n) = map.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(k);
                }
            }
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedPermits<K> {
    /// One share of each key in `wanted` (key, its maximum), all or none; on refusal, the index
    /// of the first key that is full.
    pub fn take(&self, wanted: &[(K, usize)]) -> Result<HeldPermits<K>, usize> {
        let mut map = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(full) = wanted
            .iter()
            .position(|(k, max)| map.get(k).copied().unwrap_or(0) >= *max)
        {
            return Err(full);
        }
        for (k, _) in wanted {
            *map.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(HeldPermits {
            held: Arc::clone(&self.held),
            keys: wanted.iter().map(|(k, _)| k.clone()).collect(),
        })
    }

    /// Keys holding any share now.
    pub fn len(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key holds a share.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_or_none_and_given_back_on_drop() {
        let s = KeyedPermits::default();
        let a = s.take(&[("p", 2), ("ip", 3)]).unwrap();
        let b = s.take(&[("p", 2), ("ip", 3)]).unwrap();
        assert_eq!(s.take(&[("q", 2), ("p", 2)]).unwrap_err(), 1);
        let c = s.take(&[("q", 2), ("ip", 3)]).unwrap();
        assert_eq!(s.take(&[("r", 2), ("ip", 3)]).unwrap_err(), 1, "ip is full");
        drop(a);
        assert!(s.take(&[("p", 2)]).is_ok());
        drop((b, c));
        assert!(s.is_empty(), "nothing left behind");
    }
}
