//! How often and how long to retry after a transient failure, kept apart from the errors
//! themselves (which only say whether a retry can help), and the one loop that does it
//! ([`with_retries`]).

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

/// Runs `op` — given the attempt, 0 for the first — until it succeeds, fails in a way
/// `retryable` says a retry cannot help, or `policy`'s retries are spent; between
/// attempts it tells `before_retry` (the retry's number, the error, the delay) and waits
/// out the backoff. The one retry loop: every stage's "try again" goes through it, and
/// what is retryable is the caller's single policy (see `Error::is_transient`).
pub async fn with_retries<T, E>(
    policy: &RetryPolicy,
    retryable: impl Fn(&E) -> bool,
    mut op: impl AsyncFnMut(u32) -> Result<T, E>,
    mut before_retry: impl AsyncFnMut(u32, &E, Duration),
) -> Result<T, E> {
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(e) if retryable(&e) && policy.allows(attempt + 1) => {
                attempt += 1;
                let delay = policy.delay(attempt, jitter());
                before_retry(attempt, &e, delay).await;
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
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

    #[tokio::test(start_paused = true)]
    async fn with_retries_stops_at_success_a_permanent_error_or_the_budget() {
        let policy = RetryPolicy {
            retries: 3,
            ..RetryPolicy::default()
        };
        let transient = |e: &&str| *e == "transient";
        // Succeeds on the third attempt, after two announced retries.
        let mut told = Vec::new();
        let got = with_retries(
            &policy,
            transient,
            async |attempt| {
                if attempt < 2 {
                    Err("transient")
                } else {
                    Ok(attempt)
                }
            },
            async |n, _: &&str, _| told.push(n),
        )
        .await;
        assert_eq!((got, told), (Ok(2), vec![1, 2]));
        // A permanent error is not retried.
        let mut calls = 0;
        let got: Result<(), &str> = with_retries(
            &policy,
            transient,
            async |_| {
                calls += 1;
                Err("permanent")
            },
            async |_, _, _| {},
        )
        .await;
        assert_eq!((got, calls), (Err("permanent"), 1));
        // The budget: the first attempt and three retries.
        let mut calls = 0;
        let got: Result<(), &str> = with_retries(
            &policy,
            transient,
            async |_| {
                calls += 1;
                Err("transient")
            },
            async |_, _, _| {},
        )
        .await;
        assert_eq!((got, calls), (Err("transient"), 4));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
