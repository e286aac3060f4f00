//! The exporter's metrics, named in one place (DESIGN §7); written by [`crate::events`].
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `export_rows_total` | counter | `table`, `tier` (raw, processed, aggregates) |
//! | `export_bytes_total` | counter | `table`, `tier` — compressed bytes written |
//! | `export_duration_seconds` | histogram | `table` — one window, read to last put |
//! | `export_errors_total` | counter | `stage` (read, encode, write, watermark, metadata) |
//! | `export_lag_seconds` | gauge | `table` — how long the table's next window has been due and not exported: now − (watermark + window length + settle), at least 0 (the window's natural delay is not lag) |
//! | `export_windows_waiting` | gauge | `table` — windows closed by time (end + settle passed) but not exported yet because a live gatherer's rows of them are not all in production (`sync_progress`) |
//! | `export_late_rows_total` | counter | `table` — rows found in production for a window already exported |
//! | `export_reexports_total` | counter | `table` — windows exported again because of late rows |
//! | `export_duplicates_removed_total` | counter | `table` — dropped by the processed tier |

use crate::events::Stage;

pub const ROWS_TOTAL: &str = "export_rows_total";
pub const BYTES_TOTAL: &str = "export_bytes_total";
pub const DURATION_SECONDS: &str = "export_duration_seconds";
pub const ERRORS_TOTAL: &str = "export_errors_total";
pub const LAG_SECONDS: &str = "export_lag_seconds";
pub const DUPLICATES_REMOVED_TOTAL: &str = "export_duplicates_removed_total";
pub const WINDOWS_WAITING: &str = "export_windows_waiting";
pub const LATE_ROWS_TOTAL: &str = "export_late_rows_total";
pub const REEXPORTS_TOTAL: &str = "export_reexports_total";

/// The `tier` label of the aggregates (the raw and processed tiers use [`crate::layout::Tier`]).
pub const AGGREGATES_TIER: &str = "aggregates";

pub(crate) fn rows(table: &str, tier: &'static str, n: usize) {
    metrics::counter!(ROWS_TOTAL, "table" => table.to_string(), "tier" => tier).increment(n as u64);
}

pub(crate) fn bytes(table: &str, tier: &'static str, n: usize) {
    metrics::counter!(BYTES_TOTAL, "table" => table.to_string(), "tier" => tier)
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
        let _ = metrics::histogram!(DURATION_SECONDS, "table" => table.name());
        metrics::counter!(LATE_ROWS_TOTAL, "table" => table.name()).increment(0);
        metrics::counter!(REEXPORTS_TOTAL, "table" => table.name()).increment(0);
        metrics::gauge!(WINDOWS_WAITING, "table" => table.name()).set(0.0);
        if processed && crate::processed::PROCESSED_TABLES.contains(&table) {
            rows(table.name(), Tier::Processed.prefix(), 0);
            bytes(table.name(), Tier::Processed.prefix(), 0);
            metrics::counter!(DUPLICATES_REMOVED_TOTAL, "table" => table.name()).increment(0);
        }
    }
    if aggregates {
        for aggregate in Aggregate::ALL {
            rows(aggregate.name(), AGGREGATES_TIER, 0);
            bytes(aggregate.name(), AGGREGATES_TIER, 0);
        }
    }
    for stage in Stage::ALL {
        metrics::counter!(ERRORS_TOTAL, "stage" => stage.as_str()).increment(0);
    }
}
