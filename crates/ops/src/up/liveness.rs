//! Liveness: a child that is running but no longer answers its health URL is hung (a
//! deadlock, a stopped process, a livelocked runtime) and is killed so that supervision
//! restarts it — what systemd's `WatchdogSec` does in production (deploy/systemd).
//!
//! Any HTTP answer counts, a `503` included: a degraded process (its store failing, production
//! unreachable) is alive and reports it; only silence means hung. A child is judged only once
//! it has answered once, so a slow start (a simulator building a million markets before it
//! serves) is never mistaken for a hang.

use std::time::Duration;

/// Time between probes.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Time between probes until the first answer: a child that hangs right after it starts
/// serving must be seen answering first, or it is never judged (with 2 s probes a gatherer
/// stopped within 2 s of serving was never replaced — the guards test, reproducible alone).
const FIRST_PROBE_EVERY: Duration = Duration::from_millis(200);
/// Longest wait for one probe's answer.
const PROBE_TIMEOUT_MAX: Duration = Duration::from_secs(5);
/// Shortest: the last probe before the limit still gets this long.
const PROBE_TIMEOUT_MIN: Duration = Duration::from_millis(500);
/// Default `--hung-after`: this long without an answer, after a first answer, means hung.
/// Above the longest freeze the reliability tests impose on purpose (12 s) and far below the
/// 30 s in which a replacement must be storing data again.
pub const DEFAULT_HUNG_AFTER: Duration = Duration::from_secs(16);

/// Returns once the process behind `url` has answered at least once and then stayed silent
/// for `hung_after`; never returns while it keeps answering (or when `url` is empty).
pub async fn until_hung(url: String, hung_after: Duration) {
    if url.is_empty() || hung_after.is_zero() {
        return std::future::pending().await;
    }
    // Not `probe::client()`: its 2 s timeout would cap the per-probe wait below.
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT_MAX)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut last_answer: Option<tokio::time::Instant> = None;
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        // Generous per probe (a loaded machine answers slowly, and slow is not hung), but never
        // past the moment the silence reaches the limit: a hang is seen within it plus one
        // probe interval, however slow the probes.
        let started = tokio::time::Instant::now();
        let left = last_answer.map_or(PROBE_TIMEOUT_MAX, |t| {
            (t + hung_after).saturating_duration_since(started)
        });
        let timeout = left.clamp(PROBE_TIMEOUT_MIN, PROBE_TIMEOUT_MAX);
        let answered = tokio::time::timeout(timeout, client.get(&url).send())
            .await
            .is_ok_and(|r| r.is_ok());
        let now = tokio::time::Instant::now();
        if answered {
            last_answer = Some(now);
        } else if last_answer.is_some_and(|t| now.duration_since(t) >= hung_after) {
            return;
        }
        // From this probe's start, as a fixed-rate tick whose missed ticks are delayed.
        next = started
            + if last_answer.is_some() {
                PROBE_EVERY
            } else {
                FIRST_PROBE_EVERY
            };
    }
}
