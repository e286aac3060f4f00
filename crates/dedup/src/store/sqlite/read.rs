//! Reading the SQLite store back: windows of records and counts.

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::rows::{
    levels_from_json, occurrence, opt_price, opt_side, price, side, snapshot_source, trade_source,
};
use kd_core::records::{Gap, Lifecycle, OrderbookDelta, OrderbookSnapshot, Ticker, Trade, WirePos};
use kd_core::{Count, Record, Table, TimestampUs};
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
            "SELECT gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair
             FROM gaps WHERE start_ts >= ?1 AND start_ts < ?2
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
}

fn ts(v: i64) -> TimestampUs {
    TimestampUs::from_micros(v)
}

fn count(v: Option<i64>) -> Option<Count> {
    v.map(Count::new)
}

fn decode(table: Table, r: &Row<'_>) -> Result<Record, StoreError> {
    Ok(match table {
        Table::Trades => Record::Trade(Trade {
            trade_id: r.get(0)?,
            ticker: r.get(1)?,
            exchange_ts: ts(r.get(2)?),
            yes_price: price(table, r.get(3)?)?,
            no_price: price(table, r.get(4)?)?,
            count: Count::new(r.get(5)?),
            taker_side: opt_side(table, r.get::<_, Option<String>>(6)?.as_deref())?,
            is_block_trade: r.get(7)?,
            source: trade_source(&r.get::<_, String>(8)?)?,
            received_at: ts(r.get(9)?),
            pos: WirePos::default(),
        }),
        Table::Deltas => Record::Delta(OrderbookDelta {
            ticker: r.get(0)?,
            exchange_ts: ts(r.get(1)?),
            side: side(table, &r.get::<_, String>(2)?)?,
            price: price(table, r.get(3)?)?,
            delta: Count::new(r.get(4)?),
            occurrence: occurrence(r.get(5)?)?,
            received_at: ts(r.get(6)?),
            pos: WirePos::default(),
        }),
        Table::Snapshots => Record::Snapshot(OrderbookSnapshot {
            ticker: r.get(0)?,
            source: snapshot_source(&r.get::<_, String>(1)?)?,
            exchange_ts: ts(r.get(2)?),
            yes: levels_from_json(&r.get::<_, String>(3)?)?,
            no: levels_from_json(&r.get::<_, String>(4)?)?,
            received_at: ts(r.get(5)?),
            pos: WirePos::default(),
        }),
        Table::Tickers => Record::Ticker(Ticker {
            ticker: r.get(0)?,
            exchange_ts: ts(r.get(1)?),
            price: opt_price(table, r.get(2)?)?,
            yes_bid: opt_price(table, r.get(3)?)?,
            yes_ask: opt_price(table, r.get(4)?)?,
            volume: count(r.get(5)?),
            open_interest: count(r.get(6)?),
            dollar_volume: r.get(7)?,
            dollar_open_interest: r.get(8)?,
            yes_bid_size: count(r.get(9)?),
            yes_ask_size: count(r.get(10)?),
            last_trade_size: count(r.get(11)?),
            received_at: ts(r.get(12)?),
            pos: WirePos::default(),
        }),
        Table::Lifecycle => Record::Lifecycle(Lifecycle {
            subject: r.get(0)?,
            kind: r.get(1)?,
            event_type: r.get(2)?,
            exchange_ts: ts(r.get(3)?),
            payload: r.get(4)?,
            received_at: ts(r.get(5)?),
            pos: WirePos::default(),
        }),
        Table::Gaps => Record::Gap(Gap {
            gatherer: r.get(0)?,
            gap_id: r.get(1)?,
            ticker: r.get(2)?,
            channel: r.get(3)?,
            start: ts(r.get(4)?),
            end: ts(r.get(5)?),
            reason: r.get(6)?,
            repair: r.get(7)?,
        }),
    })
}
