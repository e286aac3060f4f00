//! The archive exporter (DESIGN §5): closed windows of production become zstd Parquet files on
//! object storage — `raw/`, `processed/` and daily `aggregates/` — with a watermark per table.
//!
//! # Layout
//! - [`window`]: window lengths and epoch-aligned windows.
//! - [`layout`]: object keys (`raw/<table>/year=/month=/day=/[hour=]/…`).
//! - [`schema`]: Arrow schemas with units, records → record batches, the sort key.
//! - [`encode`]: Parquet encoding (zstd, row groups, key-value metadata).
//! - [`store`]: the object store (local folder or S3) and atomic puts.
//! - [`source`]: what the exporter reads ([`WindowSource`]) and an in-memory source.
//! - `production`: the production store (`kd-production`) as a [`WindowSource`] (feature
//!   `production`, on by default).
//! - [`processed`]: validation, deduplication, consistency flags, enrichment.
//! - [`aggregates`]: hourly OHLC, daily volume, market stats.
//! - [`exporter`]: planning, window export, watermarks, the continuous loop (`config`: what
//!   the operator writes; `encode_window`: a window's records → Parquet files).
//! - [`lifecycle`]: the S3 lifecycle document and its signed `PutBucketLifecycleConfiguration`.
//! - [`events`]: every observable event as a type whose `emit()` logs and counts it together,
//!   and the typed failure [`events::Stage`].
//! - [`metrics`]: the `export_*` metric names.
//! - [`server`]: `/health` and `/metrics` of the continuous exporter.
//! - [`cli`]: `kalshi-data export` arguments and the hand-run command with a progress bar.

pub mod aggregates;
pub mod cli;
pub mod encode;
pub mod events;
pub mod exporter;
pub mod layout;
pub mod lifecycle;
pub mod metrics;
pub mod processed;
#[cfg(feature = "production")]
pub mod production;
pub mod schema;
pub mod server;
pub mod source;
pub mod store;
pub mod window;

pub use exporter::{ExportConfig, ExportError, Exporter, Plan, Step, StepReport};
pub use source::{Completeness, MarketRef, MemorySource, SourceError, WindowSource};
pub use store::{Archive, S3Options, StoreError};
pub use window::{Window, WindowLen};
