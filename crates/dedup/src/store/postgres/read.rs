//! Reading production back: windows of records (exporter, verify, book) and counts.

use super::PgStore;
use crate::store::StoreError;
use crate::store::rows::{
    levels_from_arrays, occurrence, opt_price, opt_side, price, side, snapshot_source, trade_source,
};
use kd_core::records::SNAPSHOT_BUCKET_US;
use kd_core::records::{Gap, Lifecycle, OrderbookDelta, OrderbookSnapshot, Ticker, Trade, WirePos};
use kd_core::{Count, Record, Table, TimestampUs};
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
            "SELECT gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair
             FROM gaps WHERE start_ts >= $1 AND start_ts < $2
             ORDER BY ticker NULLS FIRST, start_ts, gatherer, gap_id"
        }
    }
}

const fn count_sql(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT count(*) FROM trades",
        Table::Deltas => "SELECT count(*) FROM orderbook_deltas",
        Table::Snapshots => "SELECT count(*) FROM orderbook_snapshots",
        Table::Tickers => "SELECT count(*) FROM tickers",
        Table::Lifecycle => "SELECT count(*) FROM lifecycle",
        Table::Gaps => "SELECT count(*) FROM gaps",
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
}

fn ts(v: i64) -> TimestampUs {
    TimestampUs::from_micros(v)
}

fn count(v: Option<i64>) -> Option<Count> {
    v.map(Count::new)
}

fn decode(table: Table, r: &Row) -> Result<Record, StoreError> {
    Ok(match table {
        Table::Trades => Record::Trade(Trade {
            trade_id: r.try_get(0)?,
            ticker: r.try_get(1)?,
            exchange_ts: ts(r.try_get(2)?),
            yes_price: price(table, r.try_get(3)?)?,
            no_price: price(table, r.try_get(4)?)?,
            count: Count::new(r.try_get(5)?),
            taker_side: opt_side(table, r.try_get::<_, Option<&str>>(6)?)?,
            is_block_trade: r.try_get(7)?,
            source: trade_source(r.try_get(8)?)?,
            received_at: ts(r.try_get(9)?),
            pos: WirePos::default(),
        }),
        Table::Deltas => Record::Delta(OrderbookDelta {
            ticker: r.try_get(0)?,
            exchange_ts: ts(r.try_get(1)?),
            side: side(table, r.try_get(2)?)?,
            price: price(table, r.try_get(3)?)?,
            delta: Count::new(r.try_get(4)?),
            occurrence: occurrence(r.try_get(5)?)?,
            received_at: ts(r.try_get(6)?),
            pos: WirePos::default(),
        }),
        Table::Snapshots => {
            let yp: Vec<i64> = r.try_get(3)?;
            let ys: Vec<i64> = r.try_get(4)?;
            let np: Vec<i64> = r.try_get(5)?;
            let ns: Vec<i64> = r.try_get(6)?;
            Record::Snapshot(OrderbookSnapshot {
                ticker: r.try_get(0)?,
                source: snapshot_source(r.try_get(1)?)?,
                exchange_ts: ts(r.try_get(2)?),
                yes: levels_from_arrays(&yp, &ys)?,
                no: levels_from_arrays(&np, &ns)?,
                received_at: ts(r.try_get(7)?),
                pos: WirePos::default(),
            })
        }
        Table::Tickers => Record::Ticker(Ticker {
            ticker: r.try_get(0)?,
            exchange_ts: ts(r.try_get(1)?),
            price: opt_price(table, r.try_get(2)?)?,
            yes_bid: opt_price(table, r.try_get(3)?)?,
            yes_ask: opt_price(table, r.try_get(4)?)?,
            volume: count(r.try_get(5)?),
            open_interest: count(r.try_get(6)?),
            dollar_volume: r.try_get(7)?,
            dollar_open_interest: r.try_get(8)?,
            yes_bid_size: count(r.try_get(9)?),
            yes_ask_size: count(r.try_get(10)?),
            last_trade_size: count(r.try_get(11)?),
            received_at: ts(r.try_get(12)?),
            pos: WirePos::default(),
        }),
        Table::Lifecycle => Record::Lifecycle(Lifecycle {
            subject: r.try_get(0)?,
            kind: r.try_get(1)?,
            event_type: r.try_get(2)?,
            exchange_ts: ts(r.try_get(3)?),
            payload: r.try_get(4)?,
            received_at: ts(r.try_get(5)?),
            pos: WirePos::default(),
        }),
        Table::Gaps => Record::Gap(Gap {
            gatherer: r.try_get(0)?,
            gap_id: r.try_get(1)?,
            ticker: r.try_get(2)?,
            channel: r.try_get(3)?,
            start: ts(r.try_get(4)?),
            end: ts(r.try_get(5)?),
            reason: r.try_get(6)?,
            repair: r.try_get(7)?,
        }),
    })
}
