//! The production store: one interface over the two backends, chosen by URL.

use crate::error::StoreError;
use crate::metadata::{EventRow, MarketRow, SeriesRow};
use crate::postgres::PgStore;
use crate::progress::SyncProgress;
use crate::quarantine::{QuarantineCounts, QuarantineRow};
use crate::sqlite::SqliteStore;
use kd_core::records::{Identity, Record};
use kd_core::{Table, TimestampUs};
use std::collections::{HashMap, HashSet};

/// What one [`Store::insert_batch`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Rows new to production.
    pub inserted: u64,
    /// Rows already there (or repeated within the batch), absorbed.
    pub duplicates: u64,
}

/// Connections on the production server (PostgreSQL), for the `dedup_pg_*` gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionUsage {
    /// Client connections open on the server, every database and user included.
    pub in_use: u64,
    /// The server's `max_connections`.
    pub max: u64,
}

/// A gatherer cursor to advance in the same transaction as the insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorUpdate {
    pub gatherer: String,
    pub table: Table,
    /// Every row of `gatherer`'s `table` with a local sequence number ≤ this is committed.
    pub last_seq: u64,
    /// The gatherer's local store `last_seq` counts in (`kd_core::pull::PullResponse::store_id`).
    pub store_id: String,
}

/// The production store: one of the two backends. Cheap to clone (both hold shared handles).
#[derive(Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Postgres(_) => f.write_str("Store::Postgres"),
            Store::Sqlite(s) => write!(f, "Store::Sqlite({})", s.path().display()),
        }
    }
}

/// Opens the store a URL names. Does not touch the database yet for PostgreSQL (the pool
/// connects lazily), so a production outage at start is retried by the caller.
pub async fn open(url: &str) -> Result<Store, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Store::Postgres(PgStore::connect(url)?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::InvalidUrl("sqlite:// needs a file path".into()));
        }
        Ok(Store::Sqlite(SqliteStore::open(path.into()).await?))
    } else {
        Err(StoreError::UnsupportedUrl(kd_core::config::redact_url(url)))
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Postgres($s) => $body,
            Store::Sqlite($s) => $body,
        }
    };
}

impl Store {
    /// Which backend: `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Creates or upgrades the schema; running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.migrate().await)
    }

    /// The schema version applied (0 before the first migration).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.schema_version().await)
    }

    /// Creates time partitions from yesterday to `days_ahead` days ahead (PostgreSQL only).
    pub async fn ensure_partitions_ahead(&self, days_ahead: u32) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => s.ensure_partitions_ahead(days_ahead).await,
            Store::Sqlite(_) => Ok(()),
        }
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }

    /// Connections in use on the server and its limit; `None` for SQLite, which has no
    /// server and no connection limit.
    pub async fn connection_usage(&self) -> Result<Option<ConnectionUsage>, StoreError> {
        match self {
            Store::Postgres(s) => s.connection_usage().await.map(Some),
            Store::Sqlite(_) => Ok(None),
        }
    }

    /// In ONE transaction: inserts `records` (all of `table`; duplicates of stored rows are
    /// absorbed) and advances `cursors`. On error nothing of either is kept.
    pub async fn insert_batch(
        &self,
        table: Table,
        records: &[Record],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        let (unique, repeated) = unique_of_table(table, records)?;
        let mut outcome = dispatch!(self, s => s.insert_batch(table, &unique, cursors).await)?;
        outcome.duplicates += repeated;
        Ok(outcome)
    }

    /// [`Store::insert_batch`] for records already unique by identity (the output of
    /// the deduplicator's merge): skips the in-batch duplicate check.
    pub async fn insert_unique(
        &self,
        table: Table,
        records: &[Record],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        let mut refs = Vec::with_capacity(records.len());
        for r in records {
            if r.table() != table {
                return Err(StoreError::OutOfRange(format!(
                    "a {} record in a {} batch",
                    r.table(),
                    table
                )));
            }
            refs.push(r);
        }
        dispatch!(self, s => s.insert_batch(table, &refs, cursors).await)
    }

    /// [`Store::insert_unique`] knowing the gatherer each record came from (`origins[i]` for
    /// `records[i]`). Lifecycle records are filed by the copy rule of `crate::lifecycle` (copies
    /// of one change from several gatherers are one row; every change of one gatherer is a row;
    /// a replayed copy adds nothing); the other tables ignore `origins`.
    pub async fn insert_merged(
        &self,
        table: Table,
        records: &[Record],
        origins: &[&str],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        if table != Table::Lifecycle {
            return self.insert_unique(table, records, cursors).await;
        }
        if origins.len() != records.len() {
            return Err(StoreError::OutOfRange(format!(
                "{} origins for {} lifecycle records",
                origins.len(),
                records.len()
            )));
        }
        let mut lifecycles = Vec::with_capacity(records.len());
        for r in records {
            match r {
                Record::Lifecycle(l) => lifecycles.push(l),
                other => {
                    return Err(StoreError::OutOfRange(format!(
                        "a {} record in a lifecycle batch",
                        other.table()
                    )));
                }
            }
        }
        dispatch!(self, s => s.insert_lifecycle_copies(&lifecycles, origins, cursors).await)
    }

    /// Every stored gatherer cursor.
    pub async fn cursors(&self) -> Result<HashMap<(String, Table), u64>, StoreError> {
        dispatch!(self, s => s.cursors().await)
    }

    /// The gatherer store each cursor counts in (`""` when unknown).
    pub async fn cursor_stores(&self) -> Result<HashMap<(String, Table), String>, StoreError> {
        dispatch!(self, s => s.cursor_stores().await)
    }

    /// Files rows in `quarantine` (a row filed before is skipped); returns how many are new.
    pub async fn quarantine(&self, rows: &[QuarantineRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        dispatch!(self, s => s.quarantine(rows).await)
    }

    /// Quarantined rows per table.
    pub async fn quarantine_counts(&self) -> Result<QuarantineCounts, StoreError> {
        dispatch!(self, s => s.quarantine_counts().await)
    }

    /// Records how far production is complete per gatherer and table (overwrites).
    pub async fn set_progress(&self, rows: &[SyncProgress]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        dispatch!(self, s => s.set_progress(rows).await)
    }

    /// Every gatherer's completeness per table (`sync_progress`).
    pub async fn progress(&self) -> Result<Vec<SyncProgress>, StoreError> {
        dispatch!(self, s => s.progress().await)
    }

    /// Every quarantined row, oldest first.
    pub async fn quarantined(&self) -> Result<Vec<QuarantineRow>, StoreError> {
        dispatch!(self, s => s.quarantined().await)
    }

    /// Upserts series, latest wins.
    pub async fn upsert_series(&self, rows: &[SeriesRow]) -> Result<u64, StoreError> {
        dispatch!(self, s => s.upsert_series(rows).await)
    }

    /// Upserts events, latest wins.
    pub async fn upsert_events(&self, rows: &[EventRow]) -> Result<u64, StoreError> {
        dispatch!(self, s => s.upsert_events(rows).await)
    }

    /// Upserts markets, latest wins.
    pub async fn upsert_markets(&self, rows: &[MarketRow]) -> Result<u64, StoreError> {
        dispatch!(self, s => s.upsert_markets(rows).await)
    }

    /// Every market, by ticker.
    pub async fn markets(&self) -> Result<Vec<MarketRow>, StoreError> {
        dispatch!(self, s => s.markets().await)
    }

    /// The records of `table` with `from ≤ exchange_ts < to` (gaps: by `start`), sorted by
    /// (ticker, exchange_ts) and then by identity fields, so two reads give the same order.
    pub async fn read_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> Result<Vec<Record>, StoreError> {
        dispatch!(self, s => s.read_window(table, from, to).await)
    }

    /// Number of rows in `table`.
    pub async fn count(&self, table: Table) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count(table).await)
    }

    /// The exchange time of the oldest record of `table` (gaps: the earliest `start`), `None`
    /// when the table is empty: where a first export starts.
    pub async fn oldest(&self, table: Table) -> Result<Option<TimestampUs>, StoreError> {
        dispatch!(self, s => s.oldest(table).await)
    }

    /// An export watermark by name (the exporter uses one per table).
    pub async fn watermark(&self, name: &str) -> Result<Option<TimestampUs>, StoreError> {
        dispatch!(self, s => s.watermark(name).await)
    }

    /// Sets an export watermark (overwrites).
    pub async fn set_watermark(&self, name: &str, value: TimestampUs) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_watermark(name, value).await)
    }
}

/// Checks that every record belongs to `table` and drops repeats within the batch (two rows
/// with one identity would otherwise both reach a partitioned table when their partition keys
/// differ). Returns the survivors and how many were dropped.
fn unique_of_table(table: Table, records: &[Record]) -> Result<(Vec<&Record>, u64), StoreError> {
    let mut seen: HashSet<Identity> = HashSet::with_capacity(records.len());
    let mut unique = Vec::with_capacity(records.len());
    for r in records {
        if r.table() != table {
            return Err(StoreError::OutOfRange(format!(
                "a {} record in a {} batch",
                r.table(),
                table
            )));
        }
        if seen.insert(r.identity()) {
            unique.push(r);
        }
    }
    let repeated = (records.len() - unique.len()) as u64;
    Ok((unique, repeated))
}

/// A u64 cursor as PostgreSQL/SQLite `bigint`.
pub(crate) fn seq_to_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::OutOfRange(format!("cursor {seq} above i64::MAX")))
}
