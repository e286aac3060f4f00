//! Archive Parquet files back into records: the inverse of `kd_archive::schema::raw_columns`.
//!
//! A file is read through `object_store` range requests (footer, then only the column chunks
//! asked for), with the row groups whose `ticker` statistics cannot hold a wanted market
//! skipped, so a replay of a few markets or one table's few columns fetches and decodes only
//! those.

use arrow::array::{
    Array, BooleanArray, Int64Array, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use kd_core::records::{Level, TradeSource};
use kd_core::{
    Count, Gap, Lifecycle, OrderbookDelta, OrderbookSnapshot, Price, Record, Side, SnapshotSource,
    Table, Ticker, TimestampUs, Trade,
};
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
// `ParquetObjectReader` is deprecated in parquet 60 in favour of a hand-written
// `AsyncFileReader`; it still does exactly what is needed here (ranged reads through the
// store), so it stays until the replacement is worth its code.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use parquet::file::statistics::Statistics;
use std::sync::Arc;

/// Why a file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("{path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: column `{column}` missing or not of the archive's type")]
    Column { path: String, column: &'static str },
    #[error("{path}: row {row}: {reason}")]
    Value {
        path: String,
        row: usize,
        reason: String,
    },
}

/// The columns a table's records are made of (the raw tier's, by name: columns added later are
/// not fetched).
pub fn columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Trades => &[
            "ticker",
            "exchange_ts",
            "trade_id",
            "yes_price",
            "no_price",
            "count",
            "taker_side",
            "is_block_trade",
            "source",
            "received_at",
        ],
        Table::Deltas => &[
            "ticker",
            "exchange_ts",
            "side",
            "price",
            "delta",
            "occurrence",
            "received_at",
        ],
        Table::Snapshots => &[
            "ticker",
            "exchange_ts",
            "source",
            "yes",
            "no",
            "received_at",
        ],
        Table::Tickers => &[
            "ticker",
            "exchange_ts",
            "price",
            "yes_bid",
            "yes_ask",
            "volume",
            "open_interest",
            "dollar_volume",
            "dollar_open_interest",
            "yes_bid_size",
            "yes_ask_size",
            "last_trade_size",
            "received_at",
        ],
        Table::Lifecycle => &[
            "ticker",
            "exchange_ts",
            "kind",
            "event_type",
            "payload",
            "received_at",
        ],
        Table::Gaps => &[
            "ticker",
            "exchange_ts",
            "end_ts",
            "gatherer",
            "gap_id",
            "channel",
            "reason",
            "repair",
            "tickers",
        ],
    }
}

/// Row groups of the files read: how many were fetched and decoded, of how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowGroups {
    pub read: usize,
    pub total: usize,
}

/// Reads `names` of the file at `path` (`size` bytes). `tickers` non-empty: only the row
/// groups whose `ticker` range may hold one of them (rows still need filtering).
pub async fn read_batches(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    names: &[&str],
    tickers: &[String],
) -> Result<(Vec<RecordBatch>, RowGroups), RowsError> {
    let perr = |source| RowsError::Parquet {
        path: path.to_string(),
        source,
    };
    #[allow(deprecated)]
    let reader = ParquetObjectReader::new(store.clone(), path.clone()).with_file_size(size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(perr)?;
    let meta = builder.metadata().clone();
    let schema = builder.parquet_schema();
    let mask = ProjectionMask::columns(schema, names.iter().copied());
    let ticker_col = schema.columns().iter().position(|c| c.name() == "ticker");
    let groups: Vec<usize> = (0..meta.num_row_groups())
        .filter(|&g| {
            let (Some(col), false) = (ticker_col, tickers.is_empty()) else {
                return true;
            };
            match meta.row_group(g).column(col).statistics() {
                Some(Statistics::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(lo), Some(hi)) => tickers
                        .iter()
                        .any(|t| lo.data() <= t.as_bytes() && t.as_bytes() <= hi.data()),
                    _ => true,
                },
                _ => true,
            }
        })
        .collect();
    let counted = RowGroups {
        read: groups.len(),
        total: meta.num_row_groups(),
    };
    let stream = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(perr)?;
    Ok((stream.try_collect().await.map_err(perr)?, counted))
}

struct Cols<'a> {
    batch: &'a RecordBatch,
    path: &'a str,
}

impl<'a> Cols<'a> {
    fn get<T: 'static>(&self, column: &'static str) -> Result<&'a T, RowsError> {
        self.batch
            .column_by_name(column)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| RowsError::Column {
                path: self.path.to_string(),
                column,
            })
    }
    fn s(&self, c: &'static str) -> Result<&'a StringArray, RowsError> {
        self.get(c)
    }
    fn ts(&self, c: &'static str) -> Result<&'a TimestampMicrosecondArray, RowsError> {
        self.get(c)
    }
    fn i(&self, c: &'static str) -> Result<&'a Int64Array, RowsError> {
        self.get(c)
    }
    fn bad(&self, row: usize, reason: impl std::fmt::Display) -> RowsError {
        RowsError::Value {
            path: self.path.to_string(),
            row,
            reason: reason.to_string(),
        }
    }
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn opt_i(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn t(a: &TimestampMicrosecondArray, i: usize) -> TimestampUs {
    TimestampUs::from_micros(a.value(i))
}

/// The records of one batch of `table` (all of [`columns`] read).
pub fn decode(table: Table, batch: &RecordBatch, path: &str) -> Result<Vec<Record>, RowsError> {
    let c = Cols { batch, path };
    let n = batch.num_rows();
    let mut out = Vec::with_capacity(n);
    let price = |row: usize, units: i64| Price::new(units).map_err(|e| c.bad(row, e));
    let opt_price = |row: usize, v: Option<i64>| v.map(|u| price(row, u)).transpose();
    match table {
        Table::Trades => {
            let (ticker, ts, id) = (c.s("ticker")?, c.ts("exchange_ts")?, c.s("trade_id")?);
            let (yes, no, count) = (c.i("yes_price")?, c.i("no_price")?, c.i("count")?);
            let (taker, source) = (c.s("taker_side")?, c.s("source")?);
            let block: &BooleanArray = c.get("is_block_trade")?;
            let recv = c.ts("received_at")?;
            for r in 0..n {
                let taker_side = match opt_str(taker, r) {
                    None => None,
                    Some(s) => Some(Side::parse(s).ok_or_else(|| c.bad(r, "taker_side"))?),
                };
                out.push(Record::Trade(Trade {
                    trade_id: id.value(r).to_string(),
                    ticker: ticker.value(r).to_string(),
                    exchange_ts: t(ts, r),
                    yes_price: price(r, yes.value(r))?,
                    no_price: price(r, no.value(r))?,
                    count: Count::new(count.value(r)),
                    taker_side,
                    is_block_trade: block.value(r),
                    source: match source.value(r) {
                        "rest" => TradeSource::Rest,
                        _ => TradeSource::Ws,
                    },
                    received_at: t(recv, r),
                    pos: Default::default(),
                }));
            }
        }
        Table::Deltas => {
            let (ticker, ts, side) = (c.s("ticker")?, c.ts("exchange_ts")?, c.s("side")?);
            let (p, d, recv) = (c.i("price")?, c.i("delta")?, c.ts("received_at")?);
            let occ: &UInt32Array = c.get("occurrence")?;
            for r in 0..n {
                out.push(Record::Delta(OrderbookDelta {
                    ticker: ticker.value(r).to_string(),
                    exchange_ts: t(ts, r),
                    side: Side::parse(side.value(r)).ok_or_else(|| c.bad(r, "side"))?,
                    price: price(r, p.value(r))?,
                    delta: Count::new(d.value(r)),
                    occurrence: occ.value(r),
                    received_at: t(recv, r),
                    pos: Default::default(),
                }));
            }
        }
        Table::Snapshots => {
            let (ticker, ts, source) = (c.s("ticker")?, c.ts("exchange_ts")?, c.s("source")?);
            let (yes, no): (&ListArray, &ListArray) = (c.get("yes")?, c.get("no")?);
            let recv = c.ts("received_at")?;
            let levels = |list: &ListArray, r: usize| -> Result<Vec<Level>, RowsError> {
                let value = list.value(r);
                let st = value
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .ok_or_else(|| c.bad(r, "levels are not structs"))?;
                let col = |k: usize| {
                    st.columns()
                        .get(k)
                        .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
                        .ok_or_else(|| c.bad(r, "level price/size"))
                };
                let (ps, ss) = (col(0)?, col(1)?);
                (0..st.len())
                    .map(|k| {
                        Ok(Level {
                            price: price(r, ps.value(k))?,
                            size: Count::new(ss.value(k)),
                        })
                    })
                    .collect()
            };
            for r in 0..n {
                out.push(Record::Snapshot(OrderbookSnapshot {
                    ticker: ticker.value(r).to_string(),
                    source: match source.value(r) {
                        "rest" => SnapshotSource::Rest,
                        _ => SnapshotSource::Ws,
                    },
                    exchange_ts: t(ts, r),
                    yes: levels(yes, r)?,
                    no: levels(no, r)?,
                    received_at: t(recv, r),
                    pos: Default::default(),
                }));
            }
        }
        Table::Tickers => {
            let (ticker, ts, recv) = (c.s("ticker")?, c.ts("exchange_ts")?, c.ts("received_at")?);
            let (p, bid, ask) = (c.i("price")?, c.i("yes_bid")?, c.i("yes_ask")?);
            let (vol, oi) = (c.i("volume")?, c.i("open_interest")?);
            let (dv, doi) = (c.i("dollar_volume")?, c.i("dollar_open_interest")?);
            let (bs, az, lt) = (
                c.i("yes_bid_size")?,
                c.i("yes_ask_size")?,
                c.i("last_trade_size")?,
            );
            let cnt = |a: &Int64Array, r: usize| opt_i(a, r).map(Count::new);
            for r in 0..n {
                out.push(Record::Ticker(Ticker {
                    ticker: ticker.value(r).to_string(),
                    exchange_ts: t(ts, r),
                    price: opt_price(r, opt_i(p, r))?,
                    yes_bid: opt_price(r, opt_i(bid, r))?,
                    yes_ask: opt_price(r, opt_i(ask, r))?,
                    volume: cnt(vol, r),
                    open_interest: cnt(oi, r),
                    dollar_volume: opt_i(dv, r),
                    dollar_open_interest: opt_i(doi, r),
                    yes_bid_size: cnt(bs, r),
                    yes_ask_size: cnt(az, r),
                    last_trade_size: cnt(lt, r),
                    received_at: t(recv, r),
                    pos: Default::default(),
                }));
            }
        }
        Table::Lifecycle => {
            let (subject, ts, kind) = (c.s("ticker")?, c.ts("exchange_ts")?, c.s("kind")?);
            let (et, payload, recv) = (c.s("event_type")?, c.s("payload")?, c.ts("received_at")?);
            for r in 0..n {
                out.push(Record::Lifecycle(Lifecycle {
                    subject: subject.value(r).to_string(),
                    kind: kind.value(r).to_string(),
                    event_type: et.value(r).to_string(),
                    exchange_ts: t(ts, r),
                    payload: payload.value(r).to_string(),
                    received_at: t(recv, r),
                    pos: Default::default(),
                }));
            }
        }
        Table::Gaps => {
            let (ticker, start, end) = (c.s("ticker")?, c.ts("exchange_ts")?, c.ts("end_ts")?);
            let (g, id, ch) = (c.s("gatherer")?, c.s("gap_id")?, c.s("channel")?);
            let (reason, repair, list) = (c.s("reason")?, c.s("repair")?, c.s("tickers")?);
            for r in 0..n {
                out.push(Record::Gap(Gap {
                    gatherer: g.value(r).to_string(),
                    gap_id: id.value(r).to_string(),
                    ticker: opt_str(ticker, r).map(str::to_string),
                    tickers: Gap::tickers_from_text(opt_str(list, r)).map_err(|e| c.bad(r, e))?,
                    channel: ch.value(r).to_string(),
                    start: t(start, r),
                    end: t(end, r),
                    reason: reason.value(r).to_string(),
                    repair: repair.value(r).to_string(),
                }));
            }
        }
    }
    Ok(out)
}
