//! Late rows: rows production receives for a window already exported.
//!
//! A window is exported once it closed (end + settle). Rows can still reach production for it
//! afterwards: a production outage longer than the settle delay (the deduplicator commits its
//! backlog when production returns), a gatherer's downtime repair (REST trade backfill with old
//! exchange times), `kalshi-data backfill`. Each exported window records in production how many
//! rows it held ([`crate::layout::window_rows_name`]); the re-check compares that with how many
//! rows production holds now for the windows of the last `recheck_hours` before each table's
//! watermark, and exports a window again when production has more (counted as
//! `export_late_rows_total` and `export_reexports_total`). A re-export rewrites the same keys,
//! and the day's aggregates too when they were already written.
//!
//! Why a count and not a change log: production's time-series tables only ever gain rows
//! (`ON CONFLICT DO NOTHING`; nothing deletes from them), so "more rows than exported" is
//! exactly "a late row arrived", and it needs no schema change or trigger on the insert path.
//! A row committed while its window was being read is caught too: the recorded count is what
//! was read, not what production held a moment later.

use super::{ExportError, Exporter, Step};
use crate::events::{InternalEvent, LateRowsFound};
use crate::layout;
use crate::source::WindowSource;
use crate::window::{self, Window};
use kd_core::{Table, TimestampUs};
use std::collections::BTreeSet;

/// What one re-check found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecheckReport {
    /// Windows checked.
    pub checked: usize,
    /// Late rows found, every table.
    pub late_rows: u64,
    /// Windows exported again.
    pub reexported: Vec<(Table, Window)>,
}

const HOUR_US: i64 = 3_600_000_000;

impl<S: WindowSource> Exporter<S> {
    /// Re-checks the exported windows of the last `recheck_hours` before each table's
    /// watermark and exports again every one production now holds more rows for; then the
    /// aggregates of their days, when those were already written. A window with no recorded
    /// count counts as exported empty.
    pub async fn recheck(&self) -> Result<RecheckReport, ExportError> {
        let mut report = RecheckReport::default();
        let horizon = i64::try_from(self.config.recheck_hours)
            .unwrap_or(i64::MAX)
            .saturating_mul(HOUR_US);
        let mut days: BTreeSet<Window> = BTreeSet::new();
        for table in super::EXPORT_TABLES {
            let Some(wm) = self
                .source
                .watermark(&layout::watermark_name(table))
                .await?
            else {
                continue;
            };
            let from = TimestampUs::from_micros(wm.micros().saturating_sub(horizon));
            let windows: Vec<Window> = self
                .config
                .window_for(table)
                .windows(from, wm)
                .filter(|w| w.end <= wm)
                .collect();
            for w in windows {
                let name = layout::window_rows_name(table, w.start);
                // No recorded count: the window was never exported — it lies before the
                // table's first window (a backfill of trades older than the archive's start)
                // or was exported by a version that recorded none. Either way it holds
                // nothing of what production has now, so rows there are late too (rewriting
                // an old version's object is idempotent).
                let exported = match self.source.watermark(&name).await? {
                    Some(n) => u64::try_from(n.micros()).unwrap_or(0),
                    None => 0,
                };
                report.checked += 1;
                let now_rows = self.source.count_window(table, w.start, w.end).await?;
                if now_rows <= exported {
                    continue;
                }
                let late = now_rows - exported;
                LateRowsFound {
                    table,
                    window_start: w.start,
                    late,
                }
                .emit();
                self.run_step(Step::Window(table, w), false).await?;
                report.late_rows += late;
                report.reexported.push((table, w));
                days.extend(window::days(w.start, w.end));
            }
        }
        if self.config.aggregates && !days.is_empty() {
            let written = self.source.watermark(layout::AGGREGATES_WATERMARK).await?;
            for day in days {
                if written.is_some_and(|wm| wm >= day.end) {
                    self.run_step(Step::Day(day), false).await?;
                }
            }
        }
        Ok(report)
    }
}
