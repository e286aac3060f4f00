//! Order-book rebuild: the one implementation `book`, `verify` and the archive's
//! `book_consistent` flag share (pure, so it lives here beside the records it reads).
//!
//! Rule (DESIGN §1 `book`, refined for stale REST books in [`replay`]): the book of a market at
//! time `T` is its last **WebSocket** snapshot with `exchange_ts ≤ T`, plus every delta with
//! `snapshot.exchange_ts < exchange_ts ≤ T`, applied in exchange-time order. REST snapshots
//! (stamped at receipt, showing an earlier instant) are audit points, and a base only where no
//! WebSocket snapshot precedes `T`. Both sides are bids (YES bids and NO bids); a level whose
//! size reaches zero disappears. A delta that would drive a level below zero is counted as an
//! inconsistency (it means a delta is missing or duplicated) and the level is removed.

pub mod replay;

pub use replay::{MAX_REST_STALENESS_US, Replayed, RestAudit, replay};

use crate::records::{Level, OrderbookDelta, OrderbookSnapshot, Side, SnapshotSource};
use crate::units::{Count, Price, TimestampUs};
use serde::Serialize;
use std::collections::BTreeMap;

/// One market's book: resting size per price on each side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    pub yes: BTreeMap<Price, Count>,
    pub no: BTreeMap<Price, Count>,
}

/// A rebuilt book and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub book: Book,
    /// Exchange time of the snapshot the rebuild started from.
    pub snapshot_ts: TimestampUs,
    /// Its source: `Rest` only where no WebSocket snapshot precedes the instant.
    pub base_source: SnapshotSource,
    /// Deltas applied on top of the snapshot.
    pub deltas_applied: usize,
    /// Deltas that would have made a level negative (a sign of a missing or extra delta).
    pub negative_levels: usize,
}

impl Book {
    /// The book of a snapshot (levels with size 0 are dropped).
    pub fn from_levels(yes: &[Level], no: &[Level]) -> Book {
        let side = |levels: &[Level]| {
            levels
                .iter()
                .filter(|l| !l.size.is_zero())
                .map(|l| (l.price, l.size))
                .collect()
        };
        Book {
            yes: side(yes),
            no: side(no),
        }
    }

    pub fn from_snapshot(snapshot: &OrderbookSnapshot) -> Book {
        Book::from_levels(&snapshot.yes, &snapshot.no)
    }

    /// Applies one change. Returns `false` when the level would have gone negative (the level
    /// is then removed, which is what the exchange shows after a full cancel).
    pub fn apply(&mut self, side: Side, price: Price, delta: Count) -> bool {
        let levels = match side {
            Side::Yes => &mut self.yes,
            Side::No => &mut self.no,
        };
        let current = levels.get(&price).copied().unwrap_or(Count::ZERO);
        let next = current.checked_add(delta).unwrap_or(Count::ZERO);
        if next.is_zero() || next.is_negative() {
            levels.remove(&price);
            !next.is_negative()
        } else {
            levels.insert(price, next);
            true
        }
    }

    /// The best `depth` levels of each side, best (highest bid) first.
    pub fn top(&self, depth: usize) -> BookView {
        let side = |levels: &BTreeMap<Price, Count>| {
            levels
                .iter()
                .rev()
                .take(depth)
                .map(|(price, size)| LevelView {
                    price: price.to_dollars(),
                    size: size.to_fp(),
                })
                .collect()
        };
        BookView {
            yes: side(&self.yes),
            no: side(&self.no),
        }
    }

    /// A short human description of how two books differ (first few levels).
    pub fn diff(&self, other: &Book) -> String {
        let mut parts = Vec::new();
        for (name, a, b) in [("yes", &self.yes, &other.yes), ("no", &self.no, &other.no)] {
            let prices: std::collections::BTreeSet<&Price> = a.keys().chain(b.keys()).collect();
            for price in prices {
                let (x, y) = (a.get(price), b.get(price));
                if x != y {
                    let show = |c: Option<&Count>| c.map_or("-".to_string(), |c| c.to_fp());
                    parts.push(format!("{name}@{price}: {} vs {}", show(x), show(y)));
                }
            }
        }
        let total = parts.len();
        parts.truncate(4);
        if total > 4 {
            parts.push(format!("… {} more levels", total - 4));
        }
        parts.join(", ")
    }
}

/// Printable book (dollars and contracts as Kalshi writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookView {
    pub yes: Vec<LevelView>,
    pub no: Vec<LevelView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelView {
    pub price: String,
    pub size: String,
}

/// One market's stored history, sorted by exchange time, ready for rebuilds at many instants.
#[derive(Debug, Clone, Default)]
pub struct MarketHistory {
    snapshots: Vec<OrderbookSnapshot>,
    /// Indices into `snapshots` of the WebSocket ones (the exact bases).
    ws: Vec<usize>,
    deltas: Vec<OrderbookDelta>,
}

impl MarketHistory {
    /// Takes one market's snapshots and deltas in any order.
    pub fn new(mut snapshots: Vec<OrderbookSnapshot>, mut deltas: Vec<OrderbookDelta>) -> Self {
        snapshots.sort_by_key(|s| s.exchange_ts);
        // Stable sort: deltas sharing a timestamp keep their stored order, and `occurrence`
        // orders identical ones — order within one instant does not change the sum anyway.
        deltas.sort_by_key(|d| (d.exchange_ts, d.occurrence));
        let ws = (0..snapshots.len())
            .filter(|&i| {
                snapshots
                    .get(i)
                    .is_some_and(|s| s.source == SnapshotSource::Ws)
            })
            .collect();
        MarketHistory {
            snapshots,
            ws,
            deltas,
        }
    }

    /// The book at `at`, or `None` when no snapshot precedes it.
    pub fn at(&self, at: TimestampUs) -> Option<Rebuilt> {
        let last_ws = self
            .ws
            .partition_point(|&i| self.snapshots.get(i).is_some_and(|s| s.exchange_ts <= at));
        let Some(snapshot) = last_ws
            .checked_sub(1)
            .and_then(|k| self.ws.get(k))
            .and_then(|&i| self.snapshots.get(i))
        else {
            // No WebSocket base: only the replay knows which REST snapshot is the base.
            let r = self.replay(at);
            let (base_source, snapshot_ts) = r.base?;
            return Some(Rebuilt {
                book: r.book?,
                snapshot_ts,
                base_source,
                deltas_applied: r.deltas_applied,
                negative_levels: r.negative_levels,
            });
        };
        let mut book = Book::from_snapshot(snapshot);
        let start = self
            .deltas
            .partition_point(|d| d.exchange_ts <= snapshot.exchange_ts);
        let end = self.deltas.partition_point(|d| d.exchange_ts <= at);
        let mut negative_levels = 0;
        let applied = self.deltas.get(start..end).unwrap_or(&[]);
        for d in applied {
            if !book.apply(d.side, d.price, d.delta) {
                negative_levels += 1;
            }
        }
        Some(Rebuilt {
            book,
            snapshot_ts: snapshot.exchange_ts,
            base_source: SnapshotSource::Ws,
            deltas_applied: applied.len(),
            negative_levels,
        })
    }

    /// The whole replay up to `until`: the book (equal to [`MarketHistory::at`]'s) and the
    /// audit of every REST snapshot stamped up to then.
    pub fn replay(&self, until: TimestampUs) -> Replayed {
        replay(
            &self.snapshots,
            &self.deltas,
            until,
            MAX_REST_STALENESS_US,
            |_, _| {},
        )
    }

    pub fn snapshot_count(&self) -> usize {
        self.snapshots.len()
    }

    pub fn delta_count(&self) -> usize {
        self.deltas.len()
    }
}

/// Groups snapshots and deltas of many markets into per-market histories.
pub fn histories(
    snapshots: impl IntoIterator<Item = OrderbookSnapshot>,
    deltas: impl IntoIterator<Item = OrderbookDelta>,
) -> BTreeMap<String, MarketHistory> {
    let mut snaps: BTreeMap<String, Vec<OrderbookSnapshot>> = BTreeMap::new();
    let mut dels: BTreeMap<String, Vec<OrderbookDelta>> = BTreeMap::new();
    for s in snapshots {
        snaps.entry(s.ticker.clone()).or_default().push(s);
    }
    for d in deltas {
        dels.entry(d.ticker.clone()).or_default().push(d);
    }
    let tickers: std::collections::BTreeSet<String> =
        snaps.keys().chain(dels.keys()).cloned().collect();
    tickers
        .into_iter()
        .map(|t| {
            let h = MarketHistory::new(
                snaps.remove(&t).unwrap_or_default(),
                dels.remove(&t).unwrap_or_default(),
            );
            (t, h)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{SnapshotSource, WirePos};

    fn p(units: i64) -> Price {
        Price::new(units).unwrap_or(Price::ZERO)
    }

    fn snap(ts: i64, yes: &[(i64, i64)]) -> OrderbookSnapshot {
        OrderbookSnapshot {
            ticker: "M".into(),
            source: SnapshotSource::Ws,
            exchange_ts: TimestampUs::from_micros(ts),
            yes: yes
                .iter()
                .map(|&(pr, sz)| Level {
                    price: p(pr),
                    size: Count::new(sz),
                })
                .collect(),
            no: vec![],
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        }
    }

    fn delta(ts: i64, price: i64, d: i64) -> OrderbookDelta {
        OrderbookDelta {
            ticker: "M".into(),
            exchange_ts: TimestampUs::from_micros(ts),
            side: Side::Yes,
            price: p(price),
            delta: Count::new(d),
            occurrence: 0,
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        }
    }

    #[test]
    fn rebuild_uses_last_snapshot_and_later_deltas_only() {
        let h = MarketHistory::new(
            vec![snap(10, &[(50_000, 100)]), snap(20, &[(50_000, 300)])],
            vec![
                delta(15, 50_000, 200),
                delta(25, 50_000, -300),
                delta(26, 40_000, 500),
                delta(40, 40_000, 1),
            ],
        );
        assert_eq!(h.at(TimestampUs::from_micros(5)), None);
        let at12 = h.at(TimestampUs::from_micros(12)).map(|r| r.book);
        assert_eq!(
            at12.map(|b| b.yes.get(&p(50_000)).copied()),
            Some(Some(Count::new(100)))
        );
        let r = h.at(TimestampUs::from_micros(30));
        let r = r.as_ref();
        assert_eq!(r.map(|r| r.snapshot_ts.micros()), Some(20));
        assert_eq!(r.map(|r| r.deltas_applied), Some(2));
        assert_eq!(
            r.map(|r| r.book.yes.clone().into_iter().collect::<Vec<_>>()),
            Some(vec![(p(40_000), Count::new(500))])
        );
    }

    #[test]
    fn negative_level_is_counted() {
        let h = MarketHistory::new(
            vec![snap(1, &[(10_000, 100)])],
            vec![delta(2, 10_000, -200)],
        );
        let r = h.at(TimestampUs::from_micros(3));
        assert_eq!(
            r.map(|r| (r.negative_levels, r.book.yes.len())),
            Some((1, 0))
        );
    }

    #[test]
    fn top_is_best_first() {
        let b = Book::from_levels(
            &[
                Level {
                    price: p(10_000),
                    size: Count::new(100),
                },
                Level {
                    price: p(20_000),
                    size: Count::new(5),
                },
            ],
            &[],
        );
        let v = b.top(1);
        assert_eq!(v.yes.len(), 1);
        assert_eq!(v.yes.first().map(|l| l.price.as_str()), Some("0.2000"));
        assert_eq!(v.yes.first().map(|l| l.size.as_str()), Some("0.05"));
    }
}
