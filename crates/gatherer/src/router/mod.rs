//! The router: parse each frame once, check its sequence, route its record to the writer
//! queue, hand command replies back to the connection and lifecycle changes to the registry.
//!
//! The socket reader never waits on disk: records go into a bounded queue. When the queue is
//! full the reader waits (backpressure) up to a bound; if the queue is still full the record
//! is dropped, counted in `router_dropped_total` and the window is recorded as a gap (then
//! repaired like any other gap). While dropping, the reader does not wait again until the
//! queue has room, so the connection keeps answering pings.
//!
//! Stages, each owning its state:
//! - [`gaps`]: sequence and gap tracking, gap rows and notices, fresh-snapshot requests.
//! - `drops`: drop windows while the writer queue is full.
//! - `hold`: WebSocket snapshots held until their time is known.
//! - `unknown`: capping the labels of unknown message types.
//! - [`scale`]: the NO side's price scale per subscription (read, checked, held until proven).
//! - this file: the order of the stages for one frame, and the writer queue.

mod drops;
pub mod gaps;
mod hold;
pub mod scale;
mod unknown;

use crate::clock::Clock;
use crate::events::emit;
use crate::events::router::{DropWindowsClosed, FrameNotParsed, FrameOversized};
use crate::health::Health;
use crate::metrics as m;
use crate::sequence::{GapNotice, SeqCheck, SequenceTracker};
use crate::writer::WriterControl;
use drops::DropWindows;
use gaps::{GapSink, GapTracker};
use hold::SnapshotHold;
use kd_core::records::OccurrenceCounter;
use kd_core::{Record, TimestampUs};
use kd_kalshi::parse::{
    MarketLifecycleInfo, ReceiveTimes, WsEvent, WsFrame as Frame, parse_ws_frame_scaled,
};
use kd_kalshi::ws::{Channel, ErrorCode};
use scale::{Admit, ScaleCheck};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use unknown::UnknownLabels;

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
    /// The NO side's price-scale handling (`no_price_scale`, see [`scale`]).
    pub no_price_scale: crate::config::NoPriceScale,
}

/// The router of one connection (sequences and occurrences are per connection, because
/// `sid`s are, and each market's deltas come over exactly one connection).
#[derive(Debug)]
pub struct Router {
    shared: RouterShared,
    conn: usize,
    gaps: GapTracker,
    occurrences: OccurrenceCounter,
    drops: DropWindows,
    hold: SnapshotHold,
    unknown: UnknownLabels,
    scale: ScaleCheck,
}

impl Router {
    pub fn new(shared: RouterShared, conn: usize) -> Self {
        let sink = GapSink {
            gatherer: shared.gatherer.clone(),
            conn,
            control: shared.control.clone(),
            gaps: shared.gaps.clone(),
        };
        let scale = ScaleCheck::new(shared.no_price_scale, conn);
        Router {
            shared,
            conn,
            scale,
            gaps: GapTracker::new(sink),
            occurrences: OccurrenceCounter::default(),
            drops: DropWindows::default(),
            hold: SnapshotHold::default(),
            unknown: UnknownLabels::default(),
        }
    }

    /// The `use_yes_price` every `orderbook_delta` subscribe of this connection sends.
    pub fn use_yes_price(&self) -> Option<bool> {
        scale::use_yes_price(self.shared.no_price_scale)
    }

    /// The gatherer's clock (the connection reads the time of day from it).
    pub fn clock(&self) -> &Arc<Clock> {
        &self.shared.clock
    }

    /// The connection's sequence state (the connection manager notes subscriptions in it).
    pub fn sequences(&mut self) -> &mut SequenceTracker {
        &mut self.gaps.sequences
    }

    /// Routes one frame. Returns the command replies (`subscribed`, `ok`, `error`, …) for the
    /// connection manager; data goes to the writer. Never fails: bad input is counted.
    ///
    /// `received_at` is the local clock. The records keep it as their `received_at`; what the
    /// parser derives as an exchange time (a snapshot's time, an undated lifecycle message's
    /// minute) and every gap window use it converted to the exchange's clock.
    pub async fn route(&mut self, frame: Frame<'_>, received_at: TimestampUs) -> Option<WsEvent> {
        if frame.len() > self.shared.max_frame_bytes {
            emit(FrameOversized {
                conn: self.conn,
                bytes: frame.len(),
            });
            return None;
        }
        let clock = self.shared.clock.clone();
        let times = ReceiveTimes {
            received_at,
            exchange_now: clock.to_exchange(received_at),
        };
        let scale = &self.scale;
        let event = match parse_ws_frame_scaled(frame, times, &|sid| scale.of(sid)) {
            Ok(e) => e,
            Err(e) => {
                emit(FrameNotParsed {
                    conn: self.conn,
                    kind: e.kind(),
                    error: &e,
                });
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
        let made_at = data_ts(&event);
        if let (Some(sid), Some(_)) = (event.sid(), event.seq()) {
            let (verdict, opened) =
                self.gaps
                    .check(sid, event.seq(), event.kind_name(), at, made_at);
            if opened {
                self.hold.across_gap(sid);
            }
            // A repeated or reordered number is counted, never a reason to drop data.
            if verdict == SeqCheck::Stale && is_data(&event) {
                metrics::counter!(m::SEQUENCE_STALE_TOTAL).increment(1);
            }
        }
        if let Some(ts) = made_at {
            self.hold.note_data(received_at);
            self.gaps.made(ts);
            for (snapshot, at) in self.hold.passed(ts, &clock) {
                self.data(Record::Snapshot(snapshot), at).await;
            }
        }
        self.dispatch(event, received_at, at).await
    }

    /// Routes a parsed event (`at`: its receive time on the exchange's clock) once its NO-side
    /// scale is proven (see [`scale`]).
    async fn dispatch(
        &mut self,
        event: WsEvent,
        received_at: TimestampUs,
        at: TimestampUs,
    ) -> Option<WsEvent> {
        let admitted = self.scale.admit(event, received_at, at);
        for notice in self.scale.take_gaps() {
            self.gaps.record(notice);
        }
        match admitted {
            Admit::Pass(event) => self.dispatch_now(event, received_at, at).await,
            Admit::Held => None,
            Admit::Release(held) => {
                for h in held {
                    // Order-book data only: no command reply to hand back.
                    let _ = self.dispatch_now(h.event, h.received_at, h.at).await;
                }
                None
            }
        }
    }

    async fn dispatch_now(
        &mut self,
        event: WsEvent,
        received_at: TimestampUs,
        at: TimestampUs,
    ) -> Option<WsEvent> {
        match event {
            WsEvent::Snapshot { sid, snapshot, .. } => {
                self.gaps.snapshot(sid, &snapshot.ticker, at);
                self.hold.hold(snapshot, received_at);
                self.release_idle(received_at).await;
                None
            }
            WsEvent::Delta { sid, mut delta, .. } => {
                if let Some(snapshot) = self.hold.timed_by_delta(&delta.ticker, delta.exchange_ts) {
                    self.data(Record::Snapshot(snapshot), received_at).await;
                }
                self.gaps.delta(sid, &delta.ticker, at);
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
                if self.shared.recent.received_live(&trade.trade_id) {
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
                self.gaps.sequences.subscribed(sid, channel, at);
                self.scale.subscribed(sid, channel);
                Some(event)
            }
            WsEvent::Unsubscribed { sid: Some(sid), .. } => {
                self.gaps.sequences.ended(sid);
                self.scale.ended(sid, at);
                for notice in self.scale.take_gaps() {
                    self.gaps.record(notice);
                }
                Some(event)
            }
            WsEvent::Error {
                sid: Some(sid),
                code,
                ..
            } if ErrorCode::from_code(code).ends_subscription() => {
                self.gaps.channel_error(sid, at);
                self.scale.ended(sid, at);
                for notice in self.scale.take_gaps() {
                    self.gaps.record(notice);
                }
                Some(event)
            }
            WsEvent::Unknown { ref type_name, .. } => {
                let label = self.unknown.label(type_name);
                metrics::counter!(m::ROUTER_UNKNOWN_MESSAGES_TOTAL, "type" => label).increment(1);
                None
            }
            other => Some(other),
        }
    }

    /// Queues a data record for the writer (backpressure, then counted drop).
    async fn data(&mut self, record: Record, received_at: TimestampUs) {
        self.shared.health.note_message(received_at);
        if self.drops.is_open() {
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
            self.shared.recent.not_stored(&t.trade_id);
        }
        self.drops.dropped(record, at);
    }

    /// The queue has room again (at local `received_at`): record each drop window as a gap.
    fn close_drop_windows(&mut self, received_at: TimestampUs) {
        let at = self.shared.clock.to_exchange(received_at);
        let windows = self.drops.close(at);
        emit(DropWindowsClosed {
            markets: windows.len(),
        });
        for notice in windows {
            self.gaps.record(notice);
        }
    }

    /// Takes the snapshot requests raised by gaps since the last call.
    pub fn take_snapshot_requests(&mut self) -> Vec<(u64, Option<String>)> {
        self.gaps.take_snapshot_requests()
    }

    /// Records the markets of a lost connection as gaps (`disconnected`), a subscription's worth
    /// of markets per record, or one for the whole channel when `markets` is empty (all-market
    /// channels). `since` and `now` are local times.
    pub fn disconnected(
        &mut self,
        markets: &[String],
        channel: &str,
        since: TimestampUs,
        now: TimestampUs,
    ) {
        let since = self.shared.clock.to_exchange(since);
        let now = self.shared.clock.to_exchange(now);
        for ticker in markets {
            self.occurrences.forget(ticker);
        }
        self.gaps.disconnected(markets, channel, since, now);
    }

    /// A connection was lost: whatever it carried between its last message (`since`, local) and
    /// the next snapshot is unknown — one gap record per `markets_per_record` markets (a
    /// subscription's worth), and one per global channel.
    pub fn connection_lost(
        &mut self,
        markets: &[String],
        markets_per_record: usize,
        global_channels: &[Channel],
        since: TimestampUs,
        now: TimestampUs,
    ) {
        self.gaps.set_per_record(markets_per_record);
        if !markets.is_empty() {
            let delta = Channel::OrderbookDelta;
            self.disconnected(markets, delta.as_str(), since, now);
        }
        for channel in global_channels {
            self.disconnected(&[], channel.as_str(), since, now);
        }
    }

    /// Stores held snapshots whose market stayed quiet (see `hold`), and releases order-book
    /// data whose scale no snapshot proved in time (see [`scale`]). Called on the connection's
    /// tick with the local time.
    pub async fn release_held(&mut self, now: TimestampUs) {
        for h in self.scale.expired(now) {
            let _ = self.dispatch_now(h.event, h.received_at, h.at).await;
        }
        self.release_idle(now).await;
        self.gaps.flush_blind();
    }

    async fn release_idle(&mut self, now: TimestampUs) {
        let clock = self.shared.clock.clone();
        for (snapshot, at) in self.hold.idle(now, &clock) {
            self.data(Record::Snapshot(snapshot), at).await;
        }
    }

    /// The connection ended: held snapshots cannot be timed (see `hold`), data of unproven
    /// scale is not stored (recorded as gaps, see [`scale`]).
    pub fn discard_held(&mut self) {
        self.hold.discard();
        self.gaps.flush_blind();
        let at = self.shared.clock.to_exchange(self.shared.clock.now());
        self.scale.reset(at);
        for notice in self.scale.take_gaps() {
            self.gaps.record(notice);
        }
    }

    /// Flushes open drop windows (before the connection task ends).
    pub fn finish(&mut self) {
        self.gaps.flush_blind();
        if self.drops.is_open() {
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
