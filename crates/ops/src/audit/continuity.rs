//! Book continuity without a ground truth: Kalshi sends no checksum, but it does send
//! snapshots (WebSocket `get_snapshot` answers and resubscriptions, REST books from the
//! poller). The book rebuilt from the stored deltas since the previous snapshot must equal
//! every later snapshot of the same market; where it does not, a delta is missing or extra.
//!
//! Tolerances, because a snapshot is not an exact point of the stored delta stream:
//! - WebSocket: the exchange folds into a snapshot changes it has not sent yet (their deltas
//!   arrive just after it), so the rebuilt book may equal the snapshot at any instant of
//!   `[ts − WS_SLACK_US, ts + WS_SLACK_US]`;
//! - REST: the book shows the market up to [`MAX_REST_STALENESS_US`] before its receipt stamp,
//!   so `[ts − MAX_REST_STALENESS_US, ts]`. A REST snapshot never becomes the base while a
//!   WebSocket one exists (the rule of [`kd_core::book::replay`]).

use kd_core::book::{Book, MAX_REST_STALENESS_US};
use kd_core::records::{Side, SnapshotSource};
use kd_core::{Count, OrderbookDelta, OrderbookSnapshot, Price, TimestampUs};
use std::collections::BTreeMap;

/// How far a WebSocket snapshot may be from the instant of the delta stream it shows.
pub const WS_SLACK_US: i64 = 2_000_000;

/// One level where the rebuilt book and a snapshot differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelDiff {
    pub side: Side,
    pub price: Price,
    /// Size in the rebuilt book (`None`: no such level).
    pub rebuilt: Option<Count>,
    pub snapshot: Option<Count>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub ticker: String,
    pub at: TimestampUs,
    pub source: SnapshotSource,
    /// The rebuilt book at the snapshot's stamp against the snapshot.
    pub levels: Vec<LevelDiff>,
}

#[derive(Debug, Clone, Default)]
pub struct Continuity {
    /// Snapshots compared with a rebuilt book.
    pub checked: usize,
    pub agreed: usize,
    /// Snapshots with no earlier base (the first of each market).
    pub unchecked: usize,
    /// Deltas that would have driven a level below zero.
    pub negative_levels: usize,
    pub mismatches: Vec<Mismatch>,
}

/// Checks every market's snapshots stamped within `[from, to]`.
pub fn check(
    snapshots: &[OrderbookSnapshot],
    deltas: &[OrderbookDelta],
    from: TimestampUs,
    to: TimestampUs,
) -> Continuity {
    let mut snaps: BTreeMap<&str, Vec<&OrderbookSnapshot>> = BTreeMap::new();
    let mut dels: BTreeMap<&str, Vec<&OrderbookDelta>> = BTreeMap::new();
    for s in snapshots {
        snaps.entry(s.ticker.as_str()).or_default().push(s);
    }
    for d in deltas {
        dels.entry(d.ticker.as_str()).or_default().push(d);
    }
    let mut out = Continuity::default();
    for (ticker, mut ss) in snaps {
        ss.sort_by_key(|s| s.exchange_ts);
        let mut ds = dels.remove(ticker).unwrap_or_default();
        ds.sort_by_key(|d| (d.exchange_ts, d.occurrence));
        market(ticker, &ss, &ds, from, to, &mut out);
    }
    out
}

/// The book of `base` plus the deltas of `ds` with `base_ts < ts ≤ until`.
fn rebuild(base: &Book, base_ts: TimestampUs, ds: &[&OrderbookDelta], until: i64) -> (Book, usize) {
    let mut book = base.clone();
    let mut negative = 0;
    let lo = ds.partition_point(|d| d.exchange_ts <= base_ts);
    let hi = ds.partition_point(|d| d.exchange_ts.micros() <= until);
    for d in ds.get(lo..hi).unwrap_or(&[]) {
        if !book.apply(d.side, d.price, d.delta) {
            negative += 1;
        }
    }
    (book, negative)
}

/// Whether the book rebuilt from `base` equals `target` at some instant of `[lo, hi]`.
fn agrees_within(
    base: &Book,
    base_ts: TimestampUs,
    ds: &[&OrderbookDelta],
    target: &Book,
    lo: i64,
    hi: i64,
) -> bool {
    let (mut book, _) = rebuild(base, base_ts, ds, lo.max(base_ts.micros()));
    if book == *target {
        return true;
    }
    let start = ds.partition_point(|d| d.exchange_ts.micros() <= lo.max(base_ts.micros()));
    let end = ds.partition_point(|d| d.exchange_ts.micros() <= hi);
    for d in ds.get(start..end).unwrap_or(&[]) {
        book.apply(d.side, d.price, d.delta);
        if book == *target {
            return true;
        }
    }
    false
}

fn market(
    ticker: &str,
    ss: &[&OrderbookSnapshot],
    ds: &[&OrderbookDelta],
    from: TimestampUs,
    to: TimestampUs,
    out: &mut Continuity,
) {
    let mut base: Option<(Book, TimestampUs, SnapshotSource)> = None;
    for s in ss {
        let snap = Book::from_snapshot(s);
        let ts = s.exchange_ts;
        let in_window = from <= ts && ts <= to;
        match &base {
            None => {
                if in_window {
                    out.unchecked += 1;
                }
            }
            Some((b, bts, _)) if in_window => {
                out.checked += 1;
                let (lo, hi) = match s.source {
                    SnapshotSource::Ws => (ts.micros() - WS_SLACK_US, ts.micros() + WS_SLACK_US),
                    SnapshotSource::Rest => (ts.micros() - MAX_REST_STALENESS_US, ts.micros()),
                };
                if agrees_within(b, *bts, ds, &snap, lo, hi) {
                    out.agreed += 1;
                } else {
                    let (at, negative) = rebuild(b, *bts, ds, ts.micros());
                    out.negative_levels += negative;
                    out.mismatches.push(Mismatch {
                        ticker: ticker.to_string(),
                        at: ts,
                        source: s.source,
                        levels: diff(&at, &snap),
                    });
                }
            }
            Some(_) => {}
        }
        // WebSocket snapshots are exact bases; a REST one only until a WebSocket one exists,
        // and only when it disagreed (it then proves the old base wrong).
        let rebase = match (&base, s.source) {
            (None, _) | (_, SnapshotSource::Ws) => true,
            (Some((_, _, SnapshotSource::Rest)), SnapshotSource::Rest) => out
                .mismatches
                .last()
                .is_some_and(|m| m.ticker == ticker && m.at == ts),
            (Some(_), SnapshotSource::Rest) => false,
        };
        if rebase {
            base = Some((snap, ts, s.source));
        }
    }
}

fn diff(rebuilt: &Book, snapshot: &Book) -> Vec<LevelDiff> {
    let mut out = Vec::new();
    for (side, a, b) in [
        (Side::Yes, &rebuilt.yes, &snapshot.yes),
        (Side::No, &rebuilt.no, &snapshot.no),
    ] {
        let prices: std::collections::BTreeSet<&Price> = a.keys().chain(b.keys()).collect();
        for price in prices {
            let (x, y) = (a.get(price).copied(), b.get(price).copied());
            if x != y {
                out.push(LevelDiff {
                    side,
                    price: *price,
                    rebuilt: x,
                    snapshot: y,
                });
            }
        }
    }
    out
}
