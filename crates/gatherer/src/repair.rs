//! Gap repair (DESIGN §3 "Sequence tracking and repair").
//!
//! Order books repair themselves on their connection: the router asks for a fresh snapshot
//! (`update_subscription get_snapshot`) of the markets a gap touched, and a lost connection
//! resubscribes (snapshots come with the subscription). Trades cannot be re-read from the
//! socket, so this task backfills them over REST (`min_ts`/`max_ts`) for the window a gap
//! covers — one market when known, every market otherwise — skipping trades already received
//! (by `trade_id`). The same backfill covers the downtime since the last stored trade when the
//! gatherer starts. Each window is read from `/markets/trades` and/or `/historical/trades` by
//! the historical cutoff, fetched for every window since it advances while we run (the rule:
//! [`kd_kalshi::rest::cutoff`]); trades read from both are one trade by `trade_id`.
//!
//! Every window here is in the exchange's clock (gap notices are converted by the router;
//! "now" is [`Clock::exchange_now`]): `min_ts`/`max_ts` are exchange times, and a gatherer
//! whose clock is off would otherwise read the wrong seconds.

use crate::clock::Clock;
use crate::events::emit;
use crate::events::repair::{
    BackfillAbandoned, BackfillDone, CutoffUnknown, DowntimeBackfillStarted, StopWindowsReading,
    StopWindowsUnread, TradeNotConverted,
};
use crate::health::Health;
use crate::sequence::{GapNotice, GapReason};
use crate::writer::WriterControl;
use kd_core::backoff::BackoffPolicy;
use kd_core::{Gap, Record, TimestampUs};
use kd_kalshi::parse::rest_trade_to_record;
use kd_kalshi::rest::{
    CUTOFF_OVERLAP, RestClient, RestError, TradeSpan, TradesQuery, TradesTier, historical_span,
    live_span,
};
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
/// Attempts at the historical cutoff before reading a window from both endpoints instead.
const CUTOFF_ATTEMPTS: u32 = 3;
/// Windows closer than this are read as one (each read already widens a window by 1 s).
const MERGE_SLACK_US: i64 = 2_000_000;
/// Longest wait for REST to catch up with a window's end.
const MAX_SETTLE_US: i64 = 10_000_000;
/// How long a stopping gatherer keeps reading the windows of gaps it already knows.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A trade window to read: one market, or every market (`ticker` `None`).
#[derive(Debug, Clone, PartialEq)]
struct Window {
    ticker: Option<String>,
    start: TimestampUs,
    end: TimestampUs,
    reason: GapReason,
}

/// The trade windows of `notices` (other channels are repaired by snapshots).
fn trade_windows(notices: Vec<GapNotice>) -> Vec<Window> {
    notices
        .into_iter()
        .filter(|n| n.channel == "trade")
        .map(|n| Window {
            ticker: n.ticker,
            start: n.start,
            end: n.end,
            reason: n.reason,
        })
        .collect()
}

/// Windows of every market that overlap or lie within [`MERGE_SLACK_US`] become one (likewise
/// per market), and a one-market window inside an every-market window is dropped.
fn merge_windows(windows: Vec<Window>) -> Vec<Window> {
    let (all, one): (Vec<Window>, Vec<Window>) =
        windows.into_iter().partition(|w| w.ticker.is_none());
    let merge = |mut ws: Vec<Window>| -> Vec<Window> {
        ws.sort_by(|a, b| (&a.ticker, a.start).cmp(&(&b.ticker, b.start)));
        let mut out: Vec<Window> = Vec::with_capacity(ws.len());
        for w in ws {
            match out.last_mut() {
                Some(last)
                    if last.ticker == w.ticker
                        && w.start.micros() <= last.end.micros() + MERGE_SLACK_US =>
                {
                    if w.end > last.end {
                        last.end = w.end;
                    }
                }
                _ => out.push(w),
            }
        }
        out
    };
    let all = merge(all);
    let one = merge(one)
        .into_iter()
        .filter(|w| !all.iter().any(|a| a.start <= w.start && w.end <= a.end))
        .collect::<Vec<_>>();
    all.into_iter().chain(one).collect()
}

/// Waits until REST has caught up with the end of every window ([`SETTLE`] after the latest,
/// on the exchange's clock); false when `stop` came first.
async fn settle(windows: &[Window], clock: &Clock, stop: &CancellationToken) -> bool {
    let Some(end) = windows.iter().map(|w| w.end).max() else {
        return true;
    };
    let ready_at = end.micros() + SETTLE.as_micros() as i64;
    // Bounded: a window end far in the future (a clock not yet measured) must not stall repair.
    let wait = (ready_at - clock.exchange_now().micros()).clamp(0, MAX_SETTLE_US) as u64;
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_micros(wait)) => true,
    }
}

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

    /// A trade arrived on the WebSocket: true when it is new (to be stored), false when a
    /// backfill or an earlier copy stored it already.
    pub fn received_live(&self, id: &str) -> bool {
        self.insert(id)
    }

    /// A received trade was dropped before the writer stored it: its id is forgotten, so the
    /// backfill of the drop window stores it.
    pub fn not_stored(&self, id: &str) {
        self.remove(id);
    }

    /// Forgets an id whose record was not stored after all (dropped on the way to the
    /// writer), so a backfill stores it.
    pub fn remove(&self, id: &str) {
        if let Ok(mut guard) = self.inner.lock() {
            // The order queue keeps the id until it ages out; removing it there too would cost
            // a scan, and a stale entry only frees a set slot early.
            guard.0.remove(id);
        }
    }
}

/// A previous run's downtime: from the last stored message to this run's first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downtime {
    /// Exchange time of the latest stored trade, delta or ticker (start of the gap record).
    pub since: TimestampUs,
    /// Exchange time of the latest stored trade (start of the trade backfill), or `since`.
    pub trades_since: TimestampUs,
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
    /// Local time for `received_at`, exchange time for windows.
    pub clock: Arc<Clock>,
    /// Where the downtime gap is recorded.
    pub control: WriterControl,
    /// Tags the downtime gap.
    pub gatherer: String,
    /// Subscribed against known markets: the downtime gap ends once they are equal.
    pub health: Arc<Health>,
}

/// Longest wait for every known market to be subscribed again before the downtime gap is
/// closed anyway (a market refused for good must not hold the repair back).
const RESUBSCRIBE_WAIT: Duration = Duration::from_secs(30);

/// Returns once every market the registry knows is subscribed (or after [`RESUBSCRIBE_WAIT`]).
async fn resubscribed(health: &Health) {
    use std::sync::atomic::Ordering;
    let deadline = tokio::time::Instant::now() + RESUBSCRIBE_WAIT;
    while tokio::time::Instant::now() < deadline {
        let known = health.markets_known.load(Ordering::Relaxed);
        if known > 0 && health.markets_subscribed.load(Ordering::Relaxed) >= known {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Repair {
    /// Backfills trades for every gap notice touching the trade channel (or a dropped trade)
    /// until shutdown. A previous run's `downtime` is recorded and backfilled first.
    pub async fn run(mut self, downtime: Option<Downtime>, shutdown: CancellationToken) {
        if let Some(down) = downtime {
            // The end of the downtime is "now" on the exchange's clock once every market's
            // order book is subscribed again: the first timed message (which measures our
            // offset) can come on an all-market channel before the order-book subscriptions
            // are confirmed, and a change sent in between would be in no gap and no store.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.clock.estimated() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = resubscribed(&self.health) => {}
            }
            let now = self.clock.exchange_now();
            self.control.gap(Gap {
                gatherer: self.gatherer.clone(),
                gap_id: format!("{}-downtime", now.micros()),
                ticker: None,
                tickers: Vec::new(),
                channel: "all".into(),
                start: down.since,
                end: now,
                reason: "downtime".into(),
                repair: "rest_trades+snapshot".into(),
            });
            emit(DowntimeBackfillStarted {
                since: down.trades_since,
            });
            self.backfill(None, down.trades_since, now, "downtime", &shutdown)
                .await;
        }
        let mut pending: Vec<Window> = Vec::new();
        loop {
            let notice = tokio::select! {
                _ = shutdown.cancelled() => break,
                n = self.notices.recv() => match n {
                    Some(n) => n,
                    None => break,
                },
            };
            // Many gaps in a short time (a lossy link loses a message every few milliseconds)
            // are one backfill each only if their windows are far apart: take every notice
            // queued now and read each merged window once.
            let mut notices = vec![notice];
            while let Ok(n) = self.notices.try_recv() {
                notices.push(n);
            }
            pending.extend(trade_windows(notices));
            pending = self.read(merge_windows(pending), &shutdown).await;
            if shutdown.is_cancelled() {
                break;
            }
        }
        // Stopping: windows already known are still read (within a grace period), so a gap
        // just before a stop is not left to a downtime repair that starts at the last stored
        // trade, after it.
        let mut notices = Vec::new();
        while let Ok(n) = self.notices.try_recv() {
            notices.push(n);
        }
        pending.extend(trade_windows(notices));
        let windows = merge_windows(pending);
        if windows.is_empty() {
            return;
        }
        let grace = CancellationToken::new();
        let deadline = grace.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(STOP_GRACE).await;
            deadline.cancel();
        });
        emit(StopWindowsReading {
            windows: windows.len(),
        });
        let unread = self.read(windows, &grace).await;
        if !unread.is_empty() {
            emit(StopWindowsUnread {
                windows: unread.len(),
            });
        }
        timer.abort();
    }

    /// Reads `windows` once REST has caught up with them. Returns those not read completely
    /// because `stop` came first (reading one again is harmless: known trades are skipped).
    async fn read(&self, windows: Vec<Window>, stop: &CancellationToken) -> Vec<Window> {
        if !settle(&windows, &self.clock, stop).await {
            return windows;
        }
        let mut left = windows.into_iter();
        while let Some(w) = left.next() {
            let reason = w.reason.as_str();
            self.backfill(w.ticker.as_deref(), w.start, w.end, reason, stop)
                .await;
            if stop.is_cancelled() {
                return std::iter::once(w).chain(left).collect();
            }
        }
        Vec::new()
    }

    /// Reads every trade of `[start − 1 s, end + 1 s]` (one market or all) and stores those not
    /// received yet, each part from the endpoint the historical cutoff assigns it (see
    /// [`kd_kalshi::rest::cutoff`]: live first with the cutoff as it is now, then the
    /// historical part by the cutoff fetched after that read). Returns how many were recovered.
    pub async fn backfill(
        &self,
        ticker: Option<&str>,
        start: TimestampUs,
        end: TimestampUs,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> u64 {
        let (start, end) = (start.micros(), end.micros());
        let from = TimestampUs::from_micros(start.saturating_sub(1_000_000));
        let to = TimestampUs::from_micros(end.saturating_add(1_000_000));
        let mut live = 0;
        let c0 = self.cutoff(shutdown).await;
        if let Some(span) = live_span(from, to, c0, CUTOFF_OVERLAP) {
            match self
                .read_tier(TradesTier::Live, ticker, span, reason, shutdown)
                .await
            {
                Ok(n) => live = n,
                Err(n) => return n,
            }
        }
        // After a live read the cutoff may have moved past trades that read did not see.
        let c1 = match live_span(from, to, c0, CUTOFF_OVERLAP) {
            Some(_) => self.cutoff(shutdown).await,
            None => c0,
        };
        let mut historical = 0;
        if let Some(span) = historical_span(from, to, c1, CUTOFF_OVERLAP) {
            match self
                .read_tier(TradesTier::Historical, ticker, span, reason, shutdown)
                .await
            {
                Ok(n) => historical = n,
                Err(n) => return live + n,
            }
        }
        emit(BackfillDone {
            ticker,
            reason,
            live,
            historical,
            cutoff: c1,
        });
        live + historical
    }

    /// `trades_created_ts` of `GET /historical/cutoff`, `None` when unknown (then both trade
    /// endpoints are read: a server without the historical tier answers 404 there, read as
    /// empty).
    async fn cutoff(&self, shutdown: &CancellationToken) -> Option<TimestampUs> {
        let rest = &self.rest;
        let answer = rest
            .retry(self.policy, Some(CUTOFF_ATTEMPTS), shutdown, || {
                rest.historical_cutoff()
            })
            .await;
        match answer {
            Ok(c) => match c.trades_created() {
                Ok(ts) => Some(ts),
                Err(e) => {
                    emit(CutoffUnknown { error: &e });
                    None
                }
            },
            Err(RestError::Cancelled) => None,
            Err(e) => {
                emit(CutoffUnknown { error: &e });
                None
            }
        }
    }

    /// Every page of one endpoint for `span`, storing the trades not received yet. `Ok(new)`
    /// when read completely; `Err(new)` when abandoned or stopped (the caller stops too).
    async fn read_tier(
        &self,
        tier: TradesTier,
        ticker: Option<&str>,
        span: TradeSpan,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> Result<u64, u64> {
        let mut cursor: Option<String> = None;
        let mut recovered = 0_u64;
        loop {
            let query = TradesQuery {
                ticker: ticker.map(str::to_string),
                min_ts: Some(span.start.secs()),
                max_ts: Some(span.end.secs()),
                cursor: cursor.clone(),
                limit: Some(PAGE),
            };
            let rest = &self.rest;
            let page = rest
                .retry(self.policy, Some(ATTEMPTS), shutdown, || {
                    rest.tier_trades_page(tier, &query)
                })
                .await;
            let page = match page {
                Ok(p) => p,
                // A server without the historical tier: nothing is older than its live tier.
                Err(e) if tier == TradesTier::Historical && e.status() == Some(404) => {
                    return Ok(recovered);
                }
                Err(RestError::Cancelled) => return Err(recovered),
                Err(e) => {
                    emit(BackfillAbandoned {
                        error: &e,
                        tier,
                        ticker,
                        reason,
                    });
                    return Err(recovered);
                }
            };
            let now = self.clock.now();
            for t in &page.trades {
                match rest_trade_to_record(t, now) {
                    Ok(trade) => {
                        if self.recent.insert(&trade.trade_id) {
                            recovered += 1;
                            if self.records.send(Record::Trade(trade)).await.is_err() {
                                return Err(recovered);
                            }
                        }
                    }
                    Err(e) => emit(TradeNotConverted {
                        kind: e.kind(),
                        trade_id: &t.trade_id,
                    }),
                }
            }
            match page.cursor.filter(|c| !c.is_empty()) {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(recovered),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{GapNotice, GapReason, RecentTrades, Window, merge_windows, trade_windows};
    use kd_core::TimestampUs;

    fn notice(ticker: Option<&str>, channel: &str, start_s: i64, end_s: i64) -> GapNotice {
        GapNotice {
            sid: None,
            ticker: ticker.map(str::to_string),
            channel: channel.to_string(),
            reason: GapReason::SeqGap,
            start: TimestampUs::from_micros(start_s * 1_000_000),
            end: TimestampUs::from_micros(end_s * 1_000_000),
            expected: None,
            got: None,
        }
    }

    fn span(w: &Window) -> (Option<&str>, i64, i64) {
        (
            w.ticker.as_deref(),
            w.start.micros() / 1_000_000,
            w.end.micros() / 1_000_000,
        )
    }

    #[test]
    fn close_windows_merge_far_ones_do_not() {
        let ws = merge_windows(trade_windows(vec![
            notice(None, "trade", 10, 11),
            notice(None, "trade", 12, 13),
            notice(None, "trade", 30, 31),
            notice(Some("A"), "trade", 10, 10),
            notice(Some("A"), "trade", 50, 51),
            notice(Some("B"), "trade", 52, 53),
            notice(None, "orderbook_delta", 60, 61),
        ]));
        let spans: Vec<_> = ws.iter().map(span).collect();
        assert_eq!(
            spans,
            vec![
                (None, 10, 13),
                (None, 30, 31),
                (Some("A"), 50, 51),
                (Some("B"), 52, 53)
            ]
        );
    }

    #[test]
    fn recent_trades_deduplicate() {
        let r = RecentTrades::default();
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        r.remove("a");
        assert!(r.insert("a"), "a removed id is new again");
    }
}
