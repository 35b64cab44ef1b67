//! Retries of calls a node certainly did not run: exponential backoff with jitter.

use std::time::Duration;

/// How a call is retried when the node certainly did not run it
/// ([`CallError::not_executed`](crate::error::CallError::not_executed)): with exponential backoff and jitter, within
/// the call's deadline, on the next replica of the [`Connection`](super::Connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each attempt.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 50,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(250),
        }
    }
}

/// The wait before attempt `attempt + 1`: exponential, capped, with jitter
/// in its upper half so retrying clients spread out.
pub(super) fn backoff(policy: RetryPolicy, attempt: u32, seed: u64) -> Duration {
    let base = policy
        .first_backoff
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.max_backoff);
    // xorshift of the call's seed and attempt: cheap, and enough to de-synchronise.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(attempt) + 1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let half = base / 2;
    half + Duration::from_nanos(x % (half.as_nanos() as u64 + 1))
}
