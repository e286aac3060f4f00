//! The rebuild rule with REST snapshots: stale ones never change a WebSocket-based book, they
//! are audited against it, and a WebSocket snapshot still resets the base.

use crate::book::{Book, MAX_REST_STALENESS_US, MarketHistory};
use crate::records::{Level, OrderbookDelta, OrderbookSnapshot, Side, SnapshotSource, WirePos};
use crate::units::{Count, Price, TimestampUs};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn p(units: i64) -> Price {
    Price::new(units).unwrap_or(Price::ZERO)
}

fn ts(us: i64) -> TimestampUs {
    TimestampUs::from_micros(us)
}

fn snap(source: SnapshotSource, at: i64, yes: &BTreeMap<i64, i64>) -> OrderbookSnapshot {
    OrderbookSnapshot {
        ticker: "M".into(),
        source,
        exchange_ts: ts(at),
        yes: yes
            .iter()
            .map(|(&pr, &sz)| Level {
                price: p(pr),
                size: Count::new(sz),
            })
            .collect(),
        no: vec![],
        received_at: ts(at),
        pos: WirePos::default(),
    }
}

fn delta(at: i64, price: i64, d: i64) -> OrderbookDelta {
    OrderbookDelta {
        ticker: "M".into(),
        exchange_ts: ts(at),
        side: Side::Yes,
        price: p(price),
        delta: Count::new(d),
        occurrence: 0,
        received_at: ts(at),
        pos: WirePos::default(),
    }
}

fn levels(pairs: &[(i64, i64)]) -> BTreeMap<i64, i64> {
    pairs.iter().copied().collect()
}

fn yes_book(h: &MarketHistory, at: i64) -> Option<Vec<(i64, i64)>> {
    h.at(ts(at)).map(|r| {
        r.book
            .yes
            .iter()
            .map(|(pr, sz)| (pr.units(), sz.hundredths()))
            .collect()
    })
}

/// The example: a REST book as of 20:04:25.340721 stored at .352949, a delta at
/// .352156 (yes 0.470, −69.00) between. The delta is kept, and the REST book agrees.
#[test]
fn delta_between_shown_instant_and_receipt_is_kept() {
    // 20:04:25 in µs of the day, then the fractions.
    let second = 72_265_000_000;
    let (delta_at, stored) = (second + 352_156, second + 352_949);
    let before = levels(&[(47_000, 10_000), (48_000, 500)]);
    let h = MarketHistory::new(
        vec![
            snap(SnapshotSource::Ws, second - 60_000_000, &before),
            snap(SnapshotSource::Rest, stored, &before),
        ],
        vec![delta(delta_at, 47_000, -6_900)],
    );
    let after = vec![(47_000, 3_100), (48_000, 500)];
    assert_eq!(yes_book(&h, stored), Some(after.clone()));
    assert_eq!(yes_book(&h, stored + 1_000_000), Some(after));
    let r = h.at(ts(stored));
    assert_eq!(r.map(|r| r.base_source), Some(SnapshotSource::Ws));
    let audit = h.replay(ts(stored)).audit;
    assert_eq!((audit.agreed, audit.disagreed, audit.unchecked), (1, 0, 0));
}

#[test]
fn websocket_snapshot_still_resets_the_base() {
    let w = MAX_REST_STALENESS_US;
    let h = MarketHistory::new(
        vec![
            snap(SnapshotSource::Ws, 10 * w, &levels(&[(50_000, 100)])),
            snap(SnapshotSource::Rest, 20 * w, &levels(&[(50_000, 7)])),
            snap(SnapshotSource::Ws, 30 * w, &levels(&[(50_000, 300)])),
        ],
        vec![
            delta(15 * w, 50_000, 200),
            delta(30 * w, 50_000, 1),
            delta(35 * w, 40_000, 5),
        ],
    );
    // The REST book (disagreeing) is no base; the WebSocket one at 30 is (and includes the
    // delta stamped at its own instant).
    assert_eq!(yes_book(&h, 25 * w), Some(vec![(50_000, 300)]));
    assert_eq!(yes_book(&h, 40 * w), Some(vec![(40_000, 5), (50_000, 300)]));
    let r = h.at(ts(40 * w));
    assert_eq!(
        r.map(|r| (r.base_source, r.snapshot_ts.micros(), r.deltas_applied)),
        Some((SnapshotSource::Ws, 30 * w, 1))
    );
    let audit = h.replay(ts(40 * w)).audit;
    assert_eq!((audit.agreed, audit.disagreed), (0, 1));
    assert_eq!(audit.disagreed_at, vec![ts(20 * w)]);
}

/// A delta missing from the stream makes the next REST book disagree beyond its window: the
/// audit is the evidence, the WebSocket-based book is kept as it is.
#[test]
fn lost_delta_shows_as_a_disagreeing_rest_snapshot() {
    let w = MAX_REST_STALENESS_US;
    let h = MarketHistory::new(
        vec![
            snap(SnapshotSource::Ws, 0, &levels(&[(50_000, 100)])),
            // The exchange applied −40 at 1 s, which production lost.
            snap(SnapshotSource::Rest, 3 * w, &levels(&[(50_000, 60)])),
        ],
        vec![],
    );
    assert_eq!(yes_book(&h, 4 * w), Some(vec![(50_000, 100)]));
    let audit = h.replay(ts(4 * w)).audit;
    assert_eq!((audit.agreed, audit.disagreed), (0, 1));
}

/// Without any WebSocket snapshot the first REST book is the base (nothing better exists); a
/// later REST book that agrees changes nothing, one that disagrees replaces the REST base.
#[test]
fn rest_is_the_base_only_where_no_websocket_snapshot_exists() {
    let w = MAX_REST_STALENESS_US;
    let h = MarketHistory::new(
        vec![
            snap(SnapshotSource::Rest, 10 * w, &levels(&[(50_000, 100)])),
            snap(SnapshotSource::Rest, 20 * w, &levels(&[(50_000, 150)])),
            snap(SnapshotSource::Rest, 30 * w, &levels(&[(50_000, 999)])),
            snap(SnapshotSource::Ws, 40 * w, &levels(&[(50_000, 1)])),
            snap(SnapshotSource::Rest, 50 * w, &levels(&[(50_000, 2)])),
        ],
        vec![delta(15 * w, 50_000, 50), delta(35 * w, 50_000, 1)],
    );
    assert_eq!(yes_book(&h, 5 * w), None);
    assert_eq!(yes_book(&h, 16 * w), Some(vec![(50_000, 150)]));
    assert_eq!(yes_book(&h, 25 * w), Some(vec![(50_000, 150)]));
    let r = h.at(ts(25 * w));
    assert_eq!(
        r.map(|r| (r.base_source, r.snapshot_ts.micros())),
        Some((SnapshotSource::Rest, 10 * w))
    );
    assert_eq!(yes_book(&h, 36 * w), Some(vec![(50_000, 1_000)]));
    assert_eq!(yes_book(&h, 60 * w), Some(vec![(50_000, 1)]));
    let audit = h.replay(ts(60 * w)).audit;
    assert_eq!(
        (audit.agreed, audit.disagreed, audit.unchecked),
        (1, 2, 1),
        "{audit:?}"
    );
}

/// The exchange's book after every change up to `at`.
fn truth_at(changes: &[(i64, i64, i64)], base: &BTreeMap<i64, i64>, at: i64) -> Vec<(i64, i64)> {
    let mut book = base.clone();
    for &(_, price, size) in changes.iter().filter(|c| c.0 <= at) {
        if size == 0 {
            book.remove(&price);
        } else {
            book.insert(price, size);
        }
    }
    book.into_iter().collect()
}

proptest! {
    /// REST books stale by anything up to the window never change the rebuilt book, and all
    /// agree with it.
    #[test]
    fn stale_rest_books_never_change_the_rebuilt_book(
        steps in prop::collection::vec((1_i64..700_000, 0_i64..4, 0_i64..5), 1..60),
        polls in prop::collection::vec((0_usize..60, 0_i64..=MAX_REST_STALENESS_US), 0..8),
    ) {
        let base = levels(&[(40_000, 100), (50_000, 200)]);
        // Each step sets one level to a size (0 removes it); the deltas are the differences.
        let mut now = 1_000;
        let mut book = base.clone();
        let mut changes = Vec::new();
        let mut deltas = Vec::new();
        for &(dt, level, size) in &steps {
            now += dt;
            let price = 40_000 + level * 1_000;
            let old = book.get(&price).copied().unwrap_or(0);
            let new = size * 100;
            if new == old {
                continue;
            }
            deltas.push(delta(now, price, new - old));
            if new == 0 { book.remove(&price); } else { book.insert(price, new); }
            changes.push((now, price, new));
        }
        let end = now + 2 * MAX_REST_STALENESS_US;
        let mut snapshots = vec![snap(SnapshotSource::Ws, 0, &base)];
        for &(k, stale) in &polls {
            // Received just after step k (or at the end), showing the book `stale` µs earlier.
            let stamp = changes.get(k).map_or(end, |c| c.0 + 1);
            let shown = truth_at(&changes, &base, stamp - stale);
            snapshots.push(snap(SnapshotSource::Rest, stamp, &shown.into_iter().collect()));
        }
        let h = MarketHistory::new(snapshots, deltas);
        let mut instants: Vec<i64> = changes.iter().flat_map(|c| [c.0 - 1, c.0, c.0 + 1]).collect();
        instants.push(end);
        for at in instants {
            let want = truth_at(&changes, &base, at);
            prop_assert_eq!(yes_book(&h, at), Some(want), "at {}", at);
        }
        let r = h.replay(ts(end));
        prop_assert_eq!(r.audit.agreed, polls.len());
        prop_assert_eq!(r.audit.disagreed, 0);
        prop_assert_eq!(r.negative_levels, 0);
        prop_assert_eq!(r.book, h.at(ts(end)).map(|r| r.book));
    }
}

#[test]
fn book_equality_ignores_zero_levels() {
    let b = Book::from_levels(
        &[Level {
            price: p(1),
            size: Count::ZERO,
        }],
        &[],
    );
    assert_eq!(b, Book::default());
}
