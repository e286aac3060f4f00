//! Holding WebSocket snapshots until their time is known.
//!
//! A WebSocket snapshot carries no exchange time, and stamping it with the receive time is
//! wrong: a delta the exchange stamped *before* that instant can still arrive *after* the
//! snapshot (it was in flight), and a reader rebuilding "snapshot + deltas after it" would
//! skip it. A market's deltas arrive in time order, so the snapshot's book held from its last
//! included delta until just before the first delta that follows it on this subscription: that
//! instant minus 1 µs is its time. A quiet market's snapshot takes the time of a later message
//! on the connection once the stream is well past the snapshot (see [`SnapshotHold::passed`]);
//! on a connection that stays idle for [`SNAPSHOT_HOLD`] it keeps its receive time.

use crate::clock::Clock;
use crate::metrics as m;
use kd_core::{OrderbookSnapshot, TimestampUs};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How long a WebSocket snapshot waits for its market's next delta, on a connection that has
/// delivered nothing since, before it is stored with its receive time.
const SNAPSHOT_HOLD: Duration = Duration::from_secs(2);
/// Exchange clocks of different markets differ by less than this: a message stamped `t`
/// arrives after every change made before `t` minus this margin.
const PASSED_MARGIN_US: i64 = 100_000;
/// A quiet market's snapshot is released by a message stamped this long after the snapshot's
/// converted receive time. The book may be newer than that time by up to the connection's
/// smallest latency: the exchange folds into a snapshot the changes still queued for sending,
/// and its answer overtakes them, while the clock estimate subtracts the smallest latency of
/// the *queued* messages (see `crate::clock`). Waiting until the stream is this far past makes
/// the stamp (the releasing message's time less [`PASSED_MARGIN_US`]) lie after the book's
/// instant whenever that smallest latency is under 0.9 s.
const CAUGHT_UP_US: i64 = 1_000_000;

/// A snapshot ready to be stored, with its local receive time.
pub(super) type Timed = (OrderbookSnapshot, TimestampUs);

/// The held snapshots of one connection.
///
/// Both releases ([`SnapshotHold::passed`], [`SnapshotHold::idle`]) take snapshots whose
/// arrival lies before a bound, so they are a prefix of the arrival order: `order` keeps it,
/// and a release pops from its front instead of scanning every held snapshot per message
/// (at a million markets a connection holds ~250,000 while it subscribes, and the scan per
/// frame was a third of the gatherer's CPU). Entries whose snapshot left the hold another way
/// (timed by a delta, dropped across a gap, replaced) are skipped when they reach the front.
#[derive(Debug, Default)]
pub(super) struct SnapshotHold {
    /// Per market: the snapshot, when it arrived (local clock), and its entry in `order`.
    held: HashMap<String, (Timed, u64)>,
    /// Markets in arrival order, with the entry number their hold was given.
    order: VecDeque<(String, u64)>,
    next_entry: u64,
    /// When the connection last delivered a data message (local clock).
    last_data_at: Option<TimestampUs>,
}

impl SnapshotHold {
    /// Holds a snapshot. A snapshot already held shows the same book (no delta and no gap came
    /// between them on this subscription); the newer one replaces it.
    pub(super) fn hold(&mut self, snapshot: OrderbookSnapshot, received_at: TimestampUs) {
        let entry = self.next_entry;
        self.next_entry += 1;
        self.order.push_back((snapshot.ticker.clone(), entry));
        self.held
            .insert(snapshot.ticker.clone(), ((snapshot, received_at), entry));
    }

    /// Releases, in arrival order, the held snapshots from the front for which `due(arrival)`
    /// holds; `due` must be monotonic in the arrival time (false from the first that is not).
    fn release_front(&mut self, mut due: impl FnMut(TimestampUs) -> bool) -> Vec<Timed> {
        let mut out = Vec::new();
        while let Some((ticker, entry)) = self.order.front() {
            let live = match self.held.get(ticker) {
                Some(((_, at), e)) if e == entry => Some(*at),
                // Left the hold already, or held again later (a newer entry behind).
                _ => None,
            };
            if live.is_some_and(|at| !due(at)) {
                break;
            }
            let Some((ticker, _)) = self.order.pop_front() else {
                break;
            };
            if live.is_some()
                && let Some((timed, _)) = self.held.remove(&ticker)
            {
                out.push(timed);
            }
        }
        if self.held.is_empty() {
            self.order.clear();
        }
        out
    }

    /// A data message arrived at local `received_at`.
    pub(super) fn note_data(&mut self, received_at: TimestampUs) {
        self.last_data_at = Some(received_at);
    }

    /// The first delta the market's held snapshot does not contain, made at `delta_ts`: the
    /// book it shows held until just before this change.
    pub(super) fn timed_by_delta(
        &mut self,
        ticker: &str,
        delta_ts: TimestampUs,
    ) -> Option<OrderbookSnapshot> {
        let ((mut snapshot, _), _) = self.held.remove(ticker)?;
        if self.held.is_empty() {
            self.order.clear();
        }
        snapshot.exchange_ts = TimestampUs::from_micros(delta_ts.micros().saturating_sub(1));
        Some(snapshot)
    }

    /// A gap opened on `sid`: the delta that would have timed a held snapshot may be among the
    /// lost messages, and no other instant is known to lie inside the window where the
    /// snapshot's book held. Markets are not published in one time order (each has its own
    /// clock), so a delta of another market does not bound it, and the receive time can fall
    /// after a change the snapshot does not contain. A snapshot with a wrong time corrupts
    /// every book rebuilt after it, while a missing one costs nothing: the same gap asks the
    /// exchange for a fresh snapshot of the subscription's markets. So these are not stored,
    /// and counted in `router_snapshots_untimed_total`.
    pub(super) fn across_gap(&mut self, sid: u64) {
        let before = self.held.len();
        self.held.retain(|_, ((s, _), _)| s.pos.sid != Some(sid));
        let untimed = (before - self.held.len()) as u64;
        if untimed > 0 {
            metrics::counter!(m::ROUTER_SNAPSHOTS_UNTIMED_TOTAL, "why" => "gap").increment(untimed);
        }
    }

    /// The held snapshots that a message stamped `ts` proves were not followed by a change of
    /// their market until `ts` less [`PASSED_MARGIN_US`], stamped with that instant: messages
    /// arrive in the order the exchange sent them, so such a change would have come ahead of
    /// this message (and timed the snapshot, see [`SnapshotHold::timed_by_delta`]). Only once
    /// the stream is [`CAUGHT_UP_US`] past the snapshot's arrival, so that the instant lies
    /// after every change the book contains. (Waiting a fixed time instead is wrong when the
    /// connection runs seconds behind: found by the 60 s, 2 %-loss test. Stamping the receive
    /// time was wrong under load: the book can be newer than it, and the changes it folded in
    /// were then applied again on top of it from the gatherers that received them as deltas.)
    pub(super) fn passed(&mut self, ts: TimestampUs, clock: &Clock) -> Vec<Timed> {
        if self.held.is_empty() {
            return Vec::new();
        }
        // `to_exchange` adds one offset to every arrival: monotonic, so the due ones are a prefix.
        let mut due =
            self.release_front(|at| clock.to_exchange(at).micros() + CAUGHT_UP_US <= ts.micros());
        let stamp = TimestampUs::from_micros(ts.micros().saturating_sub(PASSED_MARGIN_US));
        for (snapshot, _) in &mut due {
            snapshot.exchange_ts = stamp;
        }
        due
    }

    /// Held snapshots older than [`SNAPSHOT_HOLD`] when the connection has delivered no data
    /// since they arrived or for [`SNAPSHOT_HOLD`]: an idle connection has nothing in flight
    /// behind them. `now` is local. Before the clock's offset is known they wait (their time
    /// could not be put on the exchange's clock).
    pub(super) fn idle(&mut self, now: TimestampUs, clock: &Clock) -> Vec<Timed> {
        if self.held.is_empty() || clock.offset_us().is_none() {
            return Vec::new();
        }
        let hold = SNAPSHOT_HOLD.as_micros() as i64;
        // "No data since it arrived" (`last_data <= at`) with `now - at >= hold` implies
        // `now - last_data >= hold`, so the condition is the connection being idle for the
        // hold and the snapshot being older than it: a prefix of the arrival order.
        if self
            .last_data_at
            .is_some_and(|d| now.micros() - d.micros() < hold)
        {
            return Vec::new();
        }
        let mut due = self.release_front(|at| now.micros() - at.micros() >= hold);
        // Stamped with the receive time on the exchange's clock: converted with the
        // minimum-latency estimate it lies at or after the instant the exchange sent the book
        // (see `crate::clock`), so it never precedes a change the book contains.
        for (snapshot, at) in &mut due {
            snapshot.exchange_ts = clock.to_exchange(*at);
        }
        due
    }

    /// The connection ended: a change a held snapshot lacks may have been lost with it, so the
    /// snapshot cannot be timed (see [`SnapshotHold::across_gap`]); the next connection
    /// subscribes again and receives fresh ones.
    pub(super) fn discard(&mut self) {
        let untimed = self.held.len() as u64;
        self.held.clear();
        self.order.clear();
        if untimed > 0 {
            metrics::counter!(m::ROUTER_SNAPSHOTS_UNTIMED_TOTAL, "why" => "closed")
                .increment(untimed);
        }
    }
}
