//! How far production is complete, per gatherer and table (`sync_progress`, read by the
//! exporter so that it exports a window only once production holds every gatherer's rows of it).
//!
//! # What is proved, and when
//! A pull answered with every row the gatherer had (fewer than the page limit, and its head at
//! the page's last row) covers every row the gatherer committed before the gatherer read its
//! store for that answer — which is after the deduplicator sent the request. So "every row the
//! gatherer committed before the request started is pulled" holds as soon as the answer is in;
//! it becomes "… is in production" once the rows up to that page's last sequence number are
//! committed (the cursor the committer publishes). A puller therefore records a *claim*
//! `(sequence covered, request start − margin)` for each complete answer and proves it when the
//! committed cursor reaches that sequence; the newest proved time is `complete_through`.
//!
//! # Clocks
//! The request start is read on the deduplicator's clock; the gatherer stamps receipt times on
//! its own, and the exporter compares `complete_through` with exchange times (Kalshi's clock).
//! Only the request start crosses machines here, and only one way can hurt: a deduplicator
//! clock *ahead* of the others would claim rows the gatherer has not committed yet. The margin
//! (`progress_clock_margin_ms`, default 5 s) is subtracted for that: NTP-synchronised hosts are
//! within milliseconds, and 5 s absorbs a badly drifting one; a clock behind only makes the
//! claim conservative. The exporter's own settle delay (120 s) covers the other direction
//! (Kalshi's exchange time vs the gatherer's receipt, the gatherer's receive-to-commit delay).
//! The gatherer's clock is deliberately not used: the pull answer does not carry it, and one
//! clock (the deduplicator's, for both `complete_through` and `updated_at`) is easier to reason
//! about than two.
//!
//! # Writing
//! Proved times go to a shared board; one task writes the changed ones every
//! [`WRITE_INTERVAL`] with `updated_at = now`. A failed write (production down) is retried on
//! the next tick and never blocks a puller. While a gatherer is unreachable or catching up no
//! claim is proved, so its `updated_at` ages — that is how the exporter knows it is down.

use kd_core::{Table, TimestampUs};
use kd_production::{Store, SyncProgress};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often proved progress is written to production.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// Longest a progress write may take before it is abandoned (retried next tick).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Claims kept per puller while their rows wait for the commit (older ones are dropped: a
/// newer claim proves more, only later).
const MAX_CLAIMS: usize = 64;

/// One puller's claims not yet proved, oldest first (sequences non-decreasing).
#[derive(Debug, Default)]
pub(crate) struct Claims(VecDeque<(u64, TimestampUs)>);

impl Claims {
    /// Every row up to `seq` being committed will prove `through`.
    pub fn claim(&mut self, seq: u64, through: TimestampUs) {
        match self.0.back_mut() {
            // Same rows, a later time: the newer claim is strictly better.
            Some(last) if last.0 >= seq => *last = (last.0, through.max(last.1)),
            _ => self.0.push_back((seq, through)),
        }
        while self.0.len() > MAX_CLAIMS {
            self.0.pop_front();
        }
    }

    /// The newest time proved by a committed cursor at `committed`, removing those claims.
    pub fn prove(&mut self, committed: u64) -> Option<TimestampUs> {
        let mut proved = None;
        while let Some(&(seq, through)) = self.0.front() {
            if seq > committed {
                break;
            }
            proved = Some(through);
            self.0.pop_front();
        }
        proved
    }

    /// Forgets every claim (the gatherer's store was replaced: its numbers mean nothing now).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Proved progress per (gatherer, table), waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct Board {
    proved: Mutex<HashMap<(String, Table), TimestampUs>>,
}

impl Board {
    pub fn publish(&self, gatherer: &str, table: Table, through: TimestampUs) {
        if let Ok(mut map) = self.proved.lock() {
            let slot = map.entry((gatherer.to_string(), table)).or_insert(through);
            *slot = (*slot).max(through);
        }
    }

    fn snapshot(&self) -> HashMap<(String, Table), TimestampUs> {
        self.proved.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Writes changed progress every [`WRITE_INTERVAL`] until `shutdown`.
pub(crate) async fn writer(
    store: Store,
    board: std::sync::Arc<Board>,
    shutdown: CancellationToken,
) {
    let mut written: HashMap<(String, Table), TimestampUs> = HashMap::new();
    let mut failures = 0_u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WRITE_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
        let now = TimestampUs::now();
        let changed: Vec<SyncProgress> = board
            .snapshot()
            .into_iter()
            .filter(|(k, v)| written.get(k) != Some(v))
            .map(|((gatherer, table), through)| SyncProgress {
                gatherer,
                table,
                complete_through: through,
                updated_at: now,
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        match tokio::time::timeout(WRITE_TIMEOUT, store.set_progress(&changed)).await {
            Ok(Ok(())) => {
                failures = 0;
                for p in changed {
                    written.insert((p.gatherer, p.table), p.complete_through);
                }
            }
            outcome => {
                failures = failures.saturating_add(1);
                // The commit path reports production outages; this says only what it skipped.
                if failures == 1 || failures.is_multiple_of(60) {
                    let error = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("took longer than {} s", WRITE_TIMEOUT.as_secs()),
                    };
                    tracing::warn!(%error, failures, "sync progress not written; retrying");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_proved_only_once_its_rows_are_committed() {
        let t = TimestampUs::from_micros;
        let mut c = Claims::default();
        c.claim(10, t(100));
        c.claim(10, t(200)); // same rows, later: replaces
        c.claim(25, t(300));
        assert_eq!(c.prove(9), None);
        assert_eq!(c.prove(10), Some(t(200)));
        assert_eq!(c.prove(24), None);
        assert_eq!(c.prove(30), Some(t(300)));
        assert_eq!(c.prove(30), None);
        for i in 0..200 {
            c.claim(100 + i, t(1000 + i as i64));
        }
        assert_eq!(c.0.len(), MAX_CLAIMS);
        c.clear();
        assert_eq!(c.prove(u64::MAX), None);
    }
}
