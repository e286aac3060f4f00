//! Arrow schemas of the archive and the conversion of records into record batches.
//!
//! Units are exact integers, as in production (DESIGN §2), and each column states its unit in
//! its Arrow field metadata (`unit`), which the Parquet writer also copies into the file's
//! key-value metadata as `unit.<column>`. Times are Parquet `TIMESTAMP(MICROS, UTC)`, so DuckDB
//! and pandas see real timestamps without conversion.

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, Int64Builder, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use kd_core::records::Level;
use kd_core::{Record, Table};
use std::collections::HashMap;
use std::sync::Arc;

/// Unit of a price column.
pub const UNIT_PRICE: &str =
    "hundred-thousandths of a dollar (integer, 0..=100000; 52500 = $0.525)";
/// Unit of a contract count column.
pub const UNIT_COUNT: &str = "hundredths of a contract (integer; 3154 = 31.54 contracts)";
/// Unit of a timestamp column.
pub const UNIT_TIME: &str = "microseconds since the Unix epoch, UTC";
/// Unit of a whole-dollar column.
pub const UNIT_DOLLARS: &str = "whole dollars (integer)";
/// Unit of a notional column (price × count).
pub const UNIT_NOTIONAL: &str = "price units × count units (hundred-thousandths of a dollar × hundredths of a contract); divide by 10^7 for dollars";

/// Why records could not become a batch.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("a {found} record in the {expected} window")]
    WrongTable { expected: Table, found: Table },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// A column's type and unit, the building block of every schema here.
pub(crate) fn field(name: &str, data_type: DataType, nullable: bool, unit: Option<&str>) -> Field {
    let f = Field::new(name, data_type, nullable);
    match unit {
        Some(u) => f.with_metadata(HashMap::from([("unit".to_string(), u.to_string())])),
        None => f,
    }
}

pub(crate) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn ts_field(name: &str) -> Field {
    field(name, ts_type(), false, Some(UNIT_TIME))
}

fn level_fields() -> Fields {
    Fields::from(vec![
        field("price", DataType::Int64, false, Some(UNIT_PRICE)),
        field("size", DataType::Int64, false, Some(UNIT_COUNT)),
    ])
}

fn levels_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "level",
        DataType::Struct(level_fields()),
        false,
    )))
}

/// The raw schema of a table: production's columns, nothing added.
pub fn raw_fields(table: Table) -> Vec<Field> {
    let s = |n: &str| field(n, DataType::Utf8, false, None);
    let so = |n: &str| field(n, DataType::Utf8, true, None);
    let price = |n: &str, null: bool| field(n, DataType::Int64, null, Some(UNIT_PRICE));
    let count = |n: &str, null: bool| field(n, DataType::Int64, null, Some(UNIT_COUNT));
    match table {
        Table::Trades => vec![
            s("ticker"),
            ts_field("exchange_ts"),
            s("trade_id"),
            price("yes_price", false),
            price("no_price", false),
            count("count", false),
            so("taker_side"),
            field("is_block_trade", DataType::Boolean, false, None),
            s("source"),
            ts_field("received_at"),
        ],
        Table::Deltas => vec![
            s("ticker"),
            ts_field("exchange_ts"),
            s("side"),
            price("price", false),
            count("delta", false),
            field("occurrence", DataType::UInt32, false, None),
            ts_field("received_at"),
        ],
        Table::Snapshots => vec![
            s("ticker"),
            ts_field("exchange_ts"),
            s("source"),
            field("yes", levels_type(), false, None),
            field("no", levels_type(), false, None),
            ts_field("received_at"),
        ],
        Table::Tickers => vec![
            s("ticker"),
            ts_field("exchange_ts"),
            price("price", true),
            price("yes_bid", true),
            price("yes_ask", true),
            count("volume", true),
            count("open_interest", true),
            field("dollar_volume", DataType::Int64, true, Some(UNIT_DOLLARS)),
            field(
                "dollar_open_interest",
                DataType::Int64,
                true,
                Some(UNIT_DOLLARS),
            ),
            count("yes_bid_size", true),
            count("yes_ask_size", true),
            count("last_trade_size", true),
            ts_field("received_at"),
        ],
        Table::Lifecycle => vec![
            // `ticker` is the subject: a market ticker (`market_lifecycle_v2`,
            // `multivariate_market_lifecycle`), or an event ticker (`event_lifecycle`,
            // `event_fee_update`). `kind` is open text: new kinds pass through unchanged.
            s("ticker"),
            ts_field("exchange_ts"),
            s("kind"),
            s("event_type"),
            s("payload"),
            ts_field("received_at"),
        ],
        Table::Gaps => vec![
            so("ticker"),
            ts_field("exchange_ts"),
            ts_field("end_ts"),
            s("gatherer"),
            s("gap_id"),
            s("channel"),
            s("reason"),
            s("repair"),
            // The markets of a record that names several (a JSON array), null otherwise.
            so("tickers"),
        ],
    }
}

/// The raw schema as an Arrow schema.
pub fn raw_schema(table: Table) -> SchemaRef {
    Arc::new(Schema::new(raw_fields(table)))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

fn opt_strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(it))
}

fn times(it: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(it).with_timezone("UTC"))
}

fn ints(it: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(it))
}

fn opt_ints(it: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(it))
}

fn levels(books: &[&[Level]]) -> Result<ArrayRef, SchemaError> {
    let mut prices = Int64Builder::new();
    let mut sizes = Int64Builder::new();
    let mut lengths = Vec::with_capacity(books.len());
    for book in books {
        lengths.push(book.len());
        for level in *book {
            prices.append_value(level.price.units());
            sizes.append_value(level.size.hundredths());
        }
    }
    let values = StructArray::try_new(
        level_fields(),
        vec![
            Arc::new(prices.finish()) as ArrayRef,
            Arc::new(sizes.finish()),
        ],
        None,
    )?;
    let list = ListArray::try_new(
        Arc::new(Field::new("level", DataType::Struct(level_fields()), false)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(values),
        None,
    )?;
    Ok(Arc::new(list))
}

/// Typed views of a slice of records of one table.
macro_rules! typed {
    ($records:expr, $variant:path, $table:expr) => {{
        let mut out = Vec::with_capacity($records.len());
        for r in $records {
            match r {
                $variant(x) => out.push(x),
                other => {
                    return Err(SchemaError::WrongTable {
                        expected: $table,
                        found: other.table(),
                    });
                }
            }
        }
        out
    }};
}

/// The raw columns of `records` (all of `table`), in [`raw_fields`] order.
pub fn raw_columns(table: Table, records: &[Record]) -> Result<Vec<ArrayRef>, SchemaError> {
    Ok(match table {
        Table::Trades => {
            let v = typed!(records, Record::Trade, table);
            vec![
                strings(v.iter().map(|t| t.ticker.as_str())),
                times(v.iter().map(|t| t.exchange_ts.micros())),
                strings(v.iter().map(|t| t.trade_id.as_str())),
                ints(v.iter().map(|t| t.yes_price.units())),
                ints(v.iter().map(|t| t.no_price.units())),
                ints(v.iter().map(|t| t.count.hundredths())),
                opt_strings(v.iter().map(|t| t.taker_side.map(|s| s.as_str()))),
                Arc::new(BooleanArray::from_iter(
                    v.iter().map(|t| Some(t.is_block_trade)),
                )),
                strings(v.iter().map(|t| match t.source {
                    kd_core::records::TradeSource::Ws => "ws",
                    kd_core::records::TradeSource::Rest => "rest",
                })),
                times(v.iter().map(|t| t.received_at.micros())),
            ]
        }
        Table::Deltas => {
            let v = typed!(records, Record::Delta, table);
            vec![
                strings(v.iter().map(|d| d.ticker.as_str())),
                times(v.iter().map(|d| d.exchange_ts.micros())),
                strings(v.iter().map(|d| d.side.as_str())),
                ints(v.iter().map(|d| d.price.units())),
                ints(v.iter().map(|d| d.delta.hundredths())),
                Arc::new(UInt32Array::from_iter_values(
                    v.iter().map(|d| d.occurrence),
                )),
                times(v.iter().map(|d| d.received_at.micros())),
            ]
        }
        Table::Snapshots => {
            let v = typed!(records, Record::Snapshot, table);
            let yes: Vec<&[Level]> = v.iter().map(|s| s.yes.as_slice()).collect();
            let no: Vec<&[Level]> = v.iter().map(|s| s.no.as_slice()).collect();
            vec![
                strings(v.iter().map(|s| s.ticker.as_str())),
                times(v.iter().map(|s| s.exchange_ts.micros())),
                strings(v.iter().map(|s| s.source.as_str())),
                levels(&yes)?,
                levels(&no)?,
                times(v.iter().map(|s| s.received_at.micros())),
            ]
        }
        Table::Tickers => {
            let v = typed!(records, Record::Ticker, table);
            let p = |f: fn(&kd_core::Ticker) -> Option<kd_core::Price>| {
                opt_ints(v.iter().map(move |t| f(t).map(kd_core::Price::units)))
            };
            let c = |f: fn(&kd_core::Ticker) -> Option<kd_core::Count>| {
                opt_ints(v.iter().map(move |t| f(t).map(kd_core::Count::hundredths)))
            };
            vec![
                strings(v.iter().map(|t| t.ticker.as_str())),
                times(v.iter().map(|t| t.exchange_ts.micros())),
                p(|t| t.price),
                p(|t| t.yes_bid),
                p(|t| t.yes_ask),
                c(|t| t.volume),
                c(|t| t.open_interest),
                opt_ints(v.iter().map(|t| t.dollar_volume)),
                opt_ints(v.iter().map(|t| t.dollar_open_interest)),
                c(|t| t.yes_bid_size),
                c(|t| t.yes_ask_size),
                c(|t| t.last_trade_size),
                times(v.iter().map(|t| t.received_at.micros())),
            ]
        }
        Table::Lifecycle => {
            let v = typed!(records, Record::Lifecycle, table);
            vec![
                strings(v.iter().map(|l| l.subject.as_str())),
                times(v.iter().map(|l| l.exchange_ts.micros())),
                strings(v.iter().map(|l| l.kind.as_str())),
                strings(v.iter().map(|l| l.event_type.as_str())),
                strings(v.iter().map(|l| l.payload.as_str())),
                times(v.iter().map(|l| l.received_at.micros())),
            ]
        }
        Table::Gaps => {
            let v = typed!(records, Record::Gap, table);
            vec![
                opt_strings(v.iter().map(|g| g.ticker.as_deref())),
                times(v.iter().map(|g| g.start.micros())),
                times(v.iter().map(|g| g.end.micros())),
                strings(v.iter().map(|g| g.gatherer.as_str())),
                strings(v.iter().map(|g| g.gap_id.as_str())),
                strings(v.iter().map(|g| g.channel.as_str())),
                strings(v.iter().map(|g| g.reason.as_str())),
                strings(v.iter().map(|g| g.repair.as_str())),
                opt_strings(
                    v.iter()
                        .map(|g| g.tickers_text())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(Option::as_deref),
                ),
            ]
        }
    })
}

/// The raw batch of `records` (all of `table`).
pub fn raw_batch(table: Table, records: &[Record]) -> Result<RecordBatch, SchemaError> {
    Ok(RecordBatch::try_new(
        raw_schema(table),
        raw_columns(table, records)?,
    )?)
}

/// The sort key every file is ordered by: (ticker, exchange_ts). Lifecycle sorts by its
/// subject; gaps without a ticker (whole-feed gaps, and records naming several markets in
/// `tickers`) sort first.
pub fn sort_key(record: &Record) -> (&str, i64) {
    let ticker = match record {
        Record::Trade(t) => t.ticker.as_str(),
        Record::Delta(d) => d.ticker.as_str(),
        Record::Snapshot(s) => s.ticker.as_str(),
        Record::Ticker(t) => t.ticker.as_str(),
        Record::Lifecycle(l) => l.subject.as_str(),
        Record::Gap(g) => g.ticker.as_deref().unwrap_or(""),
    };
    (ticker, record.exchange_ts().micros())
}

/// A row as an independent reader of the archive names it (`tests/archive_rows.py`): its
/// [`sort_key`] and, for a trade or a gap, its id. Tests compare the archive with production
/// row by row with it.
pub fn row_name(record: &Record) -> (String, i64, String) {
    let (ticker, ts) = sort_key(record);
    let id = match record {
        Record::Trade(t) => t.trade_id.clone(),
        Record::Gap(g) => g.gap_id.clone(),
        _ => String::new(),
    };
    (ticker.to_string(), ts, id)
}

/// Sorts records by [`sort_key`], stable so production's order breaks ties.
///
/// Comparing tickers as strings dominated a window's export (≈ 20 string comparisons per row),
/// so each distinct ticker is ranked once and rows are sorted by (rank, time, position) —
/// small integer keys, the same order. A window read already sorted (production's own query
/// orders by ticker and time) is detected in one pass and left alone.
pub fn sort_records(records: &mut [Record]) {
    if records.is_sorted_by(|a, b| sort_key(a) <= sort_key(b)) {
        return;
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut keys: Vec<(u32, i64, u32)> = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let (ticker, ts) = sort_key(r);
        let next = ids.len() as u32;
        let id = *ids.entry(ticker).or_insert(next);
        keys.push((id, ts, i as u32));
    }
    let mut by_name: Vec<(&str, u32)> = ids.into_iter().collect();
    by_name.sort_unstable();
    let mut rank = vec![0_u32; by_name.len()];
    for (r, (_, id)) in by_name.iter().enumerate() {
        rank[*id as usize] = r as u32;
    }
    for k in &mut keys {
        k.0 = rank[k.0 as usize];
    }
    // The position makes every key distinct, so an unstable sort gives the stable order.
    keys.sort_unstable();
    let order: Vec<usize> = keys.iter().map(|k| k.2 as usize).collect();
    drop(keys);
    permute(records, order);
}

/// Reorders `items` in place so that the new `items[i]` is the old `items[order[i]]`
/// (`order` a permutation), following each cycle once.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut cur = start;
        // `order[cur] == cur` marks a slot already in place.
        while order[cur] != start {
            let from = order[cur];
            items.swap(cur, from);
            order[cur] = cur;
            cur = from;
        }
        order[cur] = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::records::{OrderbookDelta, WirePos};
    use kd_core::{Count, Price, Side, TimestampUs};

    fn delta(ticker: &str, ts: i64, occurrence: u32) -> Record {
        Record::Delta(OrderbookDelta {
            ticker: ticker.to_string(),
            exchange_ts: TimestampUs::from_micros(ts),
            side: Side::Yes,
            price: Price::ONE_DOLLAR,
            delta: Count::new(100),
            occurrence,
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        })
    }

    #[test]
    fn sort_records_matches_a_stable_sort_by_ticker_then_time() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut records: Vec<Record> = (0..5_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Few tickers and few times, so ties (kept in input order) are common.
                delta(&format!("T{}", x % 37), (x >> 8) as i64 % 50, i)
            })
            .collect();
        let mut expected = records.clone();
        expected.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        sort_records(&mut records);
        assert_eq!(records, expected);
        // Sorting sorted rows changes nothing.
        sort_records(&mut records);
        assert_eq!(records, expected);
    }

    #[test]
    fn permute_applies_every_cycle() {
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        permute(&mut items, vec![2, 0, 1, 5, 4, 3]);
        assert_eq!(items, vec!['c', 'a', 'b', 'f', 'e', 'd']);
    }
}
