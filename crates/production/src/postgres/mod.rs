//! The PostgreSQL production store (any PostgreSQL-compatible service).
//!
//! # Layout
//! - `schema`: migrations and daily partitions.
//! - `insert`: the bulk path (binary COPY → staging → insert-select, cursor in the same
//!   transaction).
//! - `lifecycle`: lifecycle copies filed by the tolerance rule (`crate::lifecycle`).
//! - `read`: windows of records for the exporter, `verify` and `book`.
//! - `tls`: the URL's libpq TLS parameters (`sslmode`, `sslrootcert`, `sslcert`/`sslkey`) made
//!   into a rustls connector; every connection to production is made through it.
//! - this file: the pool, migrate, cursors, metadata upserts, watermarks.

mod insert;
mod lifecycle;
mod read;
pub mod schema;
pub mod tls;

pub use tls::connect_client;

use crate::error::StoreError;
use crate::metadata::{EventRow, MarketRow, ProductionStatus, SeriesRow};
use crate::store::{ConnectionUsage, CursorUpdate, seq_to_i64};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use kd_core::{Table, TimestampUs};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections kept open: one per table writer plus readers.
const POOL_SIZE: usize = 10;

/// A pooled PostgreSQL production store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Days whose partitions are known to exist, so the hot path skips the DDL.
    partition_days: Arc<Mutex<HashSet<i64>>>,
    /// Per table: the last direct COPY met a stored copy (a replay), so batches go through
    /// staging until one shows no stored copy again.
    prefer_staging: Arc<[AtomicBool; 6]>,
}

impl PgStore {
    /// Builds the pool (reading the URL's CA and client-certificate files now); connections
    /// open lazily on first use.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let tls::Connect { mut config, tls } = tls::connect_config(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("kalshi-data-dedup");
        }
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::InvalidUrl(format!("pool: {e}")))?;
        Ok(PgStore {
            pool,
            partition_days: Arc::new(Mutex::new(HashSet::new())),
            prefer_staging: Arc::new(Default::default()),
        })
    }

    fn direct_worth_trying(&self, table: Table) -> bool {
        !self.prefer_staging[table_index(table)].load(Ordering::Relaxed)
    }

    fn set_prefer_staging(&self, table: Table, value: bool) {
        self.prefer_staging[table_index(table)].store(value, Ordering::Relaxed);
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Client connections open on the whole server (every database, every user) and the
    /// server's `max_connections`. Background processes (autovacuum, WAL writer, …) have slots
    /// of their own beyond `max_connections`, so they are not counted.
    pub async fn connection_usage(&self) -> Result<ConnectionUsage, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
                        current_setting('max_connections')::bigint",
                &[],
            )
            .await?;
        let in_use: i64 = row.get(0);
        let max: i64 = row.get(1);
        let non_negative = |what: &str, v: i64| {
            u64::try_from(v).map_err(|_| StoreError::Corrupt {
                table: "pg_stat_activity",
                reason: format!("{what} = {v}"),
            })
        };
        Ok(ConnectionUsage {
            in_use: non_negative("connections", in_use)?,
            max: non_negative("max_connections", max)?,
        })
    }

    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Applies every migration newer than the recorded version (under an advisory lock, in one
    /// transaction), then creates the partitions for yesterday … today + 3.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::MIGRATION_LOCK],
        )
        .await?;
        // `IF NOT EXISTS` on every start: its NOTICE is noise (this transaction only).
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .await?;
        tx.batch_execute(schema::CREATE_MIGRATIONS_TABLE).await?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await?
            .get(0);
        let known = schema::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        if current > known {
            return Err(StoreError::SchemaTooNew {
                found: current,
                known,
            });
        }
        for m in schema::MIGRATIONS.iter().filter(|m| m.version > current) {
            tx.batch_execute(m.sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &TimestampUs::now().micros()],
            )
            .await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        tx.commit().await?;
        drop(client);
        self.ensure_partitions_ahead(3).await
    }

    /// Creates the partitions of yesterday through `days_ahead` days from now.
    pub async fn ensure_partitions_ahead(&self, days_ahead: u32) -> Result<(), StoreError> {
        let today = schema::day_of(TimestampUs::now());
        let days: Vec<i64> = (today - 1..=today + i64::from(days_ahead)).collect();
        let client = self.client().await?;
        self.ensure_days(&client, &days).await
    }

    /// Creates the partitions of `days` that are not known to exist (outside any transaction:
    /// attaching a partition locks the parent, which must not be held for a whole batch).
    async fn ensure_days(
        &self,
        client: &tokio_postgres::Client,
        days: &[i64],
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self.partition_days.lock().map_err(poisoned)?;
            days.iter()
                .copied()
                .filter(|d| !known.contains(d))
                .collect()
        };
        for day in missing {
            for p in schema::PARTITIONED {
                let ddl = schema::partition_ddl(*p, day).ok_or_else(|| {
                    StoreError::OutOfRange(format!("no partition possible for day {day}"))
                })?;
                // One simple query is one implicit transaction: `SET LOCAL` silences the
                // "already exists, skipping" NOTICE of a partition made earlier (every start
                // re-checks yesterday … today + 3) for this statement only.
                client
                    .batch_execute(&format!("SET LOCAL client_min_messages = warning; {ddl}"))
                    .await?;
            }
            self.partition_days.lock().map_err(poisoned)?.insert(day);
        }
        Ok(())
    }

    /// The gatherer store each cursor counts in (`''` before schema 3 or when unknown).
    pub async fn cursor_stores(&self) -> Result<HashMap<(String, Table), String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT gatherer, table_name, store_id FROM sync_cursors",
                &[],
            )
            .await?;
        let mut out = HashMap::new();
        for row in rows {
            let name: String = row.get(1);
            if let Some(table) = Table::parse(&name) {
                out.insert((row.get::<_, String>(0), table), row.get::<_, String>(2));
            }
        }
        Ok(out)
    }

    pub async fn cursors(&self) -> Result<HashMap<(String, Table), u64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT gatherer, table_name, last_seq FROM sync_cursors",
                &[],
            )
            .await?;
        let mut out = HashMap::new();
        for row in rows {
            let name: String = row.get(1);
            let Some(table) = Table::parse(&name) else {
                tracing::warn!(table = %name, "sync_cursors row for an unknown table ignored");
                continue;
            };
            let seq: i64 = row.get(2);
            out.insert((row.get::<_, String>(0), table), seq.max(0) as u64);
        }
        Ok(out)
    }

    pub async fn upsert_series(&self, rows: &[SeriesRow]) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare(
                "INSERT INTO series (ticker, title, category, frequency, raw, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (ticker) DO UPDATE SET title = EXCLUDED.title,
                   category = EXCLUDED.category, frequency = EXCLUDED.frequency,
                   raw = EXCLUDED.raw, updated_at = EXCLUDED.updated_at",
            )
            .await?;
        let now = TimestampUs::now().micros();
        let (tx_ref, stmt_ref) = (&tx, &stmt);
        let futures = rows.iter().map(|r| async move {
            tx_ref
                .execute(
                    stmt_ref,
                    &[&r.ticker, &r.title, &r.category, &r.frequency, &r.raw, &now],
                )
                .await
        });
        let n: u64 = futures::future::try_join_all(futures).await?.iter().sum();
        tx.commit().await?;
        Ok(n)
    }

    pub async fn upsert_events(&self, rows: &[EventRow]) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare(
                "INSERT INTO events (event_ticker, series_ticker, title, category, raw, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (event_ticker) DO UPDATE SET series_ticker = EXCLUDED.series_ticker,
                   title = EXCLUDED.title, category = EXCLUDED.category, raw = EXCLUDED.raw,
                   updated_at = EXCLUDED.updated_at",
            )
            .await?;
        let now = TimestampUs::now().micros();
        let (tx_ref, stmt_ref) = (&tx, &stmt);
        let futures = rows.iter().map(|r| async move {
            tx_ref
                .execute(
                    stmt_ref,
                    &[
                        &r.event_ticker,
                        &r.series_ticker,
                        &r.title,
                        &r.category,
                        &r.raw,
                        &now,
                    ],
                )
                .await
        });
        let n: u64 = futures::future::try_join_all(futures).await?.iter().sum();
        tx.commit().await?;
        Ok(n)
    }

    pub async fn upsert_markets(&self, rows: &[MarketRow]) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare(
                "INSERT INTO markets (ticker, event_ticker, title, kalshi_status, status,
                   open_time, close_time, result, raw, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (ticker) DO UPDATE SET event_ticker = EXCLUDED.event_ticker,
                   title = EXCLUDED.title, kalshi_status = EXCLUDED.kalshi_status,
                   status = EXCLUDED.status, open_time = EXCLUDED.open_time,
                   close_time = EXCLUDED.close_time, result = EXCLUDED.result,
                   raw = EXCLUDED.raw, updated_at = EXCLUDED.updated_at",
            )
            .await?;
        let now = TimestampUs::now().micros();
        let prepared: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.status.map(ProductionStatus::as_str),
                    r.open_time.map(TimestampUs::micros),
                    r.close_time.map(TimestampUs::micros),
                )
            })
            .collect();
        let (tx_ref, stmt_ref) = (&tx, &stmt);
        let futures = rows
            .iter()
            .zip(&prepared)
            .map(|(r, (status, open, close))| async move {
                tx_ref
                    .execute(
                        stmt_ref,
                        &[
                            &r.ticker,
                            &r.event_ticker,
                            &r.title,
                            &r.kalshi_status,
                            status,
                            open,
                            close,
                            &r.result,
                            &r.raw,
                            &now,
                        ],
                    )
                    .await
            });
        let n: u64 = futures::future::try_join_all(futures).await?.iter().sum();
        tx.commit().await?;
        Ok(n)
    }

    pub async fn markets(&self) -> Result<Vec<MarketRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT ticker, event_ticker, title, kalshi_status, status, open_time, close_time,
                   result, raw FROM markets ORDER BY ticker",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| MarketRow {
                ticker: r.get(0),
                event_ticker: r.get(1),
                title: r.get(2),
                kalshi_status: r.get(3),
                status: r
                    .get::<_, Option<&str>>(4)
                    .and_then(ProductionStatus::parse),
                open_time: r.get::<_, Option<i64>>(5).map(TimestampUs::from_micros),
                close_time: r.get::<_, Option<i64>>(6).map(TimestampUs::from_micros),
                result: r.get(7),
                raw: r.get(8),
            })
            .collect())
    }

    pub async fn watermark(&self, name: &str) -> Result<Option<TimestampUs>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT watermark FROM export_watermarks WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(row.map(|r| TimestampUs::from_micros(r.get(0))))
    }

    pub async fn set_watermark(&self, name: &str, value: TimestampUs) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO export_watermarks (name, watermark, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark,
                   updated_at = EXCLUDED.updated_at",
                &[&name, &value.micros(), &TimestampUs::now().micros()],
            )
            .await?;
        Ok(())
    }
}

/// The cursor upsert shared by the insert paths ([`upsert_cursors`]).
const CURSOR_SQL: &str = "INSERT INTO sync_cursors
    (gatherer, table_name, last_seq, updated_at, store_id)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (gatherer, table_name) DO UPDATE SET last_seq = EXCLUDED.last_seq,
      updated_at = EXCLUDED.updated_at, store_id = EXCLUDED.store_id";

fn cursor_params(c: &CursorUpdate) -> Result<(i64, i64), StoreError> {
    Ok((seq_to_i64(c.last_seq)?, TimestampUs::now().micros()))
}

/// Upserts `cursors` in `tx`: one statement prepared once per connection, the upserts sent
/// together (tokio-postgres pipelines concurrent queries), so a batch's cursors cost one round
/// trip instead of two per gatherer (parse + execute) while the table's writer waits.
pub(crate) async fn upsert_cursors(
    tx: &deadpool_postgres::Transaction<'_>,
    cursors: &[CursorUpdate],
) -> Result<(), StoreError> {
    if cursors.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached(CURSOR_SQL).await?;
    let params = cursors
        .iter()
        .map(|c| cursor_params(c).map(|(seq, now)| (c, seq, now)))
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, stmt) = (&tx, &stmt);
    futures::future::try_join_all(params.iter().map(|(c, seq, now)| async move {
        tx.execute(stmt, &[&c.gatherer, &c.table.name(), seq, now, &c.store_id])
            .await
    }))
    .await?;
    Ok(())
}

fn table_index(table: Table) -> usize {
    Table::ALL.iter().position(|t| *t == table).unwrap_or(0)
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError::Worker("partition cache lock poisoned".into())
}
