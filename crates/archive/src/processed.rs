//! The `processed/` tier: validated and enriched copies of a window.
//!
//! - **Sorted** by (ticker, exchange_ts) and **deduplicated** by record identity (production
//!   already deduplicates; this is the archive's own guarantee, and it counts what it removed).
//! - **Consistency flags**, one per table, nullable where the answer is unknown:
//!   - trades `prices_consistent`: `yes_price + no_price = $1`;
//!   - deltas `book_consistent`: applying the delta to the book rebuilt from the latest snapshot
//!     of the same window leaves a non-negative size (null before the market's first snapshot in
//!     the window — the book is not known there);
//!   - snapshots `book_valid`: levels strictly ascending, sizes positive, and the book not
//!     crossed (best YES bid + best NO bid ≤ $1);
//!   - tickers `quote_consistent`: `yes_bid ≤ yes_ask` (null when either is missing).
//! - **Enriched** with `event_ticker` and `series_ticker` from production's market metadata
//!   (null for markets production does not know yet).

use crate::schema::{self, SchemaError, field};
use crate::source::MarketRef;
use arrow::array::{ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use kd_core::book::Book;
use kd_core::records::Level;
use kd_core::{Price, Record, Table};
use std::collections::HashMap;
use std::sync::Arc;

/// The tables that have a processed tier (gaps are diagnostics, kept raw only).
pub const PROCESSED_TABLES: [Table; 5] = [
    Table::Trades,
    Table::Deltas,
    Table::Snapshots,
    Table::Tickers,
    Table::Lifecycle,
];

/// The name of a table's consistency flag column, if it has one.
pub const fn flag_column(table: Table) -> Option<&'static str> {
    match table {
        Table::Trades => Some("prices_consistent"),
        Table::Deltas => Some("book_consistent"),
        Table::Snapshots => Some("book_valid"),
        Table::Tickers => Some("quote_consistent"),
        Table::Lifecycle | Table::Gaps => None,
    }
}

/// The processed schema: the raw columns, then `event_ticker`, `series_ticker`, then the flag.
pub fn processed_schema(table: Table) -> SchemaRef {
    let mut fields: Vec<Field> = schema::raw_fields(table);
    fields.push(field("event_ticker", DataType::Utf8, true, None));
    fields.push(field("series_ticker", DataType::Utf8, true, None));
    if let Some(flag) = flag_column(table) {
        fields.push(field(flag, DataType::Boolean, true, None));
    }
    Arc::new(Schema::new(fields))
}

/// Removes exact duplicates (same identity) from records sorted by (ticker, exchange_ts).
/// Duplicates share the sort key, so only runs of equal keys are compared. Returns how many
/// were removed.
pub fn dedup_sorted(records: &mut Vec<Record>) -> usize {
    let before = records.len();
    let mut out: Vec<Record> = Vec::with_capacity(records.len());
    let mut run_start = 0;
    for r in records.drain(..) {
        if out
            .get(run_start)
            .is_some_and(|first| schema::sort_key(first) != schema::sort_key(&r))
        {
            run_start = out.len();
        }
        // Most runs hold one record: identities are compared only on a tie (borrowed, so
        // comparing copies no string).
        let run = &out[run_start..];
        let identity = r.identity_ref();
        if !run.iter().any(|seen| seen.identity_ref() == identity) {
            out.push(r);
        }
    }
    *records = out;
    before - records.len()
}

/// `book_consistent` for each delta of a sorted window, replayed against the window's
/// snapshots (any order; they are merged by time per market) with the one book rebuild of
/// [`kd_core::book`]: a delta is consistent when applying it leaves its level non-negative.
pub fn delta_flags(deltas: &[Record], snapshots: &[Record]) -> Vec<Option<bool>> {
    let mut by_market: HashMap<&str, Vec<(i64, &kd_core::OrderbookSnapshot)>> = HashMap::new();
    for r in snapshots {
        if let Record::Snapshot(s) = r {
            by_market
                .entry(s.ticker.as_str())
                .or_default()
                .push((s.exchange_ts.micros(), s));
        }
    }
    for list in by_market.values_mut() {
        list.sort_by_key(|(ts, _)| *ts);
    }
    let mut flags = Vec::with_capacity(deltas.len());
    let mut current: Option<(&str, Option<Book>, usize)> = None;
    for r in deltas {
        let Record::Delta(d) = r else {
            flags.push(None);
            continue;
        };
        if current
            .as_ref()
            .is_none_or(|(t, _, _)| *t != d.ticker.as_str())
        {
            current = Some((d.ticker.as_str(), None, 0));
        }
        let Some((ticker, book, next_snap)) = current.as_mut() else {
            flags.push(None);
            continue;
        };
        // Snapshots at or before this delta's time replace the book (a snapshot at the same
        // instant is taken to include the books state before the delta).
        if let Some(snaps) = by_market.get(*ticker) {
            while let Some((ts, s)) = snaps.get(*next_snap) {
                if *ts > d.exchange_ts.micros() {
                    break;
                }
                *book = Some(Book::from_snapshot(s));
                *next_snap += 1;
            }
        }
        flags.push(book.as_mut().map(|b| b.apply(d.side, d.price, d.delta)));
    }
    flags
}

fn levels_valid(levels: &[Level]) -> bool {
    levels.windows(2).all(|w| w[0].price < w[1].price)
        && levels.iter().all(|l| l.size.hundredths() > 0)
}

/// The flag column of a window (deltas need the window's snapshots).
fn flags(table: Table, records: &[Record], snapshots: &[Record]) -> Option<Vec<Option<bool>>> {
    Some(match table {
        Table::Trades => records
            .iter()
            .map(|r| match r {
                Record::Trade(t) => {
                    Some(t.yes_price.units() + t.no_price.units() == Price::ONE_DOLLAR.units())
                }
                _ => None,
            })
            .collect(),
        Table::Deltas => delta_flags(records, snapshots),
        Table::Snapshots => records
            .iter()
            .map(|r| match r {
                Record::Snapshot(s) => {
                    let best = |l: &[Level]| l.last().map_or(0, |x| x.price.units());
                    Some(
                        levels_valid(&s.yes)
                            && levels_valid(&s.no)
                            && best(&s.yes) + best(&s.no) <= Price::ONE_DOLLAR.units(),
                    )
                }
                _ => None,
            })
            .collect(),
        Table::Tickers => records
            .iter()
            .map(|r| match r {
                Record::Ticker(t) => match (t.yes_bid, t.yes_ask) {
                    (Some(b), Some(a)) => Some(b <= a),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        Table::Lifecycle | Table::Gaps => return None,
    })
}

/// The processed batch of a sorted, deduplicated window.
pub fn processed_batch(
    table: Table,
    records: &[Record],
    snapshots: &[Record],
    markets: &HashMap<String, MarketRef>,
) -> Result<RecordBatch, SchemaError> {
    let mut columns = schema::raw_columns(table, records)?;
    let refs: Vec<Option<&MarketRef>> = records
        .iter()
        .map(|r| markets.get(schema::sort_key(r).0))
        .collect();
    columns.push(Arc::new(StringArray::from_iter(
        refs.iter().map(|m| m.map(|m| m.event_ticker.as_str())),
    )) as ArrayRef);
    columns.push(Arc::new(StringArray::from_iter(
        refs.iter().map(|m| m.map(|m| m.series_ticker.as_str())),
    )));
    if let Some(f) = flags(table, records, snapshots) {
        columns.push(Arc::new(BooleanArray::from(f)));
    }
    Ok(RecordBatch::try_new(processed_schema(table), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::records::{OrderbookDelta, OrderbookSnapshot, SnapshotSource, WirePos};
    use kd_core::{Count, Side, TimestampUs};

    fn price(u: i64) -> Price {
        Price::new(u).unwrap_or(Price::ONE_DOLLAR)
    }

    fn delta(ts: i64, p: i64, d: i64, occ: u32) -> Record {
        Record::Delta(OrderbookDelta {
            ticker: "M".into(),
            exchange_ts: TimestampUs::from_micros(ts),
            side: Side::Yes,
            price: price(p),
            delta: Count::new(d),
            occurrence: occ,
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        })
    }

    #[test]
    fn duplicates_are_removed_and_distinct_occurrences_kept() {
        let mut v = vec![
            delta(1, 50_000, 100, 0),
            delta(1, 50_000, 100, 0),
            delta(1, 50_000, 100, 1),
            delta(2, 50_000, 100, 0),
        ];
        assert_eq!(dedup_sorted(&mut v), 1);
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn deltas_are_flagged_against_the_latest_snapshot() {
        let snap = Record::Snapshot(OrderbookSnapshot {
            ticker: "M".into(),
            source: SnapshotSource::Ws,
            exchange_ts: TimestampUs::from_micros(10),
            yes: vec![Level {
                price: price(50_000),
                size: Count::new(100),
            }],
            no: vec![],
            received_at: TimestampUs::from_micros(10),
            pos: WirePos::default(),
        });
        let deltas = vec![
            delta(5, 50_000, -500, 0),
            delta(11, 50_000, -100, 0),
            delta(12, 50_000, -1, 0),
        ];
        assert_eq!(
            delta_flags(&deltas, &[snap]),
            vec![None, Some(true), Some(false)]
        );
    }
}
