//! Completeness: a window is exported only once production holds every gatherer's rows of it.
//!
//! The deduplicator records, per gatherer and table, a time `complete_through` such that every
//! row that gatherer committed before it is in production (`sync_progress`, see
//! `kd_dedup::progress`). A window `[start, end)` of a table is complete when every gatherer's
//! `complete_through` for that table is at least `end + settle`: the settle delay is what a
//! record may take from its exchange time to the gatherer's store, so by then every row of the
//! window a gatherer will ever receive in normal operation is in production.
//!
//! A gatherer whose progress was last proved more than `gatherer_down_secs` (default 600 s)
//! ago is taken as **down** and not waited for: otherwise one dead gatherer would stop the
//! archive for good. Its rows, if it ever delivers them, arrive late and the late-row re-check
//! ([`super::recheck`]) exports those windows again. The bound is above an ordinary production
//! outage (the deduplicator cannot prove anything while production is down, so every
//! gatherer's progress ages; 10 min covers the 8-minute outage the tests make, after which the
//! backlog commits and progress moves within seconds) and far below the re-check horizon (48 h).
//! The same rule covers a stopped deduplicator: after 10 min the exporter carries on by time
//! alone, and the re-check repairs what the deduplicator commits later.
//!
//! Without any progress rows (an older deduplicator, SQLite tests, a fresh install) the
//! exporter waits for the window's end plus the settle delay only, as before.

use super::{ExportError, Exporter};
use crate::events::{InternalEvent, WindowsWaiting};
use crate::source::WindowSource;
use kd_core::{Table, TimestampUs};

impl<S: WindowSource> Exporter<S> {
    /// The latest window end of `table` production is complete for at `now` (every live
    /// gatherer's `complete_through` minus the settle delay), `None` when no live gatherer
    /// constrains it.
    pub(super) async fn complete_until(
        &self,
        table: Table,
        now: TimestampUs,
    ) -> Result<Option<TimestampUs>, ExportError> {
        let down_us = i64::try_from(self.config.gatherer_down_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        let settle = self.settle_us();
        let through = self
            .source
            .completeness(table)
            .await?
            .iter()
            .filter(|c| now.micros().saturating_sub(c.updated_at.micros()) <= down_us)
            .map(|c| c.complete_through.micros())
            .min();
        Ok(through.map(|t| TimestampUs::from_micros(t.saturating_sub(settle))))
    }

    /// The settle delay in microseconds.
    pub(super) fn settle_us(&self) -> i64 {
        i64::try_from(self.config.settle_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000)
    }

    /// Publishes `export_windows_waiting{table}`: windows whose end + settle has passed but
    /// that wait for a gatherer's rows to be complete in production.
    pub(super) fn report_waiting(&self, table: Table, windows: usize) {
        WindowsWaiting { table, windows }.emit();
    }
}

#[cfg(test)]
mod tests {
    use crate::{Archive, ExportConfig, Exporter, MemorySource, S3Options, Step};
    use kd_core::records::Gap;
    use kd_core::{Record, Table, TimestampUs};

    const HOUR: i64 = 3_600_000_000;
    const SEC: i64 = 1_000_000;

    fn windows(steps: &[Step]) -> usize {
        steps
            .iter()
            .filter(|s| matches!(s, Step::Window(Table::Gaps, _)))
            .count()
    }

    #[tokio::test]
    async fn a_window_waits_for_every_live_gatherer() -> Result<(), crate::ExportError> {
        let t0 = 1_767_571_200_000_000_i64; // 2026-01-05, an hour boundary
        let mut source = MemorySource::new();
        source.insert([Record::Gap(Gap {
            gatherer: "g1".into(),
            gap_id: "x".into(),
            ticker: None,
            tickers: Vec::new(),
            channel: "orderbook_delta".into(),
            start: TimestampUs::from_micros(t0 + 10),
            end: TimestampUs::from_micros(t0 + 20),
            reason: "seq_gap".into(),
            repair: "snapshot".into(),
        })]);
        let dir = std::env::temp_dir();
        let archive = Archive::open(&format!("file://{}", dir.display()), &S3Options::default())?;
        let config = ExportConfig {
            aggregates: false,
            ..ExportConfig::default()
        };
        let exporter = Exporter::new(source, archive, config);
        let ts = |us: i64| TimestampUs::from_micros(t0 + us);
        // Closed by time (end + 120 s) and no progress known: due.
        let now = ts(HOUR + 121 * SEC);
        assert_eq!(windows(&exporter.plan(now).await?.steps), 1);
        // One gatherer complete past end + settle, another not: waits.
        let src = exporter.source();
        src.set_completeness(Table::Gaps, "a", ts(HOUR + 130 * SEC), now);
        src.set_completeness(Table::Gaps, "b", ts(HOUR + 100 * SEC), now);
        assert_eq!(windows(&exporter.plan(now).await?.steps), 0);
        // b completes: due.
        src.set_completeness(Table::Gaps, "b", ts(HOUR + 120 * SEC), now);
        assert_eq!(windows(&exporter.plan(now).await?.steps), 1);
        // b stuck behind but last proved 10 min + 1 s ago: known down, not waited for.
        let later = ts(HOUR + 721 * SEC);
        src.set_completeness(Table::Gaps, "a", ts(HOUR + 700 * SEC), later);
        src.set_completeness(Table::Gaps, "b", ts(HOUR + 100 * SEC), ts(HOUR + 120 * SEC));
        assert_eq!(windows(&exporter.plan(later).await?.steps), 1);
        // … but 10 min exactly is still live.
        let edge = ts(HOUR + 720 * SEC);
        assert_eq!(windows(&exporter.plan(edge).await?.steps), 0);
        Ok(())
    }
}
