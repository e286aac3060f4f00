//! The local store: SQLite in WAL mode, one append-only table per record type.
//!
//! Every row carries a monotonic local sequence number (`seq`, `INTEGER PRIMARY KEY
//! AUTOINCREMENT`) assigned in commit order by the single writer thread — the deduplicator's
//! cursor. `AUTOINCREMENT` keeps the high-water mark in `sqlite_sequence`, inside the same
//! transaction as the rows, so a number is never reused: not after retention empties a table,
//! not after a crash, not after a restart.
//!
//! - [`schema`]: the DDL and the per-table SQL (all literals; table names never come from input).
//! - [`write`]: the writer's connection (batches, acks, retention, state).
//! - [`read`]: read-only connections for the pull API (WAL lets them run beside the writer).
//!
//! Durability: `journal_mode=WAL` with `synchronous=NORMAL`. A committed transaction is in the
//! WAL file (written, not fsynced) before the commit returns, so it survives the process being
//! killed (`kill -9`); only an operating-system crash or power loss can roll back the commits
//! since the last checkpoint. See docs/gatherer.md for the full bound.

pub mod read;
pub mod schema;
pub mod write;

use kd_core::Table;
use std::path::{Path, PathBuf};

pub use read::ReadPool;
pub use write::WriteConn;

/// File name of the store inside the data directory.
pub const FILE_NAME: &str = "store.sqlite";

/// The store's file inside `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create data directory {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("row {seq} of {table} cannot be decoded: {source}")]
    Decode {
        table: Table,
        seq: u64,
        #[source]
        source: read::BodyError,
    },
    #[error("record cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("data directory belongs to gatherer `{stored}`, configured as `{configured}`")]
    WrongGatherer { stored: String, configured: String },
    #[error("cursor {cursor} of {table} is beyond the last committed row {head}")]
    AckBeyondHead {
        table: Table,
        cursor: u64,
        head: u64,
    },
}

impl StoreError {
    /// A short label of the failure for metrics and `/health`: `disk_full` (SQLITE_FULL: the
    /// filesystem or a quota is out of space), `io` (an I/O error from the disk), `busy`,
    /// `corrupt` or `other`.
    pub fn kind(&self) -> &'static str {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                ErrorCode::DiskFull => "disk_full",
                ErrorCode::SystemIoFailure | ErrorCode::CannotOpen => "io",
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => "busy",
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => "corrupt",
                _ => "other",
            },
            _ => "other",
        }
    }
}

/// The highest committed sequence number of each table (0 when none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heads([u64; 6]);

impl Heads {
    pub fn get(&self, table: Table) -> u64 {
        self.0[index(table)]
    }

    pub fn set(&mut self, table: Table, seq: u64) {
        self.0[index(table)] = seq;
    }
}

/// Position of a table in [`Table::ALL`] (and in per-table arrays).
pub const fn index(table: Table) -> usize {
    match table {
        Table::Trades => 0,
        Table::Deltas => 1,
        Table::Snapshots => 2,
        Table::Tickers => 3,
        Table::Lifecycle => 4,
        Table::Gaps => 5,
    }
}

/// Bytes of the store's files (database, WAL, shared memory).
pub fn disk_bytes(data_dir: &Path) -> u64 {
    let db = db_path(data_dir);
    let mut total = 0;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        if let Ok(meta) = std::fs::metadata(PathBuf::from(name)) {
            total += meta.len();
        }
    }
    total
}
