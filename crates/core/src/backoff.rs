//! The exponential backoff of DESIGN §6: `min(base · 2^attempt, max)` plus 0–25 % jitter.
//!
//! One type for every retry loop so the bases and caps stay the documented ones. Kept by hand
//! (a dozen lines) because the `backoff`/`backon` crates model retry *loops*, while our loops
//! decide per error variant whether to retry at all and need only the delay.

use rand::RngExt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl BackoffPolicy {
    /// Market registry (REST): retry forever.
    pub const REGISTRY: BackoffPolicy =
        BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(300));
    /// Connection manager (WebSocket): per connection.
    pub const CONNECTION: BackoffPolicy =
        BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(300));
    /// Snapshot poller (REST).
    pub const POLLER: BackoffPolicy =
        BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(60));
    /// Deduplicator (database): retry forever, stay responsive.
    pub const DATABASE: BackoffPolicy =
        BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(30));

    pub const fn new(base: Duration, max: Duration) -> Self {
        BackoffPolicy { base, max }
    }

    /// The delay before retry number `attempt` (0-based) without jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1_u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry number `attempt`, with 0–25 % random jitter added.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling + random_up_to(ceiling / 4)
    }

    /// The jitter alone: a random 0–25 % of `base`. For retries that must not wait the backoff
    /// (a clean close, reconnected at once) but must not all return at the same instant either.
    pub fn jitter(&self) -> Duration {
        random_up_to(self.base / 4)
    }
}

fn random_up_to(range: Duration) -> Duration {
    if range.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(range.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// A retry counter that walks a policy.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff { policy, attempt: 0 }
    }

    /// The next delay; each call doubles the ceiling up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.policy.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// Call after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter() {
        let p = BackoffPolicy::REGISTRY;
        assert_eq!(p.ceiling(0), Duration::from_secs(1));
        assert_eq!(p.ceiling(3), Duration::from_secs(8));
        assert_eq!(p.ceiling(9), Duration::from_secs(300));
        assert_eq!(p.ceiling(1000), Duration::from_secs(300));
        for attempt in 0..20 {
            let d = p.delay(attempt);
            let c = p.ceiling(attempt);
            assert!(
                d >= c && d <= c + c / 4,
                "attempt {attempt}: {d:?} vs {c:?}"
            );
        }
        assert_eq!(BackoffPolicy::DATABASE.ceiling(10), Duration::from_secs(30));
    }

    #[test]
    fn jitter_alone_stays_within_a_quarter_of_the_base() {
        let p = BackoffPolicy::CONNECTION;
        let jitters: Vec<_> = (0..200).map(|_| p.jitter()).collect();
        assert!(jitters.iter().all(|j| *j <= p.base / 4));
        assert!(jitters.iter().any(|j| *j > p.base / 8));
    }

    #[test]
    fn jitter_spreads_delays() {
        let p = BackoffPolicy::CONNECTION;
        let delays: std::collections::HashSet<_> = (0..50).map(|_| p.delay(2)).collect();
        assert!(
            delays.len() > 40,
            "jitter produced only {} distinct delays",
            delays.len()
        );
    }
}
