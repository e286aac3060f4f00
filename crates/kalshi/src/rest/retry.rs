//! The retry rules of DESIGN §6 as two helpers every REST user shares: a retry loop that obeys
//! [`Action`], and the maintenance wait on `/exchange/status`.

use super::{Action, RestClient, RestError, metrics};
use kd_core::TimestampUs;
use kd_core::backoff::{Backoff, BackoffPolicy};
use rand::RngExt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The maintenance wait of DESIGN §6. Defaults are the design's; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceConfig {
    /// Added to `exchange_estimated_resume_time` before polling again (10 s).
    pub resume_margin: Duration,
    /// Never poll a down exchange more often than this (30 s).
    pub min_wait: Duration,
    /// Poll interval when `/exchange/status` itself fails (30 s).
    pub status_retry: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            resume_margin: Duration::from_secs(10),
            min_wait: Duration::from_secs(30),
            status_retry: Duration::from_secs(30),
        }
    }
}

impl MaintenanceConfig {
    /// How long to wait while the exchange is down, given its announced resume time
    /// (RFC 3339) and the time now: until resume + margin, at least `min_wait`.
    pub fn wait_for(&self, estimated_resume: Option<&str>, now: TimestampUs) -> Duration {
        let until_resume = estimated_resume
            .and_then(|t| TimestampUs::parse_rfc3339(t).ok())
            .map(|resume| resume.micros().saturating_sub(now.micros()))
            .and_then(|us| u64::try_from(us).ok())
            .map(Duration::from_micros)
            .map(|d| d.saturating_add(self.resume_margin));
        until_resume.unwrap_or_default().max(self.min_wait)
    }
}

/// Sleeps unless shutdown comes first.
async fn sleep_or_cancel(delay: Duration, shutdown: &CancellationToken) -> Result<(), RestError> {
    tokio::select! {
        () = shutdown.cancelled() => Err(RestError::Cancelled),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

/// `after` plus 0–25 % jitter, so clients told the same `retry_after_ms` do not return together.
fn jittered(after: Duration) -> Duration {
    let range = u64::try_from((after / 4).as_nanos()).unwrap_or(u64::MAX);
    let extra = if range == 0 {
        0
    } else {
        rand::rng().random_range(0..=range)
    };
    after.saturating_add(Duration::from_nanos(extra))
}

impl RestClient {
    /// Calls `f` until it succeeds, following [`RestError::action`]:
    /// `Halt`, `Skip` and `NoRetry` return the error at once; `Retry` sleeps the backoff of
    /// `policy` (or the server's `retry_after`, jittered); `Maintenance` waits on
    /// [`RestClient::wait_for_exchange`]. Gives up after `max_attempts` calls when given, and
    /// returns [`RestError::Cancelled`] when `shutdown` fires while waiting.
    pub async fn retry<T, F, Fut>(
        &self,
        policy: BackoffPolicy,
        max_attempts: Option<u32>,
        shutdown: &CancellationToken,
        mut f: F,
    ) -> Result<T, RestError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RestError>>,
    {
        let mut backoff = Backoff::new(policy);
        let mut attempts: u32 = 0;
        loop {
            if shutdown.is_cancelled() {
                return Err(RestError::Cancelled);
            }
            let err = match f().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            attempts = attempts.saturating_add(1);
            let delay = match err.action() {
                Action::NoRetry | Action::Halt | Action::Skip => return Err(err),
                Action::Retry { after } => {
                    let backoff_delay = backoff.next_delay();
                    after.map_or(backoff_delay, jittered)
                }
                Action::Maintenance => {
                    if max_attempts.is_some_and(|max| attempts >= max) {
                        return Err(err);
                    }
                    let down_polls = self.wait_for_exchange(shutdown).await?;
                    if down_polls == 0 {
                        // A 503 while the exchange reports itself up: an overloaded edge, not
                        // maintenance. Back off so it cannot become a tight loop.
                        backoff.next_delay()
                    } else {
                        backoff.reset();
                        Duration::ZERO
                    }
                }
            };
            if max_attempts.is_some_and(|max| attempts >= max) {
                return Err(err);
            }
            ::metrics::counter!(metrics::RETRIES_TOTAL).increment(1);
            tracing::debug!(error = %err, attempt = attempts, delay_ms = delay.as_millis() as u64, "retrying");
            sleep_or_cancel(delay, shutdown).await?;
        }
    }

    /// [`RestClient::retry`] without an attempt limit: for calls the component cannot work
    /// without (the market registry).
    pub async fn retry_forever<T, F, Fut>(
        &self,
        policy: BackoffPolicy,
        shutdown: &CancellationToken,
        f: F,
    ) -> Result<T, RestError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RestError>>,
    {
        self.retry(policy, None, shutdown, f).await
    }

    /// The maintenance loop of DESIGN §6: poll `/exchange/status`; while `exchange_active` is
    /// false wait until `exchange_estimated_resume_time` + margin (at least `min_wait`); when
    /// the status call fails, poll again after `status_retry`. Returns the number of polls that
    /// found the exchange down (0: it was up at the first look), or the error when the status
    /// call says the credentials are refused (401/403: halt) or shutdown was requested.
    /// `trading_active=false` with `exchange_active=true` counts as up: books still move.
    pub async fn wait_for_exchange(&self, shutdown: &CancellationToken) -> Result<u32, RestError> {
        let config = *self.maintenance_config();
        let started = tokio::time::Instant::now();
        let mut down_polls: u32 = 0;
        let result = loop {
            if shutdown.is_cancelled() {
                break Err(RestError::Cancelled);
            }
            ::metrics::counter!(metrics::MAINTENANCE_POLLS_TOTAL).increment(1);
            let delay = match self.exchange_status().await {
                Ok(status) if status.exchange_active => break Ok(down_polls),
                Ok(status) => {
                    down_polls = down_polls.saturating_add(1);
                    let resume = status.exchange_estimated_resume_time.as_deref();
                    let delay = config.wait_for(resume, TimestampUs::now());
                    tracing::warn!(
                        estimated_resume = resume.unwrap_or("unknown"),
                        wait_ms = delay.as_millis() as u64,
                        "exchange inactive (maintenance); waiting"
                    );
                    delay
                }
                Err(e) if e.action() == Action::Halt => break Err(e),
                Err(RestError::Cancelled) => break Err(RestError::Cancelled),
                Err(e) => {
                    tracing::warn!(error = %e, "exchange status unavailable; polling again");
                    config.status_retry
                }
            };
            if let Err(e) = sleep_or_cancel(delay, shutdown).await {
                break Err(e);
            }
        };
        ::metrics::counter!(metrics::MAINTENANCE_WAIT_SECONDS_TOTAL)
            .increment(started.elapsed().as_secs());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_wait_rules() {
        let c = MaintenanceConfig::default();
        let now = TimestampUs::parse_rfc3339("2026-06-24T15:00:00Z").unwrap();
        // Resume in 2 minutes: wait 2 min + 10 s.
        assert_eq!(
            c.wait_for(Some("2026-06-24T15:02:00Z"), now),
            Duration::from_secs(130)
        );
        // Resume in 5 s: 15 s is under the 30 s floor.
        assert_eq!(
            c.wait_for(Some("2026-06-24T15:00:05Z"), now),
            Duration::from_secs(30)
        );
        // Already past, unknown or unparsable: the floor.
        assert_eq!(
            c.wait_for(Some("2026-06-24T14:00:00Z"), now),
            Duration::from_secs(30)
        );
        assert_eq!(c.wait_for(None, now), Duration::from_secs(30));
        assert_eq!(c.wait_for(Some("soon"), now), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let base = Duration::from_millis(400);
        for _ in 0..100 {
            let d = jittered(base);
            assert!(d >= base && d <= base + base / 4);
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
