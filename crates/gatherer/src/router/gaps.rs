//! Sequence and gap tracking: the per-`sid` sequence check, the exchange times that widen gap
//! windows, the markets of a lost connection, and the recording of every gap (a gap row for
//! the writer, a notice for repair, a fresh-snapshot request where that is the repair).

use crate::events::emit;
use crate::events::router::GapRecorded;
use crate::sequence::{GapNotice, GapReason, SeqCheck, SequenceTracker};
use crate::writer::WriterControl;
use kd_core::{Gap, TimestampUs};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// Gap windows are widened by this much on both sides: exchange times are not in send order
/// across markets (Kalshi stamps whole milliseconds; each market's clock ticks on its own), so a
/// lost message can carry a time a little before the message sent ahead of it, or after the
/// one sent behind it.
const GAP_PAD_US: i64 = 2_000;

/// Markets per gap record until the connection says how many a subscription holds (the
/// default `markets_per_subscription`).
const DEFAULT_PER_RECORD: usize = 1_000;

/// How a gap is repaired (the `repair` column of a gap row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapRepair {
    /// The subscription restarts (its first snapshots are the repair).
    Resubscribe,
    /// The snapshot that raised the notice is the repair.
    Snapshot,
    /// `update_subscription get_snapshot` is asked for.
    GetSnapshot,
    /// Trades are backfilled over REST.
    RestTrades,
    /// The market list is reconciled over REST.
    RestReconcile,
    /// Nothing can repair it (tickers: the next one supersedes).
    None,
}

impl GapRepair {
    /// The stored text (unchanged from the strings stored before this type).
    pub const fn as_str(self) -> &'static str {
        match self {
            GapRepair::Resubscribe => "resubscribe",
            GapRepair::Snapshot => "snapshot",
            GapRepair::GetSnapshot => "get_snapshot",
            GapRepair::RestTrades => "rest_trades",
            GapRepair::RestReconcile => "rest_reconcile",
            GapRepair::None => "none",
        }
    }

    /// The repair of a gap on `channel` for `reason`.
    pub fn of(channel: &str, reason: GapReason) -> GapRepair {
        match (channel, reason) {
            ("orderbook_delta", GapReason::ChannelError | GapReason::Disconnected) => {
                GapRepair::Resubscribe
            }
            ("orderbook_delta", GapReason::SnapshotRefresh | GapReason::Resubscribed) => {
                GapRepair::Snapshot
            }
            ("orderbook_delta", _) => GapRepair::GetSnapshot,
            ("trade", _) => GapRepair::RestTrades,
            ("market_lifecycle_v2" | "multivariate_market_lifecycle", _) => {
                GapRepair::RestReconcile
            }
            _ => GapRepair::None,
        }
    }
}

/// Where gaps go.
#[derive(Debug, Clone)]
pub(super) struct GapSink {
    pub(super) gatherer: String,
    pub(super) conn: usize,
    pub(super) control: WriterControl,
    pub(super) gaps: mpsc::UnboundedSender<GapNotice>,
}

/// The gap state of one connection.
#[derive(Debug)]
pub(super) struct GapTracker {
    sink: GapSink,
    pub(super) sequences: SequenceTracker,
    counter: u64,
    /// Fresh snapshots the connection should ask for: (sid, market or all of the sid).
    snapshot_requests: Vec<(u64, Option<String>)>,
    /// Exchange time of the last data message per `sid` (to widen gap windows).
    last_made_at: HashMap<u64, TimestampUs>,
    /// Markets of the last lost connection, with when it was lost, until their first snapshot
    /// on the new one (the window between is unseen by this gatherer).
    lost_at: HashMap<String, TimestampUs>,
    /// Exchange time of the connection's last data message.
    last_made: Option<TimestampUs>,
    /// Markets per gap record when one event affects many (a subscription's worth).
    per_record: usize,
    /// Windows that the first snapshots after a loss or a refresh opened, gathered per
    /// subscription and reason into one record (see [`GapTracker::flush_blind`]).
    blind: HashMap<(u64, GapReason), Blind>,
}

/// Markets of one subscription whose snapshots stood in for an unseen window.
#[derive(Debug)]
struct Blind {
    start: TimestampUs,
    end: TimestampUs,
    tickers: Vec<String>,
}

impl GapTracker {
    pub(super) fn new(sink: GapSink) -> Self {
        GapTracker {
            sink,
            sequences: SequenceTracker::default(),
            counter: 0,
            snapshot_requests: Vec::new(),
            last_made_at: HashMap::new(),
            lost_at: HashMap::new(),
            last_made: None,
            per_record: DEFAULT_PER_RECORD,
            blind: HashMap::new(),
        }
    }

    /// Markets per gap record for events that affect many (the connection's markets per
    /// subscription).
    pub(super) fn set_per_record(&mut self, markets: usize) {
        self.per_record = markets.max(1);
    }

    /// Checks a sequenced message (`at`: receive time on the exchange's clock; `made_at`: the
    /// exchange time of a data message). Returns the verdict and whether a gap opened (it is
    /// recorded here).
    pub(super) fn check(
        &mut self,
        sid: u64,
        seq: Option<u64>,
        kind: &'static str,
        at: TimestampUs,
        made_at: Option<TimestampUs>,
    ) -> (SeqCheck, bool) {
        let (verdict, notice) = self.sequences.check(sid, seq, at, kind);
        let before = match made_at {
            Some(ts) => self.last_made_at.insert(sid, ts),
            None => self.last_made_at.get(&sid).copied(),
        };
        let opened = notice.is_some();
        if let Some(mut notice) = notice {
            // The window is in receive time; a connection running behind received the lost
            // messages' neighbours long after the exchange made them. Widen it to their
            // exchange times, so trade backfill and `verify` cover what was lost.
            if let Some(before) = before {
                notice.start = notice.start.min(before);
            }
            if let Some(after) = made_at {
                notice.end = notice.end.max(after);
            }
            self.record(notice);
        }
        (verdict, opened)
    }

    /// A data message made at `ts` arrived.
    pub(super) fn made(&mut self, ts: TimestampUs) {
        self.last_made = Some(ts);
    }

    /// A snapshot of `ticker` arrived on `sid` at `at` (exchange clock).
    pub(super) fn snapshot(&mut self, sid: u64, ticker: &str, at: TimestampUs) {
        let refresh = self.sequences.snapshot(sid, ticker);
        self.blind_until_snapshot(sid, ticker, refresh, at);
    }

    /// A delta of `ticker` arrived on `sid`: a gap when its snapshot was never seen.
    pub(super) fn delta(&mut self, sid: u64, ticker: &str, at: TimestampUs) {
        if let Some(notice) = self.sequences.delta(sid, ticker, at) {
            self.record(notice);
        }
    }

    /// A terminal channel error ended `sid` at `at`.
    pub(super) fn channel_error(&mut self, sid: u64, at: TimestampUs) {
        let channel = self.sequences.channel(sid).unwrap_or("unknown").to_string();
        self.record(GapNotice {
            sid: Some(sid),
            ticker: None,
            channel,
            reason: GapReason::ChannelError,
            start: at,
            end: at,
            expected: None,
            got: None,
        });
        self.sequences.ended(sid);
    }

    /// Records the window a snapshot may stand in for: the exchange folds into a snapshot the
    /// changes it has not sent yet, so a `get_snapshot` answer may carry changes made after the
    /// subscription's last message that this gatherer never receives as deltas, and the first
    /// snapshot after a lost connection carries those made since the loss. Without the gap,
    /// `verify` and users could not tell such a change (stored by no gatherer when the one
    /// that received it died) from a lost one.
    fn blind_until_snapshot(&mut self, sid: u64, ticker: &str, refresh: bool, at: TimestampUs) {
        let (start, reason) = match self.lost_at.remove(ticker) {
            Some(lost) => (lost, GapReason::Resubscribed),
            // Everything the connection sent before this frame was made earlier than what
            // the snapshot withholds, so the subscription's last message bounds the window.
            None if refresh => (
                self.last_made_at.get(&sid).copied().unwrap_or(at),
                GapReason::SnapshotRefresh,
            ),
            None => return,
        };
        let blind = self.blind.entry((sid, reason)).or_insert(Blind {
            start: start.min(at),
            end: at,
            tickers: Vec::new(),
        });
        blind.start = blind.start.min(start.min(at));
        blind.end = blind.end.max(at);
        blind.tickers.push(ticker.to_string());
        if blind.tickers.len() >= self.per_record
            && let Some(full) = self.blind.remove(&(sid, reason))
        {
            self.record_blind(sid, reason, full);
        }
    }

    /// Records the gathered windows of [`GapTracker::blind_until_snapshot`]: one record per
    /// subscription and reason, its window from the earliest start to the latest snapshot (a
    /// subscription's snapshots arrive together, so the window widens by moments only). Called
    /// on the connection's tick and when it ends.
    pub(super) fn flush_blind(&mut self) {
        let mut all: Vec<_> = self.blind.drain().collect();
        all.sort_by_key(|((sid, _), b)| (*sid, b.start));
        for ((sid, reason), blind) in all {
            self.record_blind(sid, reason, blind);
        }
    }

    fn record_blind(&mut self, sid: u64, reason: GapReason, blind: Blind) {
        let notice = GapNotice {
            sid: Some(sid),
            ticker: None,
            channel: "orderbook_delta".to_string(),
            reason,
            start: blind.start,
            end: blind.end,
            expected: None,
            got: None,
        };
        self.record_markets(notice, blind.tickers);
    }

    /// Records the markets of a lost connection as gaps (`disconnected`), one record per
    /// subscription's worth of markets (not one per market: a lost connection at a million
    /// markets wrote 250,000 rows), or one for the whole channel when `markets` is empty.
    /// `since` and `now` are on the exchange's clock.
    pub(super) fn disconnected(
        &mut self,
        markets: &[String],
        channel: &str,
        since: TimestampUs,
        now: TimestampUs,
    ) {
        // The socket delivers in the order the exchange sent, so what it lost was made after
        // its last message; that message may have been received after the lost ones were
        // made, so the receive time alone would start the window too late.
        let since = self.last_made.map_or(since, |made| since.min(made));
        if channel == "orderbook_delta" {
            // Only the latest loss matters: a market not resubscribed since is no longer here.
            self.lost_at.clear();
            self.lost_at
                .extend(markets.iter().map(|t| (t.clone(), now)));
        }
        let notice = GapNotice {
            sid: None,
            ticker: None,
            channel: channel.to_string(),
            reason: GapReason::Disconnected,
            start: since,
            end: now,
            expected: None,
            got: None,
        };
        if markets.is_empty() {
            return self.record(notice);
        }
        let mut sorted = markets.to_vec();
        sorted.sort_unstable();
        for chunk in sorted.chunks(self.per_record) {
            self.record_markets(notice.clone(), chunk.to_vec());
        }
    }

    /// Records a gap row and hands the notice to repair.
    pub(super) fn record(&mut self, notice: GapNotice) {
        self.record_markets(notice, Vec::new());
    }

    /// Records one gap row for `tickers` (several markets; empty: the notice's own `ticker`)
    /// and hands the notice to repair (which reads only trade windows, never these lists).
    fn record_markets(&mut self, mut notice: GapNotice, mut tickers: Vec<String>) {
        // Sorted: readers look a market up by binary search (`Gap::names`).
        tickers.sort_unstable();
        tickers.dedup();
        // One market keeps the one-market shape (`ticker`).
        if tickers.len() == 1 {
            notice.ticker = tickers.pop();
        }
        self.counter += 1;
        let repair = GapRepair::of(&notice.channel, notice.reason);
        if repair == GapRepair::GetSnapshot
            && let Some(sid) = notice.sid
        {
            self.snapshot_requests.push((sid, notice.ticker.clone()));
        }
        let gap = Gap {
            gatherer: self.sink.gatherer.clone(),
            gap_id: format!(
                "{}-c{}-{}",
                notice.end.micros(),
                self.sink.conn,
                self.counter
            ),
            ticker: if tickers.is_empty() {
                notice.ticker.clone()
            } else {
                None
            },
            tickers,
            channel: notice.channel.clone(),
            start: TimestampUs::from_micros(notice.start.micros().saturating_sub(GAP_PAD_US)),
            end: TimestampUs::from_micros(notice.end.micros().saturating_add(GAP_PAD_US)),
            reason: notice.reason.as_str().to_string(),
            repair: repair.as_str().to_string(),
        };
        emit(GapRecorded {
            conn: self.sink.conn,
            notice: &notice,
            repair,
        });
        self.sink.control.gap(gap);
        let _ = self.sink.gaps.send(notice);
    }

    /// Takes the snapshot requests raised by gaps since the last call.
    pub(super) fn take_snapshot_requests(&mut self) -> Vec<(u64, Option<String>)> {
        std::mem::take(&mut self.snapshot_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Control;

    /// Issue 21: one lost connection at a million markets wrote a gap record per market
    /// (~250,000 rows per connection of four). Now one per subscription (1,000 markets), for the
    /// loss and for the first snapshots after it, and every market is named exactly once.
    #[test]
    fn a_lost_connection_at_a_million_markets_writes_a_record_per_subscription() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (notices, _kept) = mpsc::unbounded_channel();
        let sink = GapSink {
            gatherer: "g".into(),
            conn: 0,
            control: WriterControl::for_test(tx),
            gaps: notices,
        };
        let mut tracker = GapTracker::new(sink);
        tracker.set_per_record(1_000);
        let markets: Vec<String> = (0..1_000_000).map(|i| format!("M-{i:07}")).collect();
        let t = TimestampUs::from_micros;
        tracker.disconnected(&markets, "orderbook_delta", t(1_000_000), t(2_000_000));
        // The new connection's first snapshots, over several subscriptions.
        for (i, m) in markets.iter().enumerate() {
            tracker.snapshot(1 + (i / 1_000) as u64, m, t(3_000_000 + i as i64));
        }
        tracker.flush_blind();
        let mut records: HashMap<String, Vec<Gap>> = HashMap::new();
        while let Ok(control) = rx.try_recv() {
            if let Control::Gap(g) = control {
                records.entry(g.reason.clone()).or_default().push(g);
            }
        }
        for reason in ["disconnected", "resubscribed"] {
            let gaps = records.remove(reason).unwrap_or_default();
            assert!(
                !gaps.is_empty() && gaps.len() <= 1_000,
                "{reason}: {} records",
                gaps.len()
            );
            let mut named: Vec<&str> = gaps
                .iter()
                .flat_map(|g| g.tickers.iter().map(String::as_str))
                .collect();
            named.sort_unstable();
            let expected: Vec<&str> = markets.iter().map(String::as_str).collect();
            assert!(named == expected, "{reason}: markets named {}", named.len());
            assert!(gaps.iter().all(|g| g.ticker.is_none() && !g.whole_feed()));
            assert!(
                gaps.iter()
                    .all(|g| g.tickers.first().is_some_and(|t| g.names(t)))
            );
        }
        assert!(records.is_empty(), "other records: {:?}", records.keys());
    }

    #[test]
    fn repairs_keep_their_stored_names() {
        use GapReason as R;
        assert_eq!(
            GapRepair::of("orderbook_delta", R::Disconnected).as_str(),
            "resubscribe"
        );
        assert_eq!(
            GapRepair::of("orderbook_delta", R::ChannelError).as_str(),
            "resubscribe"
        );
        assert_eq!(
            GapRepair::of("orderbook_delta", R::Resubscribed).as_str(),
            "snapshot"
        );
        assert_eq!(
            GapRepair::of("orderbook_delta", R::SnapshotRefresh).as_str(),
            "snapshot"
        );
        assert_eq!(
            GapRepair::of("orderbook_delta", R::SeqGap).as_str(),
            "get_snapshot"
        );
        assert_eq!(GapRepair::of("trade", R::SeqGap).as_str(), "rest_trades");
        assert_eq!(
            GapRepair::of("market_lifecycle_v2", R::Dropped).as_str(),
            "rest_reconcile"
        );
        assert_eq!(GapRepair::of("ticker", R::Dropped).as_str(), "none");
    }
}
