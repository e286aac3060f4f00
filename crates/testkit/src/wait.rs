//! Waiting for a condition: poll until it holds or a limit passes. Tests wait on real
//! processes and sockets, so every wait has a limit and a failed one says what it waited for.

use crate::{Error, Result};
use std::time::{Duration, Instant};

/// How often [`wait_for`] polls: often enough to measure recoveries to a tenth of a second.
const BLOCKING_POLL: Duration = Duration::from_millis(100);

/// Polls `f` every 100 ms (blocking the thread) until it returns `Some`, or fails after
/// `limit` with [`Error::Timeout`] naming `what`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= end {
            return Err(Error::Timeout {
                what: what.to_string(),
                limit,
            });
        }
        std::thread::sleep(BLOCKING_POLL);
    }
}

/// Polls the async condition `f` every `every` until it is true (`true`) or `limit` passes
/// (`false`). The caller asserts on the outcome, with its own message.
pub async fn until(limit: Duration, every: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_returns_the_value_or_names_what_it_waited_for() {
        let mut n = 0;
        let got = wait_for(Duration::from_secs(5), "three polls", || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got.ok(), Some(3));
        let err = wait_for(Duration::ZERO, "nothing", || None::<()>)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("timed out after 0ns waiting for nothing")
        );
    }

    #[tokio::test]
    async fn until_is_false_after_the_limit() {
        let mut polls = 0;
        let ok = until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            async || {
                polls += 1;
                false
            },
        )
        .await;
        assert!(!ok);
        assert!(polls >= 2, "{polls}");
        assert!(until(Duration::ZERO, Duration::ZERO, async || true).await);
    }
}
