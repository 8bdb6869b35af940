//! Refusals by reason over the last minutes, for the Overview: samples of the
//! `edge_refused_total` counters (read from this process's own Prometheus text every
//! [`EVERY`], so the request path pays nothing), bounded to [`KEEP`] samples.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

/// How often the counters are sampled.
pub const EVERY: Duration = Duration::from_secs(15);
/// Samples kept: a quarter of an hour and one more, to difference against.
pub const KEEP: usize = 61;
/// The windows the page shows, in minutes.
pub const WINDOWS: [u64; 3] = [1, 5, 15];

type Counts = BTreeMap<String, u64>;

/// The samples.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<(Instant, Counts)>>,
}

/// `edge_refused_total{reason="..."} N` lines of Prometheus text, by reason.
pub fn parse(text: &str) -> Counts {
    text.lines()
        .filter_map(|l| l.strip_prefix("edge_refused_total{reason=\""))
        .filter_map(|rest| {
            let (reason, value) = rest.split_once("\"}")?;
            let n = value.trim().parse::<f64>().ok()?;
            // Counters are whole numbers; the text format writes them as floats.
            Some((reason.to_owned(), n.max(0.0) as u64))
        })
        .collect()
}

impl History {
    /// Keeps `counts` as sampled at `at`, dropping the oldest past [`KEEP`].
    pub fn record(&self, at: Instant, counts: Counts) {
        if let Ok(mut s) = self.samples.lock() {
            s.push_back((at, counts));
            while s.len() > KEEP {
                s.pop_front();
            }
        }
    }

    /// For each reason refused at least once in the longest window: the refusals in each of
    /// [`WINDOWS`] up to `now`, whose counts are `current` (a window older than the history
    /// counts from the oldest sample).
    pub fn windows(&self, now: Instant, current: &Counts) -> Vec<(String, [u64; 3])> {
        let Ok(samples) = self.samples.lock() else {
            return Vec::new();
        };
        let base = |minutes: u64| -> Option<&Counts> {
            let cutoff = now.checked_sub(Duration::from_secs(60 * minutes));
            samples
                .iter()
                .rev()
                .find(|(at, _)| cutoff.is_none_or(|c| *at <= c))
                .or_else(|| samples.front())
                .map(|(_, c)| c)
        };
        let bases = WINDOWS.map(base);
        current
            .iter()
            .filter_map(|(reason, &n)| {
                let counts = bases
                    .map(|b| n.saturating_sub(b.and_then(|b| b.get(reason)).copied().unwrap_or(0)));
                (counts.iter().any(|&c| c > 0)).then(|| (reason.clone(), counts))
            })
            .collect()
    }
}

/// Samples the counters into `history` every [`EVERY`] until the console is gone.
pub async fn sample(history: Weak<History>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let Some(h) = history.upgrade() else { return };
        h.record(Instant::now(), parse(&crate::stats::render()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counters_are_read_by_reason() {
        let text = "# TYPE edge_refused_total counter\n\
                    edge_refused_total{reason=\"capacity\"} 12\n\
                    edge_refused_total{reason=\"bad_credentials\"} 3\n\
                    edge_requests_total{route=\"x\"} 9\n";
        let c = parse(text);
        assert_eq!(c.get("capacity"), Some(&12));
        assert_eq!(c.get("bad_credentials"), Some(&3));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn windows_difference_against_the_sample_before_them_and_stay_bounded() {
        let h = History::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let counts = |n: u64| Counts::from([("capacity".to_owned(), n)]);
        // One sample a minute for 20 minutes, 10 more refusals each minute.
        for m in 0..=20 {
            h.record(at(60 * m), counts(10 * m));
        }
        assert!(h.samples.lock().unwrap().len() <= KEEP);
        let now = at(60 * 20 + 30);
        let got = h.windows(now, &counts(205));
        assert_eq!(got, [("capacity".to_owned(), [15, 55, 155])]);
        // Nothing refused lately: the reason is not listed.
        let quiet = History::default();
        quiet.record(t0, counts(7));
        assert!(quiet.windows(at(30), &counts(7)).is_empty());
    }
}
