//! Object keys of the archive (DESIGN §5):
//!
//! ```text
//! raw/<table>/year=YYYY/month=MM/day=DD/[hour=HH/]<table>_<start>_<len>.parquet
//! processed/<table>/year=YYYY/month=MM/day=DD/[hour=HH/]<table>_<start>_<len>.parquet
//! aggregates/<name>/year=YYYY/month=MM/day=DD/<name>_<day>_1d.parquet
//! ```
//!
//! `<start>` is the window start in UTC (`20261127T1400Z`), `<len>` its length (`1h`). The key
//! is a pure function of (tier, table, window), which is what makes a re-export replace the same
//! object. Hive-style `key=value` folders let DuckDB, Spark and Athena prune partitions.

use crate::window::Window;
use kd_core::{Table, TimestampUs};
use object_store::path::Path;

/// The three trees of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Exactly what production holds, one file per table and window.
    Raw,
    /// Validated (sorted, deduplicated, consistency flags) and enriched (event, series).
    Processed,
}

impl Tier {
    pub const fn prefix(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Processed => "processed",
        }
    }
}

/// The aggregate datasets, each one file per UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Per market and hour: open/high/low/close YES price, volume, trade count.
    HourlyOhlc,
    /// Per market and per series, per day: volume, trade count, notional.
    DailyVolume,
    /// Per market and day: counts of every record type and price range.
    MarketStats,
}

impl Aggregate {
    pub const ALL: [Aggregate; 3] = [
        Aggregate::HourlyOhlc,
        Aggregate::DailyVolume,
        Aggregate::MarketStats,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Aggregate::HourlyOhlc => "hourly_ohlc",
            Aggregate::DailyVolume => "daily_volume",
            Aggregate::MarketStats => "market_stats",
        }
    }
}

/// Whether a window's objects go under an `hour=HH/` folder: every window shorter than a day
/// (hourly windows, the default for every table, and sub-hour ones).
pub fn hourly_partitions(window: &Window) -> bool {
    window.len() != crate::window::WindowLen::DAY
}

/// Compact UTC stamp for file names: `20261127T1405Z`.
pub fn stamp(ts: TimestampUs) -> String {
    let (y, mo, d, h) = ts.civil();
    let minute = ts.secs().rem_euclid(3600) / 60;
    format!("{y:04}{mo:02}{d:02}T{h:02}{minute:02}Z")
}

fn date_folders(ts: TimestampUs, with_hour: bool) -> String {
    let (y, mo, d, h) = ts.civil();
    if with_hour {
        format!("year={y:04}/month={mo:02}/day={d:02}/hour={h:02}")
    } else {
        format!("year={y:04}/month={mo:02}/day={d:02}")
    }
}

/// The key of one table's window in a tier.
pub fn table_key(tier: Tier, table: Table, window: &Window) -> Path {
    Path::from(format!(
        "{}/{}/{}/{}_{}_{}.parquet",
        tier.prefix(),
        table.name(),
        date_folders(window.start, hourly_partitions(window)),
        table.name(),
        stamp(window.start),
        window.len(),
    ))
}

/// The key of one aggregate's day.
pub fn aggregate_key(aggregate: Aggregate, day: &Window) -> Path {
    Path::from(format!(
        "aggregates/{}/{}/{}_{}_{}.parquet",
        aggregate.name(),
        date_folders(day.start, false),
        aggregate.name(),
        stamp(day.start),
        day.len(),
    ))
}

/// The watermark name of a table's export in production.
pub fn watermark_name(table: Table) -> String {
    format!("archive.{}", table.name())
}

/// The name under which production keeps how many rows the exported `table` window starting
/// at `start` held (in the watermark table, the count as the value): what the late-row
/// re-check compares production's current count with.
pub fn window_rows_name(table: Table, start: TimestampUs) -> String {
    format!("archive.{}.rows.{}", table.name(), start.micros())
}

/// The watermark name of the daily aggregates.
pub const AGGREGATES_WATERMARK: &str = "archive.aggregates";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowLen;

    #[test]
    fn keys_follow_the_design_layout() -> Result<(), crate::window::WindowError> {
        // 2026-11-27T14:05:00Z
        let t = TimestampUs::from_micros(1_764_252_300_000_000);
        let w = "5m".parse::<WindowLen>()?.window_of(t);
        assert_eq!(
            table_key(Tier::Raw, Table::Deltas, &w).as_ref(),
            "raw/deltas/year=2025/month=11/day=27/hour=14/deltas_20251127T1405Z_5m.parquet"
        );
        let day = WindowLen::DAY.window_of(t);
        assert_eq!(
            table_key(Tier::Processed, Table::Trades, &day).as_ref(),
            "processed/trades/year=2025/month=11/day=27/trades_20251127T0000Z_1d.parquet"
        );
        assert_eq!(
            aggregate_key(Aggregate::HourlyOhlc, &day).as_ref(),
            "aggregates/hourly_ohlc/year=2025/month=11/day=27/hourly_ohlc_20251127T0000Z_1d.parquet"
        );
        Ok(())
    }
}
