//! The one decoding of a stored row into a [`Record`], for both backends.
//!
//! PostgreSQL and SQLite return the same columns in the same order (see each backend's
//! `read.rs`), except for snapshot levels (four `bigint[]` columns in PostgreSQL, two JSON
//! text columns in SQLite). A backend implements [`StoredRow`] for its row type (how to read
//! one column); which column holds what, and how it becomes a record field, is written here
//! once.

use crate::error::StoreError;
use crate::rows::{occurrence, opt_price, opt_side, price, side, snapshot_source, trade_source};
use kd_core::records::{
    Gap, Level, Lifecycle, OrderbookDelta, OrderbookSnapshot, Ticker, Trade, WirePos,
};
use kd_core::{Count, Record, Table, TimestampUs};

/// One row of a backend's result set, read column by column (0-based).
pub(crate) trait StoredRow {
    fn int(&self, column: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, column: usize) -> Result<Option<i64>, StoreError>;
    fn boolean(&self, column: usize) -> Result<bool, StoreError>;
    fn text(&self, column: usize) -> Result<String, StoreError>;
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError>;
    /// Calls `f` with a text column without copying it (enums stored as text).
    fn with_text<T>(
        &self,
        column: usize,
        f: impl FnOnce(&str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Calls `f` with a nullable text column without copying it.
    fn with_opt_text<T>(
        &self,
        column: usize,
        f: impl FnOnce(Option<&str>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// The YES and NO levels of a snapshot stored from `column` on, and how many columns
    /// they take.
    fn levels(&self, column: usize) -> Result<(Vec<Level>, Vec<Level>, usize), StoreError>;
}

/// Reads the columns of a row in order, so the decoder below lists fields, not positions.
struct Columns<'r, R> {
    row: &'r R,
    next: usize,
}

impl<R: StoredRow> Columns<'_, R> {
    fn take(&mut self) -> usize {
        let c = self.next;
        self.next += 1;
        c
    }
    fn int(&mut self) -> Result<i64, StoreError> {
        let c = self.take();
        self.row.int(c)
    }
    fn opt_int(&mut self) -> Result<Option<i64>, StoreError> {
        let c = self.take();
        self.row.opt_int(c)
    }
    fn ts(&mut self) -> Result<TimestampUs, StoreError> {
        self.int().map(TimestampUs::from_micros)
    }
    fn count(&mut self) -> Result<Count, StoreError> {
        self.int().map(Count::new)
    }
    fn opt_count(&mut self) -> Result<Option<Count>, StoreError> {
        Ok(self.opt_int()?.map(Count::new))
    }
    fn boolean(&mut self) -> Result<bool, StoreError> {
        let c = self.take();
        self.row.boolean(c)
    }
    fn text(&mut self) -> Result<String, StoreError> {
        let c = self.take();
        self.row.text(c)
    }
    fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        let c = self.take();
        self.row.opt_text(c)
    }
    fn parse<T>(&mut self, f: impl FnOnce(&str) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let c = self.take();
        self.row.with_text(c, f)
    }
    fn parse_opt<T>(
        &mut self,
        f: impl FnOnce(Option<&str>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let c = self.take();
        self.row.with_opt_text(c, f)
    }
    fn levels(&mut self) -> Result<(Vec<Level>, Vec<Level>), StoreError> {
        let (yes, no, used) = self.row.levels(self.next)?;
        self.next += used;
        Ok((yes, no))
    }
}

/// Decodes a row of `table`'s window query (the column lists of the backends' `read.rs`).
/// Diagnostics (`sid`/`seq`) are not stored, so they come back empty.
pub(crate) fn decode<R: StoredRow>(table: Table, row: &R) -> Result<Record, StoreError> {
    let mut c = Columns { row, next: 0 };
    Ok(match table {
        Table::Trades => Record::Trade(Trade {
            trade_id: c.text()?,
            ticker: c.text()?,
            exchange_ts: c.ts()?,
            yes_price: price(table, c.int()?)?,
            no_price: price(table, c.int()?)?,
            count: c.count()?,
            taker_side: c.parse_opt(|t| opt_side(table, t))?,
            is_block_trade: c.boolean()?,
            source: c.parse(trade_source)?,
            received_at: c.ts()?,
            pos: WirePos::default(),
        }),
        Table::Deltas => Record::Delta(OrderbookDelta {
            ticker: c.text()?,
            exchange_ts: c.ts()?,
            side: c.parse(|t| side(table, t))?,
            price: price(table, c.int()?)?,
            delta: c.count()?,
            occurrence: occurrence(c.int()?)?,
            received_at: c.ts()?,
            pos: WirePos::default(),
        }),
        Table::Snapshots => {
            let ticker = c.text()?;
            let source = c.parse(snapshot_source)?;
            let exchange_ts = c.ts()?;
            let (yes, no) = c.levels()?;
            Record::Snapshot(OrderbookSnapshot {
                ticker,
                source,
                exchange_ts,
                yes,
                no,
                received_at: c.ts()?,
                pos: WirePos::default(),
            })
        }
        Table::Tickers => Record::Ticker(Ticker {
            ticker: c.text()?,
            exchange_ts: c.ts()?,
            price: opt_price(table, c.opt_int()?)?,
            yes_bid: opt_price(table, c.opt_int()?)?,
            yes_ask: opt_price(table, c.opt_int()?)?,
            volume: c.opt_count()?,
            open_interest: c.opt_count()?,
            dollar_volume: c.opt_int()?,
            dollar_open_interest: c.opt_int()?,
            yes_bid_size: c.opt_count()?,
            yes_ask_size: c.opt_count()?,
            last_trade_size: c.opt_count()?,
            received_at: c.ts()?,
            pos: WirePos::default(),
        }),
        Table::Lifecycle => Record::Lifecycle(Lifecycle {
            subject: c.text()?,
            kind: c.text()?,
            event_type: c.text()?,
            exchange_ts: c.ts()?,
            payload: c.text()?,
            received_at: c.ts()?,
            pos: WirePos::default(),
        }),
        Table::Gaps => Record::Gap(Gap {
            gatherer: c.text()?,
            gap_id: c.text()?,
            ticker: c.opt_text()?,
            channel: c.text()?,
            start: c.ts()?,
            end: c.ts()?,
            reason: c.text()?,
            repair: c.text()?,
            tickers: c.parse_opt(|t| {
                Gap::tickers_from_text(t).map_err(|e| StoreError::Corrupt {
                    table: table.name(),
                    reason: format!("gap market list: {e}"),
                })
            })?,
        }),
    })
}
