//! The router: parse each frame once, check its sequence, route its record to the writer
//! queue, hand command replies back to the connection and lifecycle changes to the registry.
//!
//! The socket reader never waits on disk: records go into a bounded queue. When the queue is
//! full the reader waits (backpressure) up to a bound; if the queue is still full the record
//! is dropped, counted in `router_dropped_total` and the window is recorded as a gap (then
//! repaired like any other gap). While dropping, the reader does not wait again until the
//! queue has room, so the connection keeps answering pings.

use crate::clock::Clock;
use crate::health::Health;
use crate::metrics as m;
use crate::sequence::{GapNotice, GapReason, SeqCheck, SequenceTracker};
use crate::writer::WriterControl;
use kd_core::records::OccurrenceCounter;
use kd_core::{Gap, OrderbookSnapshot, Record, TimestampUs};
use kd_kalshi::parse::{MarketLifecycleInfo, WsEvent, WsFrame as Frame, parse_ws_frame};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Distinct unknown-type labels kept before the rest are counted as `other` (the exchange
/// controls those names; metrics must not grow without bound).
const MAX_UNKNOWN_LABELS: usize = 32;

/// A lifecycle change for the registry, with when it arrived.
#[derive(Debug, Clone)]
pub struct LifecycleNote {
    pub info: MarketLifecycleInfo,
    pub received_at: TimestampUs,
}

/// What every connection's router shares.
#[derive(Debug, Clone)]
pub struct RouterShared {
    pub gatherer: String,
    pub records: mpsc::Sender<Record>,
    pub control: WriterControl,
    pub health: Arc<Health>,
    /// Lifecycle changes for the registry (low volume; unbounded so none is ever lost).
    pub lifecycle: mpsc::UnboundedSender<LifecycleNote>,
    /// Gap notices for repair (low volume; unbounded).
    pub gaps: mpsc::UnboundedSender<GapNotice>,
    /// Trade ids received (backfills skip them).
    pub recent: Arc<crate::repair::RecentTrades>,
    /// The gatherer's clock: `received_at` is local, windows and snapshot times are converted
    /// to the exchange's clock (see `crate::clock`).
    pub clock: Arc<Clock>,
    pub backpressure: Duration,
    /// Frames larger than this are refused (counted as `oversized`), the connection stays up.
    pub max_frame_bytes: usize,
}

/// The router of one connection (sequences and occurrences are per connection, because
/// `sid`s are, and each market's deltas come over exactly one connection).
#[derive(Debug)]
pub struct Router {
    shared: RouterShared,
    conn: usize,
    sequences: SequenceTracker,
    occurrences: OccurrenceCounter,
    /// Open drop windows while the writer queue is full: (ticker, channel) → (first, last).
    dropping: HashMap<DropKey, DropWindow>,
    /// Fresh snapshots the connection should ask for: (sid, market or all of the sid).
    snapshot_requests: Vec<(u64, Option<String>)>,
    unknown_labels: HashSet<String>,
    gap_counter: u64,
    /// WebSocket snapshots held until their market's next delta fixes their time (see
    /// [`Router::hold_snapshot`]), with when each arrived.
    held: HashMap<String, (OrderbookSnapshot, TimestampUs)>,
    /// When the connection last delivered a data message (for [`Router::release_held`]).
    last_data_at: Option<TimestampUs>,
    /// Exchange time of the last data message per `sid` (to widen gap windows).
    last_made_at: HashMap<u64, TimestampUs>,
    /// Markets of the last lost connection, with when it was lost, until their first snapshot
    /// on the new one (the window between is unseen by this gatherer).
    lost_at: HashMap<String, TimestampUs>,
    /// Exchange time of the connection's last data message.
    last_made: Option<TimestampUs>,
}

/// How long a WebSocket snapshot waits for its market's next delta, on a connection that has
/// delivered nothing since, before it is stored with its receive time.
const SNAPSHOT_HOLD: Duration = Duration::from_secs(2);
/// A message stamped this long after a held snapshot arrived proves the stream has passed that
/// instant (exchange clocks of different markets differ by far less).
const PASSED_MARGIN_US: i64 = 100_000;

/// Gap windows are widened by this much on both sides: exchange times are not in send order
/// across markets (Kalshi stamps whole milliseconds; each market's clock ticks on its own), so a
/// lost message can carry a time a little before the message sent ahead of it, or after the
/// one sent behind it.
const GAP_PAD_US: i64 = 2_000;

/// A drop window's key: market (when known) and channel.
type DropKey = (Option<String>, &'static str);
/// First and last drop, and the subscription of the dropped records (for a fresh snapshot).
type DropWindow = (TimestampUs, TimestampUs, Option<u64>);

/// The channel a record came from (for gaps).
fn channel_of(record: &Record) -> &'static str {
    match record {
        Record::Trade(_) => "trade",
        Record::Delta(_) | Record::Snapshot(_) => "orderbook_delta",
        Record::Ticker(_) => "ticker",
        Record::Lifecycle(_) => "market_lifecycle_v2",
        Record::Gap(_) => "gap",
    }
}

fn subject_of(record: &Record) -> Option<String> {
    match record {
        Record::Trade(t) => Some(t.ticker.clone()),
        Record::Delta(d) => Some(d.ticker.clone()),
        Record::Snapshot(s) => Some(s.ticker.clone()),
        Record::Ticker(t) => Some(t.ticker.clone()),
        Record::Lifecycle(l) => Some(l.subject.clone()),
        Record::Gap(g) => g.ticker.clone(),
    }
}

impl Router {
    pub fn new(shared: RouterShared, conn: usize) -> Self {
        Router {
            shared,
            conn,
            sequences: SequenceTracker::default(),
            occurrences: OccurrenceCounter::default(),
            dropping: HashMap::new(),
            snapshot_requests: Vec::new(),
            unknown_labels: HashSet::new(),
            gap_counter: 0,
            held: HashMap::new(),
            last_data_at: None,
            last_made_at: HashMap::new(),
            lost_at: HashMap::new(),
            last_made: None,
        }
    }

    /// The gatherer's clock (the connection reads the time of day from it).
    pub fn clock(&self) -> &Arc<Clock> {
        &self.shared.clock
    }

    /// The connection's sequence state (the connection manager notes subscriptions in it).
    pub fn sequences(&mut self) -> &mut SequenceTracker {
        &mut self.sequences
    }

    /// Routes one frame. Returns the command replies (`subscribed`, `ok`, `error`, …) for the
    /// connection manager; data goes to the writer. Never fails: bad input is counted.
    ///
    /// `received_at` is the local clock. The records keep it as their `received_at`; what the
    /// parser derives from it as an exchange time (a snapshot's time, an undated lifecycle
    /// message's minute) and every gap window use it converted to the exchange's clock.
    pub async fn route(&mut self, frame: Frame<'_>, received_at: TimestampUs) -> Option<WsEvent> {
        if frame.len() > self.shared.max_frame_bytes {
            metrics::counter!(m::ROUTER_PARSE_ERRORS_TOTAL, "kind" => "oversized").increment(1);
            tracing::debug!(
                bytes = frame.len(),
                conn = self.conn,
                "oversized frame refused"
            );
            return None;
        }
        let clock = self.shared.clock.clone();
        let parsed_at = clock.to_exchange(received_at);
        let event = match parse_ws_frame(frame, parsed_at) {
            Ok(mut e) => {
                if parsed_at != received_at {
                    set_received_at(&mut e, received_at);
                }
                e
            }
            Err(e) => {
                metrics::counter!(m::ROUTER_PARSE_ERRORS_TOTAL, "kind" => e.kind()).increment(1);
                tracing::debug!(error = %e, conn = self.conn, "frame not parsed");
                return None;
            }
        };
        metrics::counter!(m::ROUTER_MESSAGES_TOTAL, "type" => event.kind_name()).increment(1);
        if let Some(ts) = precise_ts(&event) {
            clock.observe(received_at, ts);
        }
        // From here on, the receive time on the exchange's clock: gap windows are compared
        // with exchange times (by repair and `verify`).
        let at = clock.to_exchange(received_at);
        // Sequence check for everything that consumes a number.
        let made_at = data_ts(&event);
        if let (Some(sid), Some(_)) = (event.sid(), event.seq()) {
            let (verdict, notice) = self
                .sequences
                .check(sid, event.seq(), at, event.kind_name());
            let before = match made_at {
                Some(ts) => self.last_made_at.insert(sid, ts),
                None => self.last_made_at.get(&sid).copied(),
            };
            if let Some(mut notice) = notice {
                // The window is in receive time; a connection running behind received the
                // lost messages' neighbours long after the exchange made them. Widen it to
                // their exchange times, so trade backfill and `verify` cover what was lost.
                if let Some(before) = before {
                    notice.start = notice.start.min(before);
                }
                if let Some(after) = made_at {
                    notice.end = notice.end.max(after);
                }
                self.gap(notice);
                self.release_across_gap(sid).await;
            }
            // A repeated or reordered number is counted, never a reason to drop data.
            if verdict == SeqCheck::Stale && is_data(&event) {
                metrics::counter!(m::SEQUENCE_STALE_TOTAL).increment(1);
            }
        }
        if let Some(ts) = made_at {
            self.last_data_at = Some(received_at);
            self.last_made = Some(ts);
            self.release_passed(ts).await;
        }
        match event {
            WsEvent::Snapshot { sid, snapshot, .. } => {
                let refresh = self.sequences.snapshot(sid, &snapshot.ticker);
                self.blind_until_snapshot(sid, &snapshot.ticker, refresh, at);
                self.hold_snapshot(snapshot, received_at).await;
                None
            }
            WsEvent::Delta { sid, mut delta, .. } => {
                if let Some((mut snapshot, _)) = self.held.remove(&delta.ticker) {
                    // The first delta the snapshot does not contain: the book it shows held
                    // until just before this change.
                    snapshot.exchange_ts =
                        TimestampUs::from_micros(delta.exchange_ts.micros().saturating_sub(1));
                    self.data(Record::Snapshot(snapshot), received_at).await;
                }
                if let Some(notice) = self.sequences.delta(sid, &delta.ticker, at) {
                    self.gap(notice);
                }
                delta.occurrence = self.occurrences.next(
                    &delta.ticker,
                    delta.exchange_ts,
                    delta.side,
                    delta.price,
                    delta.delta,
                );
                self.data(Record::Delta(delta), received_at).await;
                None
            }
            WsEvent::Trade { trade, .. } => {
                // Known already: a gap's REST backfill read it first (the socket was behind),
                // or the exchange sent it again after a resubscribe. The stored copy stands.
                if self.shared.recent.insert(&trade.trade_id) {
                    self.data(Record::Trade(trade), received_at).await;
                } else {
                    metrics::counter!(m::ROUTER_TRADES_ALREADY_STORED_TOTAL).increment(1);
                }
                None
            }
            WsEvent::Ticker { ticker, .. } => {
                self.data(Record::Ticker(ticker), received_at).await;
                None
            }
            WsEvent::MarketLifecycle {
                lifecycle, info, ..
            } => {
                self.data(Record::Lifecycle(lifecycle), received_at).await;
                if self
                    .shared
                    .lifecycle
                    .send(LifecycleNote { info, received_at })
                    .is_err()
                {
                    tracing::debug!("registry gone; lifecycle change stored only");
                }
                None
            }
            WsEvent::EventLifecycle { lifecycle, .. } => {
                self.data(Record::Lifecycle(lifecycle), received_at).await;
                None
            }
            WsEvent::Subscribed {
                sid, ref channel, ..
            } => {
                self.sequences.subscribed(sid, channel, at);
                Some(event)
            }
            WsEvent::Unsubscribed { sid: Some(sid), .. } => {
                self.sequences.ended(sid);
                Some(event)
            }
            WsEvent::Error {
                sid: Some(sid),
                code,
                ..
            } if code == 10 || code == 25 => {
                let channel = self.sequences.channel(sid).unwrap_or("unknown").to_string();
                self.gap(GapNotice {
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
                Some(event)
            }
            WsEvent::Unknown { ref type_name, .. } => {
                let label = if self.unknown_labels.contains(type_name) {
                    type_name.clone()
                } else if self.unknown_labels.len() < MAX_UNKNOWN_LABELS
                    && type_name.len() <= 40
                    && type_name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    self.unknown_labels.insert(type_name.clone());
                    type_name.clone()
                } else {
                    "other".to_string()
                };
                metrics::counter!(m::ROUTER_UNKNOWN_MESSAGES_TOTAL, "type" => label).increment(1);
                None
            }
            other => Some(other),
        }
    }

    /// Queues a data record for the writer (backpressure, then counted drop).
    async fn data(&mut self, record: Record, received_at: TimestampUs) {
        self.shared.health.note_message(received_at);
        if !self.dropping.is_empty() {
            match self.shared.records.try_send(record) {
                Ok(()) => self.close_drop_windows(received_at),
                Err(mpsc::error::TrySendError::Full(r))
                | Err(mpsc::error::TrySendError::Closed(r)) => self.drop_record(&r, received_at),
            }
            return;
        }
        let record = match self.shared.records.try_send(record) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(r)) => r,
            Err(mpsc::error::TrySendError::Closed(r)) => {
                self.drop_record(&r, received_at);
                return;
            }
        };
        metrics::counter!(m::ROUTER_BACKPRESSURE_TOTAL).increment(1);
        let sender = self.shared.records.clone();
        match tokio::time::timeout(self.shared.backpressure, sender.reserve()).await {
            Ok(Ok(permit)) => permit.send(record),
            Ok(Err(_)) | Err(_) => self.drop_record(&record, received_at),
        }
    }

    /// `received_at` is local; the drop window is kept on the exchange's clock.
    fn drop_record(&mut self, record: &Record, received_at: TimestampUs) {
        let at = self.shared.clock.to_exchange(received_at);
        metrics::counter!(m::ROUTER_DROPPED_TOTAL, "table" => record.table().name()).increment(1);
        if let Record::Trade(t) = record {
            // Not stored after all: the backfill of this drop window must not skip it as known.
            self.shared.recent.remove(&t.trade_id);
        }
        let key = (subject_of(record), channel_of(record));
        let sid = match record {
            Record::Delta(d) => d.pos.sid,
            Record::Snapshot(s) => s.pos.sid,
            _ => None,
        };
        let window = self.dropping.entry(key).or_insert((at, at, sid));
        window.1 = at;
    }

    /// The queue has room again (at local `received_at`): record each drop window as a gap.
    fn close_drop_windows(&mut self, received_at: TimestampUs) {
        let at = self.shared.clock.to_exchange(received_at);
        let windows: Vec<_> = self.dropping.drain().collect();
        tracing::warn!(
            markets = windows.len(),
            "writer queue was full; dropped records recorded as gaps"
        );
        for ((ticker, channel), (start, end, sid)) in windows {
            self.gap(GapNotice {
                sid,
                ticker,
                channel: channel.to_string(),
                reason: GapReason::Dropped,
                start,
                end: end.max(at),
                expected: None,
                got: None,
            });
        }
    }

    /// Records a gap row and hands the notice to repair.
    fn gap(&mut self, notice: GapNotice) {
        metrics::counter!(m::SEQUENCE_GAPS_TOTAL, "reason" => notice.reason.as_str()).increment(1);
        self.gap_counter += 1;
        let repair = match (notice.channel.as_str(), notice.reason) {
            ("orderbook_delta", GapReason::ChannelError | GapReason::Disconnected) => "resubscribe",
            // The snapshot that raised the notice is the repair.
            ("orderbook_delta", GapReason::SnapshotRefresh | GapReason::Resubscribed) => "snapshot",
            ("orderbook_delta", _) => {
                if let Some(sid) = notice.sid {
                    self.snapshot_requests.push((sid, notice.ticker.clone()));
                }
                "get_snapshot"
            }
            ("trade", _) => "rest_trades",
            ("market_lifecycle_v2", _) => "rest_reconcile",
            _ => "none",
        };
        let gap = Gap {
            gatherer: self.shared.gatherer.clone(),
            gap_id: format!(
                "{}-c{}-{}",
                notice.end.micros(),
                self.conn,
                self.gap_counter
            ),
            ticker: notice.ticker.clone(),
            channel: notice.channel.clone(),
            start: TimestampUs::from_micros(notice.start.micros().saturating_sub(GAP_PAD_US)),
            end: TimestampUs::from_micros(notice.end.micros().saturating_add(GAP_PAD_US)),
            reason: notice.reason.as_str().to_string(),
            repair: repair.to_string(),
        };
        tracing::info!(
            conn = self.conn,
            sid = ?notice.sid,
            ticker = ?notice.ticker,
            channel = %notice.channel,
            reason = notice.reason.as_str(),
            expected = ?notice.expected,
            got = ?notice.got,
            "gap"
        );
        self.shared.control.gap(gap);
        let _ = self.shared.gaps.send(notice);
    }

    /// Records the window a snapshot may stand in for: the exchange folds into a snapshot the
    /// changes it has not sent yet, so a `get_snapshot` answer may carry changes made after the
    /// subscription's last message that this gatherer never receives as deltas, and the first
    /// snapshot after a lost connection carries those made since the loss. Without the gap,
    /// `verify` and users could not tell such a change (stored by no gatherer when the one
    /// that received it died) from a lost one.
    fn blind_until_snapshot(
        &mut self,
        sid: u64,
        ticker: &str,
        refresh: bool,
        received_at: TimestampUs,
    ) {
        let (start, reason) = match self.lost_at.remove(ticker) {
            Some(lost) => (lost, GapReason::Resubscribed),
            // Everything the connection sent before this frame was made earlier than what
            // the snapshot withholds, so the subscription's last message bounds the window.
            None if refresh => (
                self.last_made_at.get(&sid).copied().unwrap_or(received_at),
                GapReason::SnapshotRefresh,
            ),
            None => return,
        };
        self.gap(GapNotice {
            sid: Some(sid),
            ticker: Some(ticker.to_string()),
            channel: "orderbook_delta".to_string(),
            reason,
            start: start.min(received_at),
            end: received_at,
            expected: None,
            got: None,
        });
    }

    /// Takes the snapshot requests raised by gaps since the last call.
    pub fn take_snapshot_requests(&mut self) -> Vec<(u64, Option<String>)> {
        std::mem::take(&mut self.snapshot_requests)
    }

    /// Records the markets of a lost connection as gaps (`disconnected`), one per market, or
    /// one for the whole channel when `markets` is empty (all-market channels). `since` and
    /// `now` are local times.
    pub fn disconnected(
        &mut self,
        markets: &[String],
        channel: &str,
        since: TimestampUs,
        now: TimestampUs,
    ) {
        let since = self.shared.clock.to_exchange(since);
        let now = self.shared.clock.to_exchange(now);
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
        if markets.is_empty() {
            self.gap(GapNotice {
                sid: None,
                ticker: None,
                channel: channel.to_string(),
                reason: GapReason::Disconnected,
                start: since,
                end: now,
                expected: None,
                got: None,
            });
        }
        for ticker in markets {
            self.occurrences.forget(ticker);
            self.gap(GapNotice {
                sid: None,
                ticker: Some(ticker.clone()),
                channel: channel.to_string(),
                reason: GapReason::Disconnected,
                start: since,
                end: now,
                expected: None,
                got: None,
            });
        }
    }

    /// Flushes open drop windows (before the connection task ends).
    /// Holds a WebSocket snapshot until its time is known.
    ///
    /// A WebSocket snapshot carries no exchange time, and stamping it with the receive time is
    /// wrong: a delta the exchange stamped *before* that instant can still arrive *after* the
    /// snapshot (it was in flight), and a reader rebuilding "snapshot + deltas after it" would
    /// skip it. A market's deltas arrive in time order, so the snapshot's book held from its
    /// last included delta until just before the first delta that follows it on this
    /// subscription: that instant minus 1 µs is its time. A snapshot whose market stays quiet
    /// for [`SNAPSHOT_HOLD`] keeps its receive time.
    async fn hold_snapshot(&mut self, snapshot: OrderbookSnapshot, received_at: TimestampUs) {
        // A snapshot already held shows the same book (no delta and no gap came between them
        // on this subscription); the newer one replaces it.
        self.held
            .insert(snapshot.ticker.clone(), (snapshot, received_at));
        self.release_held(received_at).await;
    }

    /// A gap opened on `sid`: the delta that would have timed a held snapshot may be among the
    /// lost messages, and no other instant is known to lie inside the window where the
    /// snapshot's book held. Markets are not published in one time order (each has its own
    /// clock), so a delta of another market does not bound it, and the receive time can fall
    /// after a change the snapshot does not contain. A snapshot with a wrong time corrupts
    /// every book rebuilt after it, while a missing one costs nothing: the same gap asks the
    /// exchange for a fresh snapshot of the subscription's markets. So these are not stored,
    /// and counted in `router_snapshots_untimed_total`.
    async fn release_across_gap(&mut self, sid: u64) {
        let before = self.held.len();
        self.held.retain(|_, (s, _)| s.pos.sid != Some(sid));
        let untimed = (before - self.held.len()) as u64;
        if untimed > 0 {
            metrics::counter!(m::ROUTER_SNAPSHOTS_UNTIMED_TOTAL, "why" => "gap").increment(untimed);
        }
    }

    /// Stores, with their receive time, the held snapshots that a message stamped `ts` proves
    /// were not followed by a change of their market before they arrived: messages arrive in
    /// the order the exchange sent them, so a change made before a snapshot's arrival would
    /// have come ahead of a message made [`PASSED_MARGIN_US`] after it. (Waiting a fixed time
    /// instead is wrong when the connection runs seconds behind: found by the 60 s, 2 %-loss
    /// test.)
    async fn release_passed(&mut self, ts: TimestampUs) {
        if self.held.is_empty() {
            return;
        }
        let clock = self.shared.clock.clone();
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (_, at))| {
                clock.to_exchange(*at).micros() + PASSED_MARGIN_US <= ts.micros()
            })
            .map(|(ticker, _)| ticker.clone())
            .collect();
        for ticker in due {
            self.release(&ticker).await;
        }
    }

    /// Stores a held snapshot with its receive time on the exchange's clock: converted with
    /// the minimum-latency estimate it lies at or after the instant the exchange sent the book
    /// (see `crate::clock`), so it never precedes a change the book contains.
    async fn release(&mut self, ticker: &str) {
        if let Some((mut snapshot, at)) = self.held.remove(ticker) {
            snapshot.exchange_ts = self.shared.clock.to_exchange(at);
            self.data(Record::Snapshot(snapshot), at).await;
        }
    }

    /// Stores, with their receive time, held snapshots older than [`SNAPSHOT_HOLD`] when the
    /// connection has delivered no data since they arrived or for [`SNAPSHOT_HOLD`]: an idle
    /// connection has nothing in flight behind them. Called on the connection's tick with the
    /// local time. Before the clock's offset is known they wait (their time could not be put
    /// on the exchange's clock).
    pub async fn release_held(&mut self, now: TimestampUs) {
        if self.held.is_empty() || self.shared.clock.offset_us().is_none() {
            return;
        }
        let hold = SNAPSHOT_HOLD.as_micros() as i64;
        let last_data = self.last_data_at;
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (_, at))| {
                now.micros() - at.micros() >= hold
                    && last_data.is_none_or(|d| d <= *at || now.micros() - d.micros() >= hold)
            })
            .map(|(ticker, _)| ticker.clone())
            .collect();
        for ticker in due {
            self.release(&ticker).await;
        }
    }

    /// The connection ended: a change a held snapshot lacks may have been lost with it, so the
    /// snapshot cannot be timed (see [`Router::release_across_gap`]); the next connection
    /// subscribes again and receives fresh ones.
    pub fn discard_held(&mut self) {
        let untimed = self.held.len() as u64;
        self.held.clear();
        if untimed > 0 {
            metrics::counter!(m::ROUTER_SNAPSHOTS_UNTIMED_TOTAL, "why" => "closed")
                .increment(untimed);
        }
    }

    pub fn finish(&mut self) {
        if !self.dropping.is_empty() {
            let now = self.shared.clock.now();
            self.close_drop_windows(now);
        }
    }
}

/// The instant the exchange made a data message: deltas, trades and tickers. Not snapshots
/// (no time) nor lifecycle messages, whose time is the event's own (a market's `created`
/// carries its future open time).
fn data_ts(event: &WsEvent) -> Option<TimestampUs> {
    match event {
        WsEvent::Delta { delta, .. } => Some(delta.exchange_ts),
        WsEvent::Trade { trade, .. } => Some(trade.exchange_ts),
        WsEvent::Ticker { ticker, .. } => Some(ticker.exchange_ts),
        _ => None,
    }
}

/// The exchange time of a message stamped finely enough to measure the clock offset with:
/// deltas (µs) and trades (ms). Not tickers, whose time may be whole seconds (see
/// [`Clock::observe`]).
fn precise_ts(event: &WsEvent) -> Option<TimestampUs> {
    match event {
        WsEvent::Delta { delta, .. } => Some(delta.exchange_ts),
        WsEvent::Trade { trade, .. } => Some(trade.exchange_ts),
        _ => None,
    }
}

/// Puts the local receive time back on a record parsed with the exchange-clock one.
fn set_received_at(event: &mut WsEvent, at: TimestampUs) {
    match event {
        WsEvent::Snapshot { snapshot, .. } => snapshot.received_at = at,
        WsEvent::Delta { delta, .. } => delta.received_at = at,
        WsEvent::Trade { trade, .. } => trade.received_at = at,
        WsEvent::Ticker { ticker, .. } => ticker.received_at = at,
        WsEvent::MarketLifecycle { lifecycle, .. } | WsEvent::EventLifecycle { lifecycle, .. } => {
            lifecycle.received_at = at
        }
        _ => {}
    }
}

fn is_data(event: &WsEvent) -> bool {
    matches!(
        event,
        WsEvent::Snapshot { .. }
            | WsEvent::Delta { .. }
            | WsEvent::Trade { .. }
            | WsEvent::Ticker { .. }
            | WsEvent::MarketLifecycle { .. }
            | WsEvent::EventLifecycle { .. }
    )
}
