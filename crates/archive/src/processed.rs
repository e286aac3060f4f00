//! The `processed/` tier: validated and enriched copies of a window.
//!
//! - **Sorted** by (ticker, exchange_ts) and **deduplicated** by record identity (production
//!   already deduplicates; this is the archive's own guarantee, and it counts what it removed).
//! - **Consistency flags**, one per table, nullable where the answer is unknown:
//!   - trades `prices_consistent`: `yes_price + no_price = $1`;
//!   - deltas `book_consistent`: applying the delta to the book rebuilt from the window's
//!     snapshots by the one rule of [`kd_core::book::replay`] leaves a non-negative size (null
//!     where the book is not known: before the market's first snapshot in the window, and on a
//!     REST snapshot base — a window without a WebSocket snapshot — until a later REST snapshot
//!     agrees with it). REST snapshots are audit points: the processed deltas file's metadata
//!     says how many agreed or disagreed with the rebuilt book (`kalshi_data.rest_snapshots_*`);
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
use kd_core::book::{MAX_REST_STALENESS_US, RestAudit, replay};
use kd_core::records::{Level, OrderbookDelta, OrderbookSnapshot};
use kd_core::{Price, Record, Table, TimestampUs};
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
/// snapshots (any order) with the one book rebuild of [`kd_core::book`], and the audit of the
/// window's REST snapshots against the rebuilt books.
pub fn delta_flags(deltas: &[Record], snapshots: &[Record]) -> Vec<Option<bool>> {
    replay_window(deltas, snapshots).0
}

/// [`delta_flags`] and the REST audit of the window, in one replay per market.
pub fn replay_window(deltas: &[Record], snapshots: &[Record]) -> (Vec<Option<bool>>, RestAudit) {
    let mut by_market: HashMap<&str, Vec<&OrderbookSnapshot>> = HashMap::new();
    for r in snapshots {
        if let Record::Snapshot(s) = r {
            by_market.entry(s.ticker.as_str()).or_default().push(s);
        }
    }
    for list in by_market.values_mut() {
        list.sort_by_key(|s| s.exchange_ts);
    }
    let until = TimestampUs::from_micros(i64::MAX);
    let mut flags = vec![None; deltas.len()];
    let mut audit = RestAudit::default();
    let mut i = 0;
    while i < deltas.len() {
        let Some(Record::Delta(first)) = deltas.get(i) else {
            i += 1;
            continue;
        };
        // One market's run (the window is sorted by ticker, then time).
        let mut run: Vec<(usize, &OrderbookDelta)> = Vec::new();
        while let Some(Record::Delta(d)) = deltas.get(i)
            && d.ticker == first.ticker
        {
            run.push((i, d));
            i += 1;
        }
        run.sort_by_key(|(_, d)| d.exchange_ts);
        let refs: Vec<&OrderbookDelta> = run.iter().map(|(_, d)| *d).collect();
        let snaps = by_market.remove(first.ticker.as_str()).unwrap_or_default();
        let r = replay(&snaps, &refs, until, MAX_REST_STALENESS_US, |k, flag| {
            if let Some(slot) = run.get(k).and_then(|(j, _)| flags.get_mut(*j)) {
                *slot = flag;
            }
        });
        audit.add(&r.audit);
    }
    // Markets with snapshots but no delta in the window: their REST snapshots are audited too.
    for snaps in by_market.values() {
        let none: [&OrderbookDelta; 0] = [];
        audit.add(&replay(snaps, &none, until, MAX_REST_STALENESS_US, |_, _| {}).audit);
    }
    (flags, audit)
}

/// The processed file's metadata a table adds (the deltas file: the REST audit).
pub fn audit_meta(audit: &RestAudit) -> Vec<(String, String)> {
    vec![
        (
            "kalshi_data.rest_snapshots_agreed".into(),
            audit.agreed.to_string(),
        ),
        (
            "kalshi_data.rest_snapshots_disagreed".into(),
            audit.disagreed.to_string(),
        ),
        (
            "kalshi_data.rest_snapshots_unchecked".into(),
            audit.unchecked.to_string(),
        ),
    ]
}

fn levels_valid(levels: &[Level]) -> bool {
    levels.windows(2).all(|w| w[0].price < w[1].price)
        && levels.iter().all(|l| l.size.hundredths() > 0)
}

/// The flag column of a window (deltas need the window's snapshots) and the file metadata it
/// adds.
type Flags = (Option<Vec<Option<bool>>>, Vec<(String, String)>);

fn flags(table: Table, records: &[Record], snapshots: &[Record]) -> Flags {
    if table == Table::Deltas {
        let (flags, audit) = replay_window(records, snapshots);
        return (Some(flags), audit_meta(&audit));
    }
    let flags = match table {
        Table::Trades => records
            .iter()
            .map(|r| match r {
                Record::Trade(t) => {
                    Some(t.yes_price.units() + t.no_price.units() == Price::ONE_DOLLAR.units())
                }
                _ => None,
            })
            .collect(),
        Table::Deltas => return (None, Vec::new()),
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
        Table::Lifecycle | Table::Gaps => return (None, Vec::new()),
    };
    (Some(flags), Vec::new())
}

/// The processed batch of a sorted, deduplicated window, and the metadata its file adds.
pub fn processed_batch(
    table: Table,
    records: &[Record],
    snapshots: &[Record],
    markets: &HashMap<String, MarketRef>,
) -> Result<(RecordBatch, Vec<(String, String)>), SchemaError> {
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
    let (flags, meta) = flags(table, records, snapshots);
    if let Some(f) = flags {
        columns.push(Arc::new(BooleanArray::from(f)));
    }
    Ok((
        RecordBatch::try_new(processed_schema(table), columns)?,
        meta,
    ))
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

    fn snapshot(source: SnapshotSource, ts: i64, size: i64) -> Record {
        Record::Snapshot(OrderbookSnapshot {
            ticker: "M".into(),
            source,
            exchange_ts: TimestampUs::from_micros(ts),
            yes: vec![Level {
                price: price(50_000),
                size: Count::new(size),
            }],
            no: vec![],
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        })
    }

    #[test]
    fn deltas_are_flagged_against_the_latest_snapshot() {
        let snap = snapshot(SnapshotSource::Ws, 10, 100);
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

    /// A REST book stamped after a delta it does not show (stale by 1 s) changes no flag of a
    /// WebSocket-based window, and is counted as agreeing.
    #[test]
    fn a_stale_rest_snapshot_is_an_audit_point_not_a_base() {
        let s = 1_000_000;
        let snaps = [
            snapshot(SnapshotSource::Ws, 10 * s, 100),
            // Shows the book before the −60 at 20 s.
            snapshot(SnapshotSource::Rest, 21 * s, 100),
        ];
        let deltas = vec![delta(20 * s, 50_000, -60, 0), delta(22 * s, 50_000, -40, 0)];
        let (flags, audit) = replay_window(&deltas, &snaps);
        assert_eq!(flags, vec![Some(true), Some(true)]);
        assert_eq!((audit.agreed, audit.disagreed, audit.unchecked), (1, 0, 0));
        // (The old rule, the REST book as a base, would have left 60 where the exchange has 0.)
        let meta = audit_meta(&audit);
        assert!(meta.contains(&("kalshi_data.rest_snapshots_agreed".into(), "1".into())));
    }

    /// A window without a WebSocket snapshot: the REST base is unknown until a later REST book
    /// agrees with it, so its deltas are flagged null until then.
    #[test]
    fn a_rest_base_is_unknown_until_confirmed() {
        let s = 1_000_000;
        let snaps = [
            snapshot(SnapshotSource::Rest, 10 * s, 100),
            snapshot(SnapshotSource::Rest, 30 * s, 150),
        ];
        let deltas = vec![delta(20 * s, 50_000, 50, 0), delta(40 * s, 50_000, -200, 0)];
        let (flags, audit) = replay_window(&deltas, &snaps);
        assert_eq!(flags, vec![None, Some(false)]);
        assert_eq!((audit.agreed, audit.disagreed, audit.unchecked), (1, 0, 1));
    }
}
