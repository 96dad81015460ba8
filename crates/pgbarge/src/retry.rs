//! How often and how long to retry a unit after a transient failure, kept apart from the
//! errors themselves (which only say whether a retry can help).

use std::time::Duration;

/// Exponential backoff with full jitter, bounded by a number of retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one unit after its first attempt; 0 turns retrying off.
    pub retries: u32,
    /// The delay before the first retry (doubled each time, before jitter)...
    pub initial: Duration,
    /// ...up to this.
    pub max_delay: Duration,
}

/// The default survives a cloud failover or a server restart of two minutes or more:
/// 1 + 2 + 4 + 8 + 16 + 30 × 7 s ≈ 4 minutes of backoff, at least 2 after jitter (which
/// takes up to half of each wait off).
pub const DEFAULT_RETRIES: u32 = 12;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: DEFAULT_RETRIES,
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based), jittered by `unit` in [0, 1):
    /// between half and all of the exponential delay, so streams that failed together
    /// (a reset link) do not all come back at the same instant.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Whether retry number `attempt` (1-based) is allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        attempt <= self.retries
    }
}

/// A number in [0, 1) that differs between calls, for jitter: no cryptographic quality
/// needed, so the standard library's randomly seeded hasher does.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(2));
        assert_eq!(p.delay(5, 1.0), Duration::from_secs(16));
        assert_eq!(p.delay(6, 1.0), Duration::from_secs(30));
        assert_eq!(p.delay(40, 1.0), Duration::from_secs(30));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(2), "half at least");
    }

    #[test]
    fn the_default_budget_outlasts_a_two_minute_outage() {
        let p = RetryPolicy::default();
        let least: Duration = (1..=p.retries).map(|a| p.delay(a, 0.0)).sum();
        assert!(least >= Duration::from_secs(120), "{least:?}");
        assert!(p.allows(p.retries) && !p.allows(p.retries + 1));
        assert!(!RetryPolicy { retries: 0, ..p }.allows(1));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
