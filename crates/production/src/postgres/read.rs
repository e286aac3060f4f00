//! Reading production back: windows of records (exporter, verify, book), counts, and the
//! oldest record of a table.

use super::PgStore;
use crate::decode::{StoredRow, decode};
use crate::error::StoreError;
use crate::queries::{count_sql, oldest_sql};
use crate::rows::levels_from_arrays;
use kd_core::records::{Level, SNAPSHOT_BUCKET_US};
use kd_core::{Record, Table, TimestampUs};
use tokio_postgres::Row;

const fn window_sql(table: Table) -> &'static str {
    match table {
        Table::Trades => {
            "SELECT trade_id, ticker, exchange_ts, yes_price, no_price, count, taker_side,
               is_block_trade, source, received_at
             FROM trades WHERE exchange_ts >= $1 AND exchange_ts < $2
             ORDER BY ticker, exchange_ts, trade_id"
        }
        Table::Deltas => {
            "SELECT ticker, exchange_ts, side, price, delta, occurrence, received_at
             FROM orderbook_deltas WHERE exchange_ts >= $1 AND exchange_ts < $2
             ORDER BY ticker, exchange_ts, side, price, delta, occurrence"
        }
        // The bucket bounds let PostgreSQL prune partitions (snapshots partition on bucket).
        Table::Snapshots => {
            "SELECT ticker, source, exchange_ts, yes_prices, yes_sizes, no_prices, no_sizes,
               received_at
             FROM orderbook_snapshots
             WHERE exchange_ts >= $1 AND exchange_ts < $2 AND bucket >= $3 AND bucket <= $4
             ORDER BY ticker, exchange_ts, source, book_hash"
        }
        Table::Tickers => {
            "SELECT ticker, exchange_ts, price, yes_bid, yes_ask, volume, open_interest,
               dollar_volume, dollar_open_interest, yes_bid_size, yes_ask_size, last_trade_size,
               received_at
             FROM tickers WHERE exchange_ts >= $1 AND exchange_ts < $2
             ORDER BY ticker, exchange_ts, values_hash"
        }
        Table::Lifecycle => {
            "SELECT subject, kind, event_type, exchange_ts, payload, received_at
             FROM lifecycle WHERE exchange_ts >= $1 AND exchange_ts < $2
             ORDER BY subject, exchange_ts, event_type, payload_hash"
        }
        Table::Gaps => {
            "SELECT gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair, tickers
             FROM gaps WHERE start_ts >= $1 AND start_ts < $2
             ORDER BY ticker NULLS FIRST, start_ts, gatherer, gap_id"
        }
    }
}

impl PgStore {
    pub async fn read_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> Result<Vec<Record>, StoreError> {
        let client = self.client().await?;
        let (lo, hi) = (from.micros(), to.micros());
        let rows = if table == Table::Snapshots {
            let (blo, bhi) = (
                lo.div_euclid(SNAPSHOT_BUCKET_US),
                hi.div_euclid(SNAPSHOT_BUCKET_US),
            );
            client
                .query(window_sql(table), &[&lo, &hi, &blo, &bhi])
                .await?
        } else {
            client.query(window_sql(table), &[&lo, &hi]).await?
        };
        rows.iter().map(|row| decode(table, row)).collect()
    }

    pub async fn count(&self, table: Table) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client.query_one(count_sql(table), &[]).await?.get(0);
        Ok(n.max(0) as u64)
    }

    pub async fn oldest(&self, table: Table) -> Result<Option<TimestampUs>, StoreError> {
        let client = self.client().await?;
        let min: Option<i64> = client.query_one(oldest_sql(table), &[]).await?.try_get(0)?;
        Ok(min.map(TimestampUs::from_micros))
    }
}

/// `tokio_postgres` columns for the shared decoder.
impl StoredRow for Row {
    fn int(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn boolean(&self, column: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: usize) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn with_text<T>(
        &self,
        column: usize,
        f: impl FnOnce(&str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(self.try_get::<_, &str>(column)?)
    }
    fn with_opt_text<T>(
        &self,
        column: usize,
        f: impl FnOnce(Option<&str>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(self.try_get::<_, Option<&str>>(column)?)
    }
    /// Four `bigint[]` columns: YES prices, YES sizes, NO prices, NO sizes.
    fn levels(&self, column: usize) -> Result<(Vec<Level>, Vec<Level>, usize), StoreError> {
        let array = |c: usize| -> Result<Vec<i64>, StoreError> { Ok(self.try_get(column + c)?) };
        let yes = levels_from_arrays(&array(0)?, &array(1)?)?;
        let no = levels_from_arrays(&array(2)?, &array(3)?)?;
        Ok((yes, no, 4))
    }
}
