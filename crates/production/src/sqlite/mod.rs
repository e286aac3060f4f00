//! The embedded SQLite production store (the default when no PostgreSQL is configured).
//!
//! One connection in WAL mode with `synchronous = FULL` (a commit acknowledged to a gatherer
//! survives power loss), driven on the blocking pool. Other processes (`verify`, `book`) may
//! open the same file for reading while the deduplicator writes.

mod lifecycle;
mod read;
mod schema;

use crate::error::StoreError;
use crate::metadata::{EventRow, MarketRow, ProductionStatus, SeriesRow};
use crate::rows::{levels_json, trade_source_str};
use crate::store::{CursorUpdate, InsertOutcome, seq_to_i64};
use kd_core::{Record, Table, TimestampUs};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A SQLite production store. Clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) the database at `path`.
    pub async fn open(path: PathBuf) -> Result<SqliteStore, StoreError> {
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::InvalidUrl(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let conn = Connection::open(&p)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))??;
        Ok(SqliteStore {
            path,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Worker("SQLite connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute_batch(schema::CREATE_MIGRATIONS_TABLE)?;
            Ok(c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(schema::CREATE_MIGRATIONS_TABLE)?;
            let current: i64 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?;
            let known = schema::MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
            if current > known {
                return Err(StoreError::SchemaTooNew {
                    found: current,
                    known,
                });
            }
            for (version, name, sql) in schema::MIGRATIONS.iter().filter(|m| m.0 > current) {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![version, name, TimestampUs::now().micros()],
                )?;
                tracing::info!(version, name, "applied migration");
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn insert_batch(
        &self,
        table: Table,
        records: &[&Record],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        // The blocking pool needs owned data; cloning is cheap next to the disk write.
        let owned: Vec<Record> = records.iter().map(|r| (*r).clone()).collect();
        self.insert_owned(table, Filing::Rows(owned), cursors).await
    }

    /// Lifecycle copies filed by the tolerance rule (`crate::lifecycle`), with the cursors.
    pub(crate) async fn insert_lifecycle_copies(
        &self,
        records: &[&kd_core::records::Lifecycle],
        origins: &[&str],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        let owned = records.iter().map(|l| (*l).clone()).collect();
        let origins = origins.iter().map(|o| o.to_string()).collect();
        self.insert_owned(Table::Lifecycle, Filing::Copies(owned, origins), cursors)
            .await
    }

    async fn insert_owned(
        &self,
        table: Table,
        filing: Filing,
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        let cursors = cursors.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (inserted, total) = match &filing {
                Filing::Rows(owned) => (insert_rows(&tx, table, owned)?, owned.len()),
                Filing::Copies(owned, origins) => {
                    (lifecycle::insert_copies(&tx, owned, origins)?, owned.len())
                }
            };
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO sync_cursors (gatherer, table_name, last_seq, updated_at, store_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (gatherer, table_name) DO UPDATE SET last_seq = excluded.last_seq,
                       updated_at = excluded.updated_at, store_id = excluded.store_id",
                )?;
                for cu in &cursors {
                    stmt.execute(params![
                        cu.gatherer,
                        cu.table.name(),
                        seq_to_i64(cu.last_seq)?,
                        TimestampUs::now().micros(),
                        cu.store_id
                    ])?;
                }
            }
            tx.commit()?;
            Ok(InsertOutcome {
                inserted,
                duplicates: (total as u64).saturating_sub(inserted),
            })
        })
        .await
    }

    /// The gatherer store each cursor counts in (`''` before schema 3 or when unknown).
    pub async fn cursor_stores(&self) -> Result<HashMap<(String, Table), String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT gatherer, table_name, store_id FROM sync_cursors")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let (gatherer, name, store) = row?;
                if let Some(table) = Table::parse(&name) {
                    out.insert((gatherer, table), store);
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn cursors(&self) -> Result<HashMap<(String, Table), u64>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT gatherer, table_name, last_seq FROM sync_cursors")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let (gatherer, name, seq) = row?;
                if let Some(table) = Table::parse(&name) {
                    out.insert((gatherer, table), seq.max(0) as u64);
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn upsert_series(&self, rows: &[SeriesRow]) -> Result<u64, StoreError> {
        let rows = rows.to_vec();
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO series (ticker, title, category, frequency, raw, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (ticker) DO UPDATE SET title = excluded.title,
                       category = excluded.category, frequency = excluded.frequency,
                       raw = excluded.raw, updated_at = excluded.updated_at",
                )?;
                let now = TimestampUs::now().micros();
                for r in &rows {
                    n += stmt.execute(params![
                        r.ticker,
                        r.title,
                        r.category,
                        r.frequency,
                        r.raw,
                        now
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    pub async fn upsert_events(&self, rows: &[EventRow]) -> Result<u64, StoreError> {
        let rows = rows.to_vec();
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO events (event_ticker, series_ticker, title, category, raw, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (event_ticker) DO UPDATE SET series_ticker = excluded.series_ticker,
                       title = excluded.title, category = excluded.category, raw = excluded.raw,
                       updated_at = excluded.updated_at",
                )?;
                let now = TimestampUs::now().micros();
                for r in &rows {
                    n += stmt.execute(params![
                        r.event_ticker,
                        r.series_ticker,
                        r.title,
                        r.category,
                        r.raw,
                        now
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    pub async fn upsert_markets(&self, rows: &[MarketRow]) -> Result<u64, StoreError> {
        let rows = rows.to_vec();
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO markets (ticker, event_ticker, title, kalshi_status, status,
                       open_time, close_time, result, raw, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (ticker) DO UPDATE SET event_ticker = excluded.event_ticker,
                       title = excluded.title, kalshi_status = excluded.kalshi_status,
                       status = excluded.status, open_time = excluded.open_time,
                       close_time = excluded.close_time, result = excluded.result,
                       raw = excluded.raw, updated_at = excluded.updated_at",
                )?;
                let now = TimestampUs::now().micros();
                for r in &rows {
                    n += stmt.execute(params![
                        r.ticker,
                        r.event_ticker,
                        r.title,
                        r.kalshi_status,
                        r.status.map(ProductionStatus::as_str),
                        r.open_time.map(TimestampUs::micros),
                        r.close_time.map(TimestampUs::micros),
                        r.result,
                        r.raw,
                        now
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    pub async fn markets(&self) -> Result<Vec<MarketRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT ticker, event_ticker, title, kalshi_status, status, open_time, close_time,
                   result, raw FROM markets ORDER BY ticker",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(MarketRow {
                    ticker: r.get(0)?,
                    event_ticker: r.get(1)?,
                    title: r.get(2)?,
                    kalshi_status: r.get(3)?,
                    status: r
                        .get::<_, Option<String>>(4)?
                        .as_deref()
                        .and_then(ProductionStatus::parse),
                    open_time: r.get::<_, Option<i64>>(5)?.map(TimestampUs::from_micros),
                    close_time: r.get::<_, Option<i64>>(6)?.map(TimestampUs::from_micros),
                    result: r.get(7)?,
                    raw: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn watermark(&self, name: &str) -> Result<Option<TimestampUs>, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT watermark FROM export_watermarks WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(TimestampUs::from_micros))
        })
        .await
    }

    pub async fn set_watermark(&self, name: &str, value: TimestampUs) -> Result<(), StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO export_watermarks (name, watermark, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET watermark = excluded.watermark,
                   updated_at = excluded.updated_at",
                params![name, value.micros(), TimestampUs::now().micros()],
            )?;
            Ok(())
        })
        .await
    }
}

/// What one insert transaction files.
enum Filing {
    /// Records inserted by exact identity.
    Rows(Vec<Record>),
    /// Lifecycle copies and the gatherer of each (`crate::lifecycle`).
    Copies(Vec<kd_core::records::Lifecycle>, Vec<String>),
}

/// `INSERT OR IGNORE` every record; returns how many were new.
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    table: Table,
    records: &[Record],
) -> Result<u64, StoreError> {
    let sql = match table {
        Table::Trades => {
            "INSERT OR IGNORE INTO trades (trade_id, ticker, exchange_ts, yes_price, no_price,
               count, taker_side, is_block_trade, source, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        }
        Table::Deltas => {
            "INSERT OR IGNORE INTO orderbook_deltas (ticker, exchange_ts, side, price, delta,
               occurrence, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        }
        Table::Snapshots => {
            "INSERT OR IGNORE INTO orderbook_snapshots (ticker, source, exchange_ts, bucket,
               book_hash, yes_levels, no_levels, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        }
        Table::Tickers => {
            "INSERT OR IGNORE INTO tickers (ticker, exchange_ts, values_hash, price, yes_bid,
               yes_ask, volume, open_interest, dollar_volume, dollar_open_interest, yes_bid_size,
               yes_ask_size, last_trade_size, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        }
        Table::Lifecycle => {
            "INSERT OR IGNORE INTO lifecycle (subject, kind, event_type, exchange_ts,
               payload_hash, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        }
        Table::Gaps => {
            "INSERT OR IGNORE INTO gaps (gatherer, gap_id, ticker, channel, start_ts, end_ts,
               reason, repair, tickers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        }
    };
    let mut stmt = tx.prepare_cached(sql)?;
    let mut inserted = 0u64;
    for record in records {
        let n = match record {
            Record::Trade(t) => stmt.execute(params![
                t.trade_id,
                t.ticker,
                t.exchange_ts.micros(),
                t.yes_price.units(),
                t.no_price.units(),
                t.count.hundredths(),
                t.taker_side.map(|s| s.as_str()),
                t.is_block_trade,
                trade_source_str(t.source),
                t.received_at.micros()
            ])?,
            Record::Delta(d) => stmt.execute(params![
                d.ticker,
                d.exchange_ts.micros(),
                d.side.as_str(),
                d.price.units(),
                d.delta.hundredths(),
                i64::from(d.occurrence),
                d.received_at.micros()
            ])?,
            Record::Snapshot(s) => stmt.execute(params![
                s.ticker,
                s.source.as_str(),
                s.exchange_ts.micros(),
                s.bucket(),
                s.book_hash(),
                levels_json(&s.yes),
                levels_json(&s.no),
                s.received_at.micros()
            ])?,
            Record::Ticker(t) => stmt.execute(params![
                t.ticker,
                t.exchange_ts.micros(),
                t.values_hash(),
                t.price.map(kd_core::Price::units),
                t.yes_bid.map(kd_core::Price::units),
                t.yes_ask.map(kd_core::Price::units),
                t.volume.map(kd_core::Count::hundredths),
                t.open_interest.map(kd_core::Count::hundredths),
                t.dollar_volume,
                t.dollar_open_interest,
                t.yes_bid_size.map(kd_core::Count::hundredths),
                t.yes_ask_size.map(kd_core::Count::hundredths),
                t.last_trade_size.map(kd_core::Count::hundredths),
                t.received_at.micros()
            ])?,
            Record::Lifecycle(l) => stmt.execute(params![
                l.subject,
                l.kind,
                l.event_type,
                l.exchange_ts.micros(),
                l.payload_hash(),
                l.payload,
                l.received_at.micros()
            ])?,
            Record::Gap(g) => stmt.execute(params![
                g.gatherer,
                g.gap_id,
                g.ticker,
                g.channel,
                g.start.micros(),
                g.end.micros(),
                g.reason,
                g.repair,
                g.tickers_text()
            ])?,
        };
        inserted += n as u64;
    }
    Ok(inserted)
}
