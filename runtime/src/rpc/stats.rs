//! What a service's calls of one version did: how many ran, how many failed,
//! and how long they took, as counters a heartbeat can carry and a
//! coordinator can add up across nodes (an analysis gate compares them).
//!
//! Latencies go into fixed buckets, the same on every node, so that the
//! sums of many nodes' buckets still give a percentile: four buckets per
//! doubling (each about 19 % wider than the one before) from 64 µs to about
//! 16.8 s, the first holding everything faster and the last everything
//! slower.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many latency buckets there are.
pub const LATENCY_BUCKETS: usize = 74;

/// Calls of one version a service answered, since the service started.
#[derive(Debug)]
pub struct CallStats {
    calls: AtomicU64,
    errors: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A reading of [`CallStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls that ran (refused ones, while upgrading say, do not count).
    pub calls: u64,
    /// Of them, calls answered with an error: the object panicked or gave
    /// up ([`crate::error::unavailable`]), an SO disallowed the call, a
    /// guard refused it. A reply that is an `Err` of the method's own
    /// return type is a reply, not an error, here.
    pub errors: u64,
    /// Calls per latency bucket ([`bucket_of`]), trailing empty buckets
    /// left out.
    pub latency: Vec<u64>,
}

impl CallCounts {
    /// Adds `calls`, `errors` and `latency` (bucket by bucket): another
    /// reading, of another version or another node.
    pub fn add(&mut self, calls: u64, errors: u64, latency: &[u64]) {
        self.calls = self.calls.saturating_add(calls);
        self.errors = self.errors.saturating_add(errors);
        if self.latency.len() < latency.len() {
            self.latency.resize(latency.len(), 0);
        }
        for (sum, n) in self.latency.iter_mut().zip(latency) {
            *sum = sum.saturating_add(*n);
        }
    }

    /// Takes back what [`CallCounts::add`] added.
    pub fn subtract(&mut self, calls: u64, errors: u64, latency: &[u64]) {
        self.calls = self.calls.saturating_sub(calls);
        self.errors = self.errors.saturating_sub(errors);
        for (sum, n) in self.latency.iter_mut().zip(latency) {
            *sum = sum.saturating_sub(*n);
        }
    }

    /// Errors per million calls (0 without calls).
    pub fn error_ppm(&self) -> u64 {
        (u128::from(self.errors) * 1_000_000)
            .checked_div(u128::from(self.calls))
            .map_or(0, |ppm| ppm as u64)
    }

    /// The latency under which `q` of the calls ran ([`quantile`]).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        quantile(&self.latency, q)
    }
}

impl CallStats {
    /// A call was admitted.
    pub(crate) fn admitted(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call was answered after `took`, with an error or not.
    pub(crate) fn answered(&self, failed: bool, took: Duration) {
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency[bucket_of(took)].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls admitted so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The counters now.
    pub fn read(&self) -> CallCounts {
        let mut latency: Vec<u64> = self
            .latency
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        while latency.last() == Some(&0) {
            latency.pop();
        }
        CallCounts {
            calls: self.calls(),
            errors: self.errors.load(Ordering::Relaxed),
            latency,
        }
    }
}

/// The bucket a call that took `took` falls in.
pub fn bucket_of(took: Duration) -> usize {
    let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
    if us < 64 {
        return 0;
    }
    let top = 63 - us.leading_zeros() as usize; // 6 or more
    let quarter = ((us >> (top - 2)) & 3) as usize;
    (1 + (top - 6) * 4 + quarter).min(LATENCY_BUCKETS - 1)
}

/// The longest latency bucket `i` holds (the last one holds everything
/// slower than the one before it, and answers that one's bound).
pub fn bucket_bound(i: usize) -> Duration {
    if i == 0 {
        return Duration::from_micros(64);
    }
    let i = i.min(LATENCY_BUCKETS - 2);
    let (octave, quarter) = ((i - 1) / 4, (i - 1) % 4);
    Duration::from_micros((64u64 << octave) * (5 + quarter as u64) / 4)
}

/// The latency under which `q` (0 to 1) of the calls counted in `buckets`
/// ran, as its bucket's bound; `None` without calls.
pub fn quantile(buckets: &[u64], q: f64) -> Option<Duration> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(bucket_bound(i));
        }
    }
    Some(bucket_bound(buckets.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latency_falls_in_the_bucket_whose_bound_holds_it() {
        let mut last = 0;
        for us in (0..2_000_000u64).step_by(7).chain([u64::MAX / 2]) {
            let took = Duration::from_micros(us);
            let i = bucket_of(took);
            assert!(i >= last, "buckets ascend with latency ({us} µs)");
            last = i;
            if i < LATENCY_BUCKETS - 1 {
                assert!(took < bucket_bound(i), "{us} µs in bucket {i}");
            }
            if i > 0 {
                assert!(took >= bucket_bound(i - 1), "{us} µs in bucket {i}");
            }
        }
        assert_eq!(bucket_of(Duration::from_micros(63)), 0);
        assert_eq!(bucket_of(Duration::from_micros(64)), 1);
        assert_eq!(bucket_of(Duration::from_secs(3600)), LATENCY_BUCKETS - 1);
        // Four buckets per doubling.
        assert_eq!(bucket_of(Duration::from_micros(128)), 5);
    }

    #[test]
    fn a_quantile_is_the_bound_of_the_bucket_that_reaches_it() {
        let stats = CallStats::default();
        for _ in 0..98 {
            stats.admitted();
            stats.answered(false, Duration::from_micros(100));
        }
        for _ in 0..2 {
            stats.admitted();
            stats.answered(true, Duration::from_millis(40));
        }
        let counts = stats.read();
        assert_eq!((counts.calls, counts.errors), (100, 2));
        let p50 = quantile(&counts.latency, 0.5).unwrap();
        let p99 = quantile(&counts.latency, 0.99).unwrap();
        assert!(p50 > Duration::from_micros(100) && p50 < Duration::from_micros(120));
        assert!(p99 > Duration::from_millis(40) && p99 < Duration::from_millis(48));
        assert_eq!(quantile(&[], 0.99), None);
    }
}
