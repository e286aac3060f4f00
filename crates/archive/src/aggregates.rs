//! Daily aggregates, computed from one closed UTC day of production:
//!
//! - `hourly_ohlc`: per market and hour, the YES price open/high/low/close of its trades (open
//!   and close by (exchange_ts, trade_id)), volume, trade count, notional.
//! - `daily_volume`: per market (`scope = 'market'`) and per series (`scope = 'series'`):
//!   volume, trade count, notional.
//! - `market_stats`: per market and day: trade figures plus how many deltas, snapshots,
//!   tickers and lifecycle records it had, and its last open interest.
//!
//! Records are folded in one at a time ([`DayAggregator::add`]) so a day of deltas never has to
//! be in memory at once. All sums are exact integers; notional is `Σ yes_price × count`. A
//! trade is counted once per `trade_id`, even if a copy slipped into production.

use crate::schema::{UNIT_COUNT, UNIT_NOTIONAL, UNIT_PRICE, field, ts_field};
use crate::source::MarketRef;
use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use kd_core::{Record, TimestampUs};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

const HOUR_US: i64 = 3_600_000_000;

/// Why a day could not be aggregated.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error("notional of {0} overflows 64 bits")]
    Overflow(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

#[derive(Debug, Clone, Default)]
struct Ohlc {
    open: (i64, String, i64),
    close: (i64, String, i64),
    high: i64,
    low: i64,
    volume: i64,
    trades: i64,
    notional: i128,
    first_ts: i64,
    last_ts: i64,
}

impl Ohlc {
    fn add(&mut self, ts: i64, trade_id: &str, price: i64, count: i64) {
        if self.trades == 0 {
            *self = Ohlc {
                open: (ts, trade_id.to_string(), price),
                close: (ts, trade_id.to_string(), price),
                high: price,
                low: price,
                first_ts: ts,
                last_ts: ts,
                ..Ohlc::default()
            };
        } else {
            if (ts, trade_id) < (self.open.0, self.open.1.as_str()) {
                self.open = (ts, trade_id.to_string(), price);
            }
            if (ts, trade_id) > (self.close.0, self.close.1.as_str()) {
                self.close = (ts, trade_id.to_string(), price);
            }
            self.high = self.high.max(price);
            self.low = self.low.min(price);
            self.first_ts = self.first_ts.min(ts);
            self.last_ts = self.last_ts.max(ts);
        }
        self.volume += count;
        self.trades += 1;
        self.notional += i128::from(price) * i128::from(count);
    }
}

#[derive(Debug, Clone, Default)]
struct Stats {
    day: Ohlc,
    deltas: i64,
    snapshots: i64,
    tickers: i64,
    lifecycle: i64,
    /// (exchange_ts, open interest) of the latest ticker carrying one.
    open_interest: Option<(i64, i64)>,
}

/// Folds one day of records into the three aggregates.
#[derive(Debug, Default)]
pub struct DayAggregator {
    hourly: BTreeMap<(String, i64), Ohlc>,
    markets: BTreeMap<String, Stats>,
    /// Trades counted so far: a trade is counted once even if a copy slipped into production.
    trade_ids: HashSet<String>,
}

impl DayAggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one record of the day (any table; gaps are ignored).
    pub fn add(&mut self, record: &Record) {
        match record {
            Record::Trade(t) => {
                if !self.trade_ids.insert(t.trade_id.clone()) {
                    return;
                }
                let ts = t.exchange_ts.micros();
                let hour = ts.div_euclid(HOUR_US) * HOUR_US;
                let (price, count) = (t.yes_price.units(), t.count.hundredths());
                self.hourly
                    .entry((t.ticker.clone(), hour))
                    .or_default()
                    .add(ts, &t.trade_id, price, count);
                self.stats(&t.ticker).day.add(ts, &t.trade_id, price, count);
            }
            Record::Delta(d) => self.stats(&d.ticker).deltas += 1,
            Record::Snapshot(s) => self.stats(&s.ticker).snapshots += 1,
            Record::Ticker(t) => {
                let st = self.stats(&t.ticker);
                st.tickers += 1;
                if let Some(oi) = t.open_interest {
                    let ts = t.exchange_ts.micros();
                    if st.open_interest.is_none_or(|(seen, _)| ts >= seen) {
                        st.open_interest = Some((ts, oi.hundredths()));
                    }
                }
            }
            // Event lifecycle records name an event, not a market: counted under that name.
            Record::Lifecycle(l) => self.stats(&l.subject).lifecycle += 1,
            Record::Gap(_) => {}
        }
    }

    fn stats(&mut self, ticker: &str) -> &mut Stats {
        self.markets.entry(ticker.to_string()).or_default()
    }

    /// Every market seen (for the metadata lookup).
    pub fn tickers(&self) -> Vec<String> {
        self.markets.keys().cloned().collect()
    }

    /// The three batches for `day`.
    pub fn finish(
        &self,
        day: TimestampUs,
        markets: &HashMap<String, MarketRef>,
    ) -> Result<[(crate::layout::Aggregate, RecordBatch); 3], AggregateError> {
        use crate::layout::Aggregate;
        Ok([
            (Aggregate::HourlyOhlc, self.hourly_batch(markets)?),
            (Aggregate::DailyVolume, self.daily_batch(day, markets)?),
            (Aggregate::MarketStats, self.stats_batch(day, markets)?),
        ])
    }

    fn hourly_batch(
        &self,
        markets: &HashMap<String, MarketRef>,
    ) -> Result<RecordBatch, AggregateError> {
        let rows: Vec<(&(String, i64), &Ohlc)> = self.hourly.iter().collect();
        let notional = notionals(rows.iter().map(|((t, _), o)| (t.as_str(), o.notional)))?;
        let cols: Vec<ArrayRef> = vec![
            str_col(rows.iter().map(|((t, _), _)| Some(t.as_str()))),
            opt_str_col(
                rows.iter()
                    .map(|((t, _), _)| markets.get(t).map(|m| m.event_ticker.as_str())),
            ),
            opt_str_col(
                rows.iter()
                    .map(|((t, _), _)| markets.get(t).map(|m| m.series_ticker.as_str())),
            ),
            ts_col(rows.iter().map(|((_, h), _)| *h)),
            int_col(rows.iter().map(|(_, o)| o.open.2)),
            int_col(rows.iter().map(|(_, o)| o.high)),
            int_col(rows.iter().map(|(_, o)| o.low)),
            int_col(rows.iter().map(|(_, o)| o.close.2)),
            int_col(rows.iter().map(|(_, o)| o.volume)),
            int_col(rows.iter().map(|(_, o)| o.trades)),
            Arc::new(Int64Array::from(notional)),
            ts_col(rows.iter().map(|(_, o)| o.first_ts)),
            ts_col(rows.iter().map(|(_, o)| o.last_ts)),
        ];
        Ok(RecordBatch::try_new(hourly_ohlc_schema(), cols)?)
    }

    fn daily_batch(
        &self,
        day: TimestampUs,
        markets: &HashMap<String, MarketRef>,
    ) -> Result<RecordBatch, AggregateError> {
        // (scope, key, event, series, volume, trades, notional)
        type Row = (
            &'static str,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
            i128,
        );
        let mut rows: Vec<Row> = Vec::new();
        let mut series: BTreeMap<String, (i64, i64, i128)> = BTreeMap::new();
        for (ticker, st) in &self.markets {
            if st.day.trades == 0 {
                continue;
            }
            let m = markets.get(ticker);
            rows.push((
                "market",
                ticker.clone(),
                m.map(|m| m.event_ticker.clone()),
                m.map(|m| m.series_ticker.clone()),
                st.day.volume,
                st.day.trades,
                st.day.notional,
            ));
            if let Some(m) = m {
                let s = series.entry(m.series_ticker.clone()).or_default();
                s.0 += st.day.volume;
                s.1 += st.day.trades;
                s.2 += st.day.notional;
            }
        }
        for (name, (volume, trades, notional)) in series {
            rows.push((
                "series",
                name.clone(),
                None,
                Some(name),
                volume,
                trades,
                notional,
            ));
        }
        let notional = notionals(rows.iter().map(|r| (r.1.as_str(), r.6)))?;
        let cols: Vec<ArrayRef> = vec![
            str_col(rows.iter().map(|r| Some(r.0))),
            str_col(rows.iter().map(|r| Some(r.1.as_str()))),
            opt_str_col(rows.iter().map(|r| r.2.as_deref())),
            opt_str_col(rows.iter().map(|r| r.3.as_deref())),
            ts_col(rows.iter().map(|_| day.micros())),
            int_col(rows.iter().map(|r| r.4)),
            int_col(rows.iter().map(|r| r.5)),
            Arc::new(Int64Array::from(notional)),
        ];
        Ok(RecordBatch::try_new(daily_volume_schema(), cols)?)
    }

    fn stats_batch(
        &self,
        day: TimestampUs,
        markets: &HashMap<String, MarketRef>,
    ) -> Result<RecordBatch, AggregateError> {
        let rows: Vec<(&String, &Stats)> = self.markets.iter().collect();
        let traded = |s: &Stats| s.day.trades > 0;
        let notional = notionals(rows.iter().map(|(t, s)| (t.as_str(), s.day.notional)))?;
        let cols: Vec<ArrayRef> = vec![
            str_col(rows.iter().map(|(t, _)| Some(t.as_str()))),
            opt_str_col(
                rows.iter()
                    .map(|(t, _)| markets.get(*t).map(|m| m.event_ticker.as_str())),
            ),
            opt_str_col(
                rows.iter()
                    .map(|(t, _)| markets.get(*t).map(|m| m.series_ticker.as_str())),
            ),
            ts_col(rows.iter().map(|_| day.micros())),
            int_col(rows.iter().map(|(_, s)| s.day.trades)),
            int_col(rows.iter().map(|(_, s)| s.day.volume)),
            Arc::new(Int64Array::from(notional)),
            opt_int_col(rows.iter().map(|(_, s)| traded(s).then_some(s.day.open.2))),
            opt_int_col(rows.iter().map(|(_, s)| traded(s).then_some(s.day.high))),
            opt_int_col(rows.iter().map(|(_, s)| traded(s).then_some(s.day.low))),
            opt_int_col(rows.iter().map(|(_, s)| traded(s).then_some(s.day.close.2))),
            int_col(rows.iter().map(|(_, s)| s.deltas)),
            int_col(rows.iter().map(|(_, s)| s.snapshots)),
            int_col(rows.iter().map(|(_, s)| s.tickers)),
            int_col(rows.iter().map(|(_, s)| s.lifecycle)),
            opt_int_col(rows.iter().map(|(_, s)| s.open_interest.map(|(_, oi)| oi))),
        ];
        Ok(RecordBatch::try_new(market_stats_schema(), cols)?)
    }
}

fn notionals<'a>(it: impl Iterator<Item = (&'a str, i128)>) -> Result<Vec<i64>, AggregateError> {
    it.map(|(key, n)| i64::try_from(n).map_err(|_| AggregateError::Overflow(key.to_string())))
        .collect()
}

fn str_col<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(it))
}

fn opt_str_col<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(it))
}

fn int_col(it: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(it))
}

fn opt_int_col(it: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(it))
}

fn ts_col(it: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(it).with_timezone("UTC"))
}

fn hier() -> [arrow::datatypes::Field; 3] {
    [
        field("ticker", DataType::Utf8, false, None),
        field("event_ticker", DataType::Utf8, true, None),
        field("series_ticker", DataType::Utf8, true, None),
    ]
}

/// Schema of `aggregates/hourly_ohlc`.
pub fn hourly_ohlc_schema() -> SchemaRef {
    let p = |n: &str| field(n, DataType::Int64, false, Some(UNIT_PRICE));
    let mut f = hier().to_vec();
    f.extend([
        ts_field("hour"),
        p("open"),
        p("high"),
        p("low"),
        p("close"),
        field("volume", DataType::Int64, false, Some(UNIT_COUNT)),
        field("trade_count", DataType::Int64, false, None),
        field("notional", DataType::Int64, false, Some(UNIT_NOTIONAL)),
        ts_field("first_trade_ts"),
        ts_field("last_trade_ts"),
    ]);
    Arc::new(Schema::new(f))
}

/// Schema of `aggregates/daily_volume`.
pub fn daily_volume_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("scope", DataType::Utf8, false, None),
        field("key", DataType::Utf8, false, None),
        field("event_ticker", DataType::Utf8, true, None),
        field("series_ticker", DataType::Utf8, true, None),
        ts_field("day"),
        field("volume", DataType::Int64, false, Some(UNIT_COUNT)),
        field("trade_count", DataType::Int64, false, None),
        field("notional", DataType::Int64, false, Some(UNIT_NOTIONAL)),
    ]))
}

/// Schema of `aggregates/market_stats`.
pub fn market_stats_schema() -> SchemaRef {
    let p = |n: &str| field(n, DataType::Int64, true, Some(UNIT_PRICE));
    let n = |name: &str| field(name, DataType::Int64, false, None);
    let mut f = hier().to_vec();
    f.extend([
        ts_field("day"),
        n("trade_count"),
        field("volume", DataType::Int64, false, Some(UNIT_COUNT)),
        field("notional", DataType::Int64, false, Some(UNIT_NOTIONAL)),
        p("open"),
        p("high"),
        p("low"),
        p("close"),
        n("delta_count"),
        n("snapshot_count"),
        n("ticker_count"),
        n("lifecycle_count"),
        field(
            "last_open_interest",
            DataType::Int64,
            true,
            Some(UNIT_COUNT),
        ),
    ]);
    Arc::new(Schema::new(f))
}
