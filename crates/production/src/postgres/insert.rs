//! The PostgreSQL bulk path, rows and cursor upserts in one transaction. Fast path: binary
//! `COPY` straight into the table inside a savepoint (trades: their ids into `trade_ids`
//! first, which keeps a trade id unique across partitions), since the deduplicator's survivors
//! are normally new. When a stored copy makes it hit a unique constraint (a replay), the
//! savepoint is rolled back and the batch — and the next ones, until one finds nothing already
//! stored — goes through `COPY` into a per-connection temporary staging table, then
//! `INSERT … SELECT … ON CONFLICT DO NOTHING`.
//!
//! Why staging: `COPY` cannot skip conflicting rows, and row-by-row `INSERT … ON CONFLICT` is an
//! order of magnitude slower. The staging table is `ON COMMIT DELETE ROWS`, so it is empty at
//! the start of every transaction whatever happened to the previous one.

use super::schema::day_of;
use super::{PgStore, upsert_cursors};
use crate::error::StoreError;
use crate::rows::{level_arrays, trade_source_str};
use crate::store::{CursorUpdate, InsertOutcome};
use futures::pin_mut;
use kd_core::records::SNAPSHOT_BUCKET_US;
use kd_core::{Record, Table, TimestampUs};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// Static SQL per table: staging DDL, COPY target, insert-select.
struct TableSql {
    staging: &'static str,
    copy: &'static str,
    /// COPY straight into the table (the fast path). For trades, whose uniqueness spans
    /// partitions through `trade_ids`, [`TRADE_IDS_COPY`] goes first in the same savepoint.
    copy_direct: &'static str,
    insert: &'static str,
    types: &'static [Type],
}

const TRADES: TableSql = TableSql {
    staging: "CREATE TEMP TABLE IF NOT EXISTS stage_trades (LIKE trades) ON COMMIT DELETE ROWS",
    copy: "COPY stage_trades (trade_id, ticker, exchange_ts, yes_price, no_price, count,
        taker_side, is_block_trade, source, received_at) FROM STDIN (FORMAT binary)",
    copy_direct:
        "COPY trades (trade_id, ticker, exchange_ts, yes_price, no_price, count, taker_side,
        is_block_trade, source, received_at) FROM STDIN (FORMAT binary)",
    // trade_ids keeps trade_id unique across partitions; only its fresh ids reach `trades`.
    insert: "WITH fresh AS (
          INSERT INTO trade_ids (trade_id, exchange_ts)
          SELECT trade_id, exchange_ts FROM stage_trades
          ON CONFLICT DO NOTHING RETURNING trade_id)
        INSERT INTO trades (trade_id, ticker, exchange_ts, yes_price, no_price, count,
          taker_side, is_block_trade, source, received_at)
        SELECT s.trade_id, s.ticker, s.exchange_ts, s.yes_price, s.no_price, s.count,
          s.taker_side, s.is_block_trade, s.source, s.received_at
        FROM stage_trades s JOIN fresh f ON f.trade_id = s.trade_id
        ON CONFLICT DO NOTHING",
    types: &[
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::BOOL,
        Type::TEXT,
        Type::INT8,
    ],
};

/// The fast path of trades: their ids first, so a trade stored before (under any time) makes
/// the savepoint fail on `trade_ids`' key and the batch take the staging path.
const TRADE_IDS_COPY: &str = "COPY trade_ids (trade_id, exchange_ts) FROM STDIN (FORMAT binary)";

const DELTAS: TableSql = TableSql {
    staging: "CREATE TEMP TABLE IF NOT EXISTS stage_orderbook_deltas (LIKE orderbook_deltas)
        ON COMMIT DELETE ROWS",
    copy: "COPY stage_orderbook_deltas (ticker, exchange_ts, side, price, delta, occurrence,
        received_at) FROM STDIN (FORMAT binary)",
    copy_direct:
        "COPY orderbook_deltas (ticker, exchange_ts, side, price, delta, occurrence, received_at)
        FROM STDIN (FORMAT binary)",
    insert: "INSERT INTO orderbook_deltas (ticker, exchange_ts, side, price, delta, occurrence,
          received_at)
        SELECT ticker, exchange_ts, side, price, delta, occurrence, received_at
        FROM stage_orderbook_deltas ON CONFLICT DO NOTHING",
    types: &[
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ],
};

const SNAPSHOTS: TableSql = TableSql {
    staging: "CREATE TEMP TABLE IF NOT EXISTS stage_orderbook_snapshots
        (LIKE orderbook_snapshots) ON COMMIT DELETE ROWS",
    copy: "COPY stage_orderbook_snapshots (ticker, source, exchange_ts, bucket, book_hash,
        yes_prices, yes_sizes, no_prices, no_sizes, received_at) FROM STDIN (FORMAT binary)",
    copy_direct:
        "COPY orderbook_snapshots (ticker, source, exchange_ts, bucket, book_hash, yes_prices,
        yes_sizes, no_prices, no_sizes, received_at) FROM STDIN (FORMAT binary)",
    insert: "INSERT INTO orderbook_snapshots (ticker, source, exchange_ts, bucket, book_hash,
          yes_prices, yes_sizes, no_prices, no_sizes, received_at)
        SELECT ticker, source, exchange_ts, bucket, book_hash, yes_prices, yes_sizes,
          no_prices, no_sizes, received_at
        FROM stage_orderbook_snapshots ON CONFLICT DO NOTHING",
    types: &[
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8_ARRAY,
        Type::INT8_ARRAY,
        Type::INT8_ARRAY,
        Type::INT8_ARRAY,
        Type::INT8,
    ],
};

const TICKERS: TableSql = TableSql {
    staging: "CREATE TEMP TABLE IF NOT EXISTS stage_tickers (LIKE tickers) ON COMMIT DELETE ROWS",
    copy: "COPY stage_tickers (ticker, exchange_ts, values_hash, price, yes_bid, yes_ask, volume,
        open_interest, dollar_volume, dollar_open_interest, yes_bid_size, yes_ask_size,
        last_trade_size, received_at) FROM STDIN (FORMAT binary)",
    copy_direct: "COPY tickers (ticker, exchange_ts, values_hash, price, yes_bid, yes_ask, volume,
        open_interest, dollar_volume, dollar_open_interest, yes_bid_size, yes_ask_size,
        last_trade_size, received_at) FROM STDIN (FORMAT binary)",
    insert: "INSERT INTO tickers (ticker, exchange_ts, values_hash, price, yes_bid, yes_ask,
          volume, open_interest, dollar_volume, dollar_open_interest, yes_bid_size,
          yes_ask_size, last_trade_size, received_at)
        SELECT ticker, exchange_ts, values_hash, price, yes_bid, yes_ask, volume, open_interest,
          dollar_volume, dollar_open_interest, yes_bid_size, yes_ask_size, last_trade_size,
          received_at
        FROM stage_tickers ON CONFLICT DO NOTHING",
    types: &[
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ],
};

const LIFECYCLE: TableSql = TableSql {
    staging: "CREATE TEMP TABLE IF NOT EXISTS stage_lifecycle (LIKE lifecycle)
        ON COMMIT DELETE ROWS",
    copy: "COPY stage_lifecycle (subject, kind, event_type, exchange_ts, payload_hash, payload,
        received_at) FROM STDIN (FORMAT binary)",
    copy_direct: "COPY lifecycle (subject, kind, event_type, exchange_ts, payload_hash, payload,
        received_at) FROM STDIN (FORMAT binary)",
    insert: "INSERT INTO lifecycle (subject, kind, event_type, exchange_ts, payload_hash,
          payload, received_at)
        SELECT subject, kind, event_type, exchange_ts, payload_hash, payload, received_at
        FROM stage_lifecycle ON CONFLICT DO NOTHING",
    types: &[
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
    ],
};

const GAPS: TableSql = TableSql {
    staging: "CREATE TEMP TABLE IF NOT EXISTS stage_gaps (LIKE gaps) ON COMMIT DELETE ROWS",
    copy: "COPY stage_gaps (gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair, tickers)
        FROM STDIN (FORMAT binary)",
    copy_direct: "COPY gaps (gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair, tickers)
        FROM STDIN (FORMAT binary)",
    insert: "INSERT INTO gaps (gatherer, gap_id, ticker, channel, start_ts, end_ts, reason,
          repair, tickers)
        SELECT gatherer, gap_id, ticker, channel, start_ts, end_ts, reason, repair, tickers
        FROM stage_gaps ON CONFLICT DO NOTHING",
    types: &[
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ],
};

const fn table_sql(table: Table) -> &'static TableSql {
    match table {
        Table::Trades => &TRADES,
        Table::Deltas => &DELTAS,
        Table::Snapshots => &SNAPSHOTS,
        Table::Tickers => &TICKERS,
        Table::Lifecycle => &LIFECYCLE,
        Table::Gaps => &GAPS,
    }
}

/// The UTC days a batch touches (gaps are not partitioned).
fn days(table: Table, records: &[&Record]) -> Vec<i64> {
    if table == Table::Gaps {
        return Vec::new();
    }
    let mut days: Vec<i64> = records.iter().map(|r| day_of(r.exchange_ts())).collect();
    days.sort_unstable();
    days.dedup();
    days
}

impl PgStore {
    pub(crate) async fn insert_batch(
        &self,
        table: Table,
        records: &[&Record],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        let mut client = self.client().await?;
        self.ensure_days(&client, &days(table, records)).await?;
        let mut tx = client.transaction().await?;
        let inserted = if records.is_empty() {
            0
        } else if self.direct_worth_trying(table) {
            let copy_direct = table_sql(table).copy_direct;
            // Fast path: COPY straight into the table inside a savepoint. A unique violation
            // (a replayed copy) rolls the savepoint back and the batch takes the staging path.
            let direct = {
                let sp = tx.savepoint("direct_copy").await?;
                let copied = match table {
                    Table::Trades => match copy_trade_ids(&sp, records).await {
                        Ok(_) => copy_rows(&sp, copy_direct, table, records).await,
                        Err(e) => Err(e),
                    },
                    _ => copy_rows(&sp, copy_direct, table, records).await,
                };
                match copied {
                    Ok(n) => {
                        sp.commit().await?;
                        Some(n)
                    }
                    Err(StoreError::Postgres(e))
                        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                    {
                        sp.rollback().await?;
                        None
                    }
                    Err(e) => return Err(e),
                }
            };
            match direct {
                Some(n) => n,
                None => {
                    self.set_prefer_staging(table, true);
                    staged_insert(&tx, table, records).await?
                }
            }
        } else {
            let n = staged_insert(&tx, table, records).await?;
            if n == records.len() as u64 {
                // No copy was already stored: the next batch may try the fast path again.
                self.set_prefer_staging(table, false);
            }
            n
        };
        upsert_cursors(&tx, cursors).await?;
        tx.commit().await?;
        Ok(InsertOutcome {
            inserted,
            duplicates: (records.len() as u64).saturating_sub(inserted),
        })
    }

    /// A bare binary `COPY` of `records` into their table (no staging, no conflict handling):
    /// the benchmark's baseline. Fails on any duplicate.
    pub async fn bare_copy(&self, table: Table, records: &[Record]) -> Result<u64, StoreError> {
        let refs: Vec<&Record> = records.iter().collect();
        let mut client = self.client().await?;
        self.ensure_days(&client, &days(table, &refs)).await?;
        let tx = client.transaction().await?;
        let n = copy_rows(&tx, table_sql(table).copy_direct, table, &refs).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// COPY into the staging table, then insert-select with ON CONFLICT DO NOTHING.
async fn staged_insert(
    tx: &tokio_postgres::Transaction<'_>,
    table: Table,
    records: &[&Record],
) -> Result<u64, StoreError> {
    let sql = table_sql(table);
    // `IF NOT EXISTS` on the table this connection made at its first batch answers with a
    // NOTICE ("relation stage_… already exists, skipping") on every later batch, which
    // tokio-postgres logs at INFO: noise in every deduplicator log. Notices are silenced for
    // this transaction only (`SET LOCAL`); warnings and errors still arrive. One round trip.
    tx.batch_execute(&format!(
        "SET LOCAL client_min_messages = warning; {}",
        sql.staging
    ))
    .await?;
    copy_rows(tx, sql.copy, table, records).await?;
    Ok(tx.execute(sql.insert, &[]).await?)
}

/// Binary COPY of `records` with the statement `copy` (its column list matches `table`).
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    copy: &str,
    table: Table,
    records: &[&Record],
) -> Result<u64, StoreError> {
    let sink = tx.copy_in(copy).await?;
    let writer = BinaryCopyInWriter::new(sink, table_sql(table).types);
    pin_mut!(writer);
    for record in records {
        write_row(writer.as_mut(), record).await?;
    }
    Ok(writer.finish().await?)
}

/// Binary COPY of the trades' `(trade_id, exchange_ts)` into `trade_ids`.
async fn copy_trade_ids(
    tx: &tokio_postgres::Transaction<'_>,
    records: &[&Record],
) -> Result<u64, StoreError> {
    let sink = tx.copy_in(TRADE_IDS_COPY).await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT8]);
    pin_mut!(writer);
    for record in records {
        if let Record::Trade(t) = record {
            let ts = t.exchange_ts.micros();
            writer.as_mut().write(&[&t.trade_id, &ts]).await?;
        }
    }
    Ok(writer.finish().await?)
}

async fn write_row(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    record: &Record,
) -> Result<(), StoreError> {
    let ts = |t: TimestampUs| t.micros();
    match record {
        Record::Trade(t) => {
            let taker = t.taker_side.map(|s| s.as_str());
            let row: [&(dyn ToSql + Sync); 10] = [
                &t.trade_id,
                &t.ticker,
                &ts(t.exchange_ts),
                &t.yes_price.units(),
                &t.no_price.units(),
                &t.count.hundredths(),
                &taker,
                &t.is_block_trade,
                &trade_source_str(t.source),
                &ts(t.received_at),
            ];
            writer.write(&row).await?;
        }
        Record::Delta(d) => {
            let row: [&(dyn ToSql + Sync); 7] = [
                &d.ticker,
                &ts(d.exchange_ts),
                &d.side.as_str(),
                &d.price.units(),
                &d.delta.hundredths(),
                &i64::from(d.occurrence),
                &ts(d.received_at),
            ];
            writer.write(&row).await?;
        }
        Record::Snapshot(s) => {
            let (yp, ys) = level_arrays(&s.yes);
            let (np, ns) = level_arrays(&s.no);
            let bucket = s.exchange_ts.micros().div_euclid(SNAPSHOT_BUCKET_US);
            let row: [&(dyn ToSql + Sync); 10] = [
                &s.ticker,
                &s.source.as_str(),
                &ts(s.exchange_ts),
                &bucket,
                &s.book_hash(),
                &yp,
                &ys,
                &np,
                &ns,
                &ts(s.received_at),
            ];
            writer.write(&row).await?;
        }
        Record::Ticker(t) => {
            let p = |v: Option<kd_core::Price>| v.map(kd_core::Price::units);
            let c = |v: Option<kd_core::Count>| v.map(kd_core::Count::hundredths);
            let row: [&(dyn ToSql + Sync); 14] = [
                &t.ticker,
                &ts(t.exchange_ts),
                &t.values_hash(),
                &p(t.price),
                &p(t.yes_bid),
                &p(t.yes_ask),
                &c(t.volume),
                &c(t.open_interest),
                &t.dollar_volume,
                &t.dollar_open_interest,
                &c(t.yes_bid_size),
                &c(t.yes_ask_size),
                &c(t.last_trade_size),
                &ts(t.received_at),
            ];
            writer.write(&row).await?;
        }
        Record::Lifecycle(l) => {
            let row: [&(dyn ToSql + Sync); 7] = [
                &l.subject,
                &l.kind,
                &l.event_type,
                &ts(l.exchange_ts),
                &l.payload_hash(),
                &l.payload,
                &ts(l.received_at),
            ];
            writer.write(&row).await?;
        }
        Record::Gap(g) => {
            let tickers = g.tickers_text();
            let row: [&(dyn ToSql + Sync); 9] = [
                &g.gatherer,
                &g.gap_id,
                &g.ticker,
                &g.channel,
                &ts(g.start),
                &ts(g.end),
                &g.reason,
                &g.repair,
                &tickers,
            ];
            writer.write(&row).await?;
        }
    }
    Ok(())
}
