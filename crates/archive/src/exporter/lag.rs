//! `export_lag_seconds`: how long a table's next window has been due without being exported.
//!
//! A window `[start, end)` is due at `end + settle`; until then its data is not expected in the
//! archive — that is the window's natural delay, not lag. So the gauge is
//! `max(0, now − (watermark + window length + settle))`: about 0 on a healthy platform, and it
//! grows from the moment a window is overdue (production unreachable, the archive unreachable,
//! a stuck exporter). Measuring from the watermark alone showed a daily table 71,507 s behind
//! on a healthy platform.

use super::{EXPORT_TABLES, Exporter};
use crate::events::{InternalEvent, LagMeasured};
use crate::layout;
use crate::source::WindowSource;
use kd_core::{Table, TimestampUs};
use std::collections::BTreeMap;

impl<S: WindowSource> Exporter<S> {
    /// When a table's window starting at `start` is due: its end plus the settle delay.
    pub(super) fn due(&self, table: Table, start: TimestampUs) -> TimestampUs {
        let len = self.config.window_for(table).micros();
        let settle = i64::try_from(self.config.settle_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        TimestampUs::from_micros(start.micros().saturating_add(len).saturating_add(settle))
    }

    /// `export_lag_seconds` of a table exported up to `watermark`: how long its next window has
    /// been due (end + settle) without being exported, at least 0. The window's natural delay
    /// (its length and the settle delay) is not lag, so a healthy exporter shows about 0.
    pub(super) fn lag_beyond_due(
        &self,
        table: Table,
        watermark: TimestampUs,
        now: TimestampUs,
    ) -> f64 {
        let due = self.due(table, watermark);
        // Display only: microseconds to seconds for a gauge.
        (now.micros().saturating_sub(due.micros())).max(0) as f64 / 1e6
    }

    /// Sets `export_lag_seconds` from the watermarks (or, before the first export, from where it
    /// starts); returns the watermarks and when the next window of any table is due.
    pub(super) async fn update_lag(
        &self,
    ) -> (
        BTreeMap<Table, (TimestampUs, TimestampUs)>,
        Option<TimestampUs>,
    ) {
        let now = TimestampUs::now();
        let mut watermarks = BTreeMap::new();
        let mut next_due: Option<TimestampUs> = None;
        for table in EXPORT_TABLES {
            let since = match self.source.watermark(&layout::watermark_name(table)).await {
                Ok(Some(wm)) => {
                    watermarks.insert(table, (wm, self.due(table, wm)));
                    Some(wm)
                }
                // Nothing exported yet: the lag runs from where the first export starts (the
                // oldest record's window), so an exporter that never gets its first window out
                // shows a growing lag instead of no series at all; an empty table waits on
                // nothing (0).
                Ok(None) => match self.next_start(table).await {
                    Ok(start) => start,
                    Err(_) => continue,
                },
                Err(_) => continue,
            };
            let seconds = match since {
                Some(since) => {
                    let due = self.due(table, since);
                    next_due = Some(next_due.map_or(due, |d| d.min(due)));
                    self.lag_beyond_due(table, since, now)
                }
                None => 0.0,
            };
            LagMeasured { table, seconds }.emit();
        }
        (watermarks, next_due)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Archive, ExportConfig, Exporter, MemorySource, S3Options};
    use kd_core::{Table, TimestampUs};

    #[test]
    fn the_natural_delay_is_not_lag() -> Result<(), crate::StoreError> {
        let dir = std::env::temp_dir();
        let archive = Archive::open(&format!("file://{}", dir.display()), &S3Options::default())?;
        let exporter = Exporter::new(MemorySource::new(), archive, ExportConfig::default());
        let hour = 3_600_000_000_i64;
        let wm = TimestampUs::from_micros(100 * hour);
        let at = |us: i64| TimestampUs::from_micros(wm.micros() + us);
        // Right after the watermark and until the next window is due (1 h + 120 s): 0.
        assert_eq!(exporter.lag_beyond_due(Table::Trades, wm, at(0)), 0.0);
        assert_eq!(
            exporter.lag_beyond_due(Table::Trades, wm, at(hour + 120_000_000)),
            0.0
        );
        // Overdue by 5 s: 5 s.
        assert_eq!(
            exporter.lag_beyond_due(Table::Trades, wm, at(hour + 125_000_000)),
            5.0
        );
        assert_eq!(
            exporter.due(Table::Gaps, wm).micros(),
            wm.micros() + hour + 120_000_000
        );
        Ok(())
    }
}
