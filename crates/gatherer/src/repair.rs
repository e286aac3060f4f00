//! Gap repair (DESIGN §3 "Sequence tracking and repair").
//!
//! Order books repair themselves on their connection: the router asks for a fresh snapshot
//! (`update_subscription get_snapshot`) of the markets a gap touched, and a lost connection
//! resubscribes (snapshots come with the subscription). Trades cannot be re-read from the
//! socket, so this task backfills them over REST (`GET /markets/trades` with `min_ts`/`max_ts`)
//! for the window a gap covers — one market when known, every market otherwise — skipping
//! trades already received (by `trade_id`). The same backfill covers the downtime since the
//! last stored trade when the gatherer starts.

use crate::metrics as m;
use crate::sequence::GapNotice;
use kd_core::backoff::BackoffPolicy;
use kd_core::{Record, TimestampUs};
use kd_kalshi::parse::rest_trade_to_record;
use kd_kalshi::rest::{RestClient, RestError, TradesQuery};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Trade ids remembered for deduplicating backfills (a few minutes of trades at high rates).
const RECENT_TRADES: usize = 200_000;
/// REST trades lag the WebSocket a little: wait this long after a gap's end before reading.
const SETTLE: Duration = Duration::from_secs(2);
/// Pages per backfill request.
const PAGE: u32 = 1_000;
/// Attempts per REST page before the backfill of that window is abandoned (counted).
const ATTEMPTS: u32 = 8;

/// The trade ids received recently (WebSocket and backfill alike).
#[derive(Debug, Default)]
pub struct RecentTrades {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl RecentTrades {
    /// Remembers an id; false when it was already known.
    pub fn insert(&self, id: &str) -> bool {
        let Ok(mut guard) = self.inner.lock() else {
            return true;
        };
        let (set, order) = &mut *guard;
        if set.contains(id) {
            return false;
        }
        set.insert(id.to_string());
        order.push_back(id.to_string());
        if order.len() > RECENT_TRADES
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }
}

/// The trade backfiller.
#[derive(Debug)]
pub struct Repair {
    pub rest: RestClient,
    pub records: mpsc::Sender<Record>,
    pub recent: Arc<RecentTrades>,
    pub notices: mpsc::UnboundedReceiver<GapNotice>,
    /// Backoff between attempts at one page.
    pub policy: BackoffPolicy,
}

impl Repair {
    /// Backfills trades for every gap notice touching the trade channel (or a dropped trade)
    /// until shutdown. `downtime_since` (the last stored trade's time) is backfilled first.
    pub async fn run(mut self, downtime_since: Option<TimestampUs>, shutdown: CancellationToken) {
        if let Some(since) = downtime_since {
            let now = TimestampUs::now();
            tracing::info!(since = %since.to_rfc3339(), "backfilling trades missed while down");
            self.backfill(None, since, now, "downtime", &shutdown).await;
        }
        loop {
            let notice = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = self.notices.recv() => match n {
                    Some(n) => n,
                    None => return,
                },
            };
            if notice.channel != "trade" {
                continue;
            }
            // Let REST catch up with the window's end.
            let ready_at = notice.end.micros() + SETTLE.as_micros() as i64;
            let wait = (ready_at - TimestampUs::now().micros()).max(0) as u64;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_micros(wait)) => {}
            }
            self.backfill(
                notice.ticker.as_deref(),
                notice.start,
                notice.end,
                notice.reason.as_str(),
                &shutdown,
            )
            .await;
        }
    }

    /// Reads every trade of `[start − 1 s, end + 1 s]` (one market or all) and stores those not
    /// received yet. Returns how many were recovered.
    pub async fn backfill(
        &self,
        ticker: Option<&str>,
        start: TimestampUs,
        end: TimestampUs,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> u64 {
        let min_ts = start.secs() - 1;
        let max_ts = end.secs() + 1;
        let mut cursor: Option<String> = None;
        let mut recovered = 0_u64;
        loop {
            let query = TradesQuery {
                ticker: ticker.map(str::to_string),
                min_ts: Some(min_ts),
                max_ts: Some(max_ts),
                cursor: cursor.clone(),
                limit: Some(PAGE),
            };
            let rest = &self.rest;
            let page = rest
                .retry(self.policy, Some(ATTEMPTS), shutdown, || {
                    rest.trades_page(&query)
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(RestError::Cancelled) => return recovered,
                Err(e) => {
                    metrics::counter!(m::REPAIR_ERRORS_TOTAL, "kind" => e.kind()).increment(1);
                    tracing::error!(error = %e, ?ticker, reason, "trade backfill abandoned for this window");
                    return recovered;
                }
            };
            let now = TimestampUs::now();
            for t in &page.trades {
                match rest_trade_to_record(t, now) {
                    Ok(trade) => {
                        if self.recent.insert(&trade.trade_id) {
                            recovered += 1;
                            if self.records.send(Record::Trade(trade)).await.is_err() {
                                return recovered;
                            }
                        }
                    }
                    Err(e) => {
                        metrics::counter!(m::REPAIR_ERRORS_TOTAL, "kind" => e.kind()).increment(1);
                    }
                }
            }
            match page.cursor.filter(|c| !c.is_empty()) {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => break,
            }
        }
        metrics::counter!(m::REPAIR_TRADES_RECOVERED_TOTAL).increment(recovered);
        metrics::counter!(m::REPAIR_BACKFILLS_TOTAL, "reason" => reason.to_string()).increment(1);
        tracing::info!(?ticker, reason, recovered, "trade backfill done");
        recovered
    }
}

#[cfg(test)]
mod tests {
    use super::RecentTrades;

    #[test]
    fn recent_trades_deduplicate() {
        let r = RecentTrades::default();
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
    }
}
