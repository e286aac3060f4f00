//! The exporter's metrics, named in one place (DESIGN §7).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `export_rows_total` | counter | `table`, `tier` (raw, processed, aggregates) |
//! | `export_bytes_total` | counter | `table`, `tier` — compressed bytes written |
//! | `export_duration_seconds` | histogram | `table` — one window, read to last put |
//! | `export_errors_total` | counter | `stage` (read, encode, write, watermark, metadata) |
//! | `export_lag_seconds` | gauge | `table` — now minus the table's watermark |
//! | `export_duplicates_removed_total` | counter | `table` — dropped by the processed tier |

use kd_core::Table;

pub fn rows(table: &str, tier: &'static str, n: usize) {
    metrics::counter!("export_rows_total", "table" => table.to_string(), "tier" => tier)
        .increment(n as u64);
}

pub fn bytes(table: &str, tier: &'static str, n: usize) {
    metrics::counter!("export_bytes_total", "table" => table.to_string(), "tier" => tier)
        .increment(n as u64);
}

pub fn duration(table: Table, seconds: f64) {
    metrics::histogram!("export_duration_seconds", "table" => table.name()).record(seconds);
}

pub fn error(stage: &'static str) {
    metrics::counter!("export_errors_total", "stage" => stage).increment(1);
}

pub fn lag(table: Table, seconds: f64) {
    metrics::gauge!("export_lag_seconds", "table" => table.name()).set(seconds);
}

pub fn duplicates(table: Table, n: usize) {
    metrics::counter!("export_duplicates_removed_total", "table" => table.name())
        .increment(n as u64);
}

/// Registers every series the continuous exporter can write, at zero, so `/metrics` shows them
/// from the start: `rate()` and `increase()` then work from the first window exported (hours
/// after start, with hourly windows and the settle delay), and dashboards show 0, not "no data".
pub fn register(processed: bool, aggregates: bool) {
    use crate::layout::{Aggregate, Tier};
    for table in crate::exporter::EXPORT_TABLES {
        rows(table.name(), Tier::Raw.prefix(), 0);
        bytes(table.name(), Tier::Raw.prefix(), 0);
        // Creating the handle registers the series (rendered with count 0 until a sample).
        let _ = metrics::histogram!("export_duration_seconds", "table" => table.name());
        if processed && crate::processed::PROCESSED_TABLES.contains(&table) {
            rows(table.name(), Tier::Processed.prefix(), 0);
            bytes(table.name(), Tier::Processed.prefix(), 0);
            duplicates(table, 0);
        }
    }
    if aggregates {
        for aggregate in Aggregate::ALL {
            rows(aggregate.name(), "aggregates", 0);
            bytes(aggregate.name(), "aggregates", 0);
        }
    }
    for stage in ["read", "encode", "write", "watermark", "metadata"] {
        metrics::counter!("export_errors_total", "stage" => stage).increment(0);
    }
}
