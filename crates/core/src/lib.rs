//! Shared foundations of kalshi-data.
//!
//! # Layout
//! - [`units`]: exact fixed-point price, count and time types, parsed straight from text.
//! - [`records`]: the time-series records every stage passes along.
//! - [`identity`]: what makes two copies one record ([`identity::Identity`], and its borrowing
//!   twin for hashing without copies) — the one implementation the merge and stores use.
//! - [`book`]: the order-book rebuild (snapshot + deltas) that `book`, `verify` and the
//!   archive share.
//! - [`prom_text`]: Prometheus text format read back (`status`, `up`, the tests).
//! - [`pull`]: the gatherer pull API contract the deduplicator speaks.
//! - [`table`]: the closed set of record tables (never built from input).
//! - [`backoff`]: the one exponential backoff with jitter of DESIGN §6.
//! - [`dir_lock`]: the exclusive lock one process holds on its data directory.
//! - [`config`]: TOML + environment + flag layering with errors that name the key.
//! - [`telemetry`]: tracing and the Prometheus recorder every process installs.
//! - [`sd_notify`]: readiness and watchdog notifications to systemd.
//! - [`shutdown`]: Ctrl-C / SIGTERM to a cancellation token.
//! - [`validate`]: what a record must satisfy to be stored (the edge's and production's check).

pub mod backoff;
pub mod book;
pub mod config;
pub mod dir_lock;
pub mod prom_text;
pub mod pull;
pub mod records;
pub mod sd_notify;
// After `records`, whose types it is built from.
pub mod identity;
pub mod shutdown;
pub mod table;
pub mod telemetry;
pub mod units;
pub mod validate;

pub use records::{
    Gap, Lifecycle, OrderbookDelta, OrderbookSnapshot, Record, Side, SnapshotSource, Ticker, Trade,
};
pub use table::Table;
pub use units::{Count, Price, TimestampUs, UnitError};
