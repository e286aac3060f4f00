//! Reading the SQLite store back: windows of records, counts, the oldest record of a table.

use super::SqliteStore;
use crate::decode::{StoredRow, decode};
use crate::error::StoreError;
use crate::queries::{count_sql, oldest_sql};
use crate::rows::levels_from_json;
use kd_core::records::Level;
use kd_core::{Record, Table, TimestampUs};
use rusqlite::Row;

const fn window_sql(table: Table) -> &'static str {
    match table {
        Table::Trades => {
            "SELECT trade_id, ticker, exchange_ts, yes_price, no_price, count, taker_side,
               is_block_trade, source, received_at
             FROM trades WHERE exchange_ts >= ?1 AND exchange_ts < ?2
             ORDER BY ticker, exchange_ts, trade_id"
        }
        Table::Deltas => {
            "SELECT ticker, exchange_ts, side, price, delta, occurrence, received_at
             FROM orderbook_deltas WHERE exchange_ts >= ?1 AND exchange_ts < ?2
             ORDER BY ticker, exchange_ts, side, price, delta, occurrence"
        }
        Table::Snapshots => {
            "SELECT ticker, source, exchange_ts, yes_levels, no_levels, received_at
             FROM orderbook_snapshots WHERE exchange_ts >= ?1 AND exchange_ts < ?2
             ORDER BY ticker, exchange_ts, source, book_hash"
        }
        Table::Tickers => {
            "SELECT ticker, exchange_ts, price, yes_bid, yes_ask, volume, open_interest,
               dollar_volume, dollar_open_interest, yes_bid_size, yes_ask_size, last_trade_size,
               received_at
             FROM tickers WHERE exchange_ts >= ?1 AND exchange_ts < ?2
             ORDER BY ticker, exchange_ts, values_hash"
        }
        Table::Lifecycle => {
            "SELECT subject, kind, event_type, exchange_ts, payload, received_at
             FROM lifecycle WHERE exchange_ts >= ?1 AND exchange_ts < ?2
             ORDER BY subject, exchange_ts, event_type, payload_hash"
        }
        Table::Gaps => {
            "SELECT gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair, tickers
             FROM gaps WHERE start_ts >= ?1 AND start_ts < ?2
             ORDER BY ticker NULLS FIRST, start_ts, gatherer, gap_id"
        }
    }
}

impl SqliteStore {
    pub async fn read_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(window_sql(table))?;
            let mut rows = stmt.query([from.micros(), to.micros()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(decode(table, row)?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn count(&self, table: Table) -> Result<u64, StoreError> {
        self.with(move |c| {
            let n: i64 = c.query_row(count_sql(table), [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    pub async fn oldest(&self, table: Table) -> Result<Option<TimestampUs>, StoreError> {
        self.with(move |c| {
            let min: Option<i64> = c.query_row(oldest_sql(table), [], |r| r.get(0))?;
            Ok(min.map(TimestampUs::from_micros))
        })
        .await
    }
}

/// `rusqlite` columns for the shared decoder.
impl StoredRow for Row<'_> {
    fn int(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_int(&self, column: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(column)?)
    }
    fn boolean(&self, column: usize) -> Result<bool, StoreError> {
        Ok(self.get(column)?)
    }
    fn text(&self, column: usize) -> Result<String, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(column)?)
    }
    fn with_text<T>(
        &self,
        column: usize,
        f: impl FnOnce(&str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.get::<_, String>(column)?)
    }
    fn with_opt_text<T>(
        &self,
        column: usize,
        f: impl FnOnce(Option<&str>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(self.get::<_, Option<String>>(column)?.as_deref())
    }
    /// Two JSON text columns `[[price, size], …]`: YES, then NO.
    fn levels(&self, column: usize) -> Result<(Vec<Level>, Vec<Level>, usize), StoreError> {
        let yes = levels_from_json(&self.get::<_, String>(column)?)?;
        let no = levels_from_json(&self.get::<_, String>(column + 1)?)?;
        Ok((yes, no, 2))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::open;
    use kd_core::records::{TradeSource, WirePos};
    use kd_core::{Count, Price, Record, Table, TimestampUs, Trade};

    fn trade(id: &str, ts: i64) -> Record {
        Record::Trade(Trade {
            trade_id: id.into(),
            ticker: "M".into(),
            exchange_ts: TimestampUs::from_micros(ts),
            yes_price: Price::new(40_000).unwrap_or(Price::ZERO),
            no_price: Price::new(60_000).unwrap_or(Price::ZERO),
            count: Count::new(100),
            taker_side: None,
            is_block_trade: false,
            source: TradeSource::Ws,
            received_at: TimestampUs::from_micros(ts + 1),
            pos: WirePos::default(),
        })
    }

    #[tokio::test]
    async fn oldest_is_the_minimum_exchange_time_or_none_when_empty()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("p.sqlite").display());
        let store = open(&url).await?;
        store.migrate().await?;
        assert_eq!(store.oldest(Table::Trades).await?, None);
        store
            .insert_batch(
                Table::Trades,
                &[trade("b", 2_000), trade("a", 1_000), trade("c", 3_000)],
                &[],
            )
            .await?;
        assert_eq!(
            store.oldest(Table::Trades).await?,
            Some(TimestampUs::from_micros(1_000))
        );
        assert_eq!(store.oldest(Table::Gaps).await?, None);
        // Read back through the shared decoder: every field survives.
        let back = store
            .read_window(
                Table::Trades,
                TimestampUs::from_micros(0),
                TimestampUs::from_micros(10_000),
            )
            .await?;
        assert_eq!(
            back,
            vec![trade("a", 1_000), trade("b", 2_000), trade("c", 3_000)]
        );
        Ok(())
    }
}
