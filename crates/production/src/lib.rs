//! The production store (DESIGN §4): where the deduplicator writes each record once, and what
//! the exporter, `verify`, `book`, `backfill` and `bench` read. One interface, two backends
//! chosen by URL:
//!
//! - `postgres://…` / `postgresql://…` → [`PgStore`]: a pooled PostgreSQL (or any compatible
//!   service), time-series tables partitioned by day, bulk inserts by binary `COPY` into a
//!   staging table and `INSERT … SELECT … ON CONFLICT DO NOTHING`.
//! - `sqlite://PATH` → [`SqliteStore`]: the embedded default, WAL mode, `INSERT OR IGNORE`.
//!
//! Both keep the promise the deduplicator depends on: [`Store::insert_batch`] inserts the
//! records and advances the gatherer cursors in **one transaction**, so a crash either keeps
//! both or neither. Table names come only from [`Table`](kd_core::Table) (static SQL); every
//! value is bound.
//!
//! This crate knows nothing of Kalshi or of the gatherers: readers of production depend on it
//! alone, not on the deduplicator.
//!
//! # Layout
//! - [`store`]: [`Store`], [`open`], and what an insert takes and returns.
//! - [`error`]: [`StoreError`] and its [`ErrorKind`] (outage or refusal).
//! - `lifecycle`: how lifecycle copies of several gatherers become one row (schema 2's
//!   `lifecycle_copies`), for both backends.
//! - [`quarantine`]: rows production refused or could not be given, with their reason
//!   (schema 3), for both backends.
//! - [`progress`]: how far production is complete per gatherer and table (schema 5's
//!   `sync_progress`), written by the deduplicator, read by the exporter.
//! - [`metadata`]: series, events, markets and the 4-value production status.
//! - `rows`: conversions between records and stored column values.
//! - `decode`: the one decoding of a stored row into a record, for both backends (each only
//!   says how to read a column of its row type).
//! - [`postgres`]: pool, migrations and daily partitions (`schema`), the COPY bulk path
//!   (`insert`), reads (`read`).
//! - [`sqlite`]: connection on the blocking pool, migrations (`schema`), reads (`read`).

mod decode;
pub mod error;
mod lifecycle;
pub mod metadata;
pub mod postgres;
pub mod progress;
pub mod quarantine;
mod queries;
mod rows;
pub mod sqlite;
pub mod store;

pub use error::{ErrorKind, StoreError};
pub use metadata::{EventRow, MarketRow, ProductionStatus, SeriesRow};
pub use postgres::PgStore;
pub use progress::SyncProgress;
pub use quarantine::{QuarantineCounts, QuarantineRow};
pub use sqlite::SqliteStore;
pub use store::{ConnectionUsage, CursorUpdate, InsertOutcome, Store, open};
