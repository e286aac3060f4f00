//! The exporter: closed windows of production → Parquet objects, then watermarks.
//!
//! For each table, the next window starts at the table's watermark (`archive.<table>` in
//! production; the oldest record's window when there is none) and is exported once it is
//! closed — its end plus a settle delay (for records still travelling from the gatherers) is
//! in the past — and production is complete for it (`complete`: every gatherer's rows up to
//! the window's end + settle are committed, or that gatherer is known down). Each window writes `raw/` and `processed/`, and only then advances the
//! watermark: a crash replays the window, which rewrites the same keys (idempotent). After
//! downtime every missed window is exported in order. Daily aggregates follow once every
//! table's watermark has passed the day's end (`archive.aggregates`).
//!
//! - `complete`: a window waits until production is complete for it (every live gatherer's
//!   `sync_progress` past its end + settle).
//! - `config`: [`ExportConfig`], what the operator writes.
//! - `encode_window`: a window's records → its Parquet files (CPU only).
//! - this file: planning, the steps, watermarks, the continuous loop.

mod complete;
mod config;
mod encode_window;
mod lag;
mod recheck;

pub use config::ExportConfig;
pub use recheck::RecheckReport;

use crate::aggregates::{AggregateError, DayAggregator};
use crate::encode::{self, EncodeError, FileMeta};
use crate::events::{
    CycleExported, CycleFailed, InternalEvent, LagMeasured, ObjectWritten, Stage, StepFailed,
    WindowExported,
};
use crate::layout::{self, Tier};
use crate::metrics;
use crate::processed::PROCESSED_TABLES;
use crate::schema::{self, SchemaError};
use crate::server::Health;
use crate::source::{SourceError, WindowSource};
use crate::store::{Archive, StoreError};
use crate::window::{self, Window, WindowLen};
use encode_window::encode_window;
use kd_core::backoff::BackoffPolicy;
use kd_core::{Table, TimestampUs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The tables exported, in export order.
pub const EXPORT_TABLES: [Table; 6] = Table::ALL;

/// Why an export step failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Aggregate(#[from] AggregateError),
    #[error("encoding task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ExportError {
    /// Where it failed, by variant.
    pub fn stage(&self) -> Stage {
        match self {
            ExportError::Source(SourceError::Read { .. }) => Stage::Read,
            ExportError::Source(SourceError::Watermark { .. }) => Stage::Watermark,
            ExportError::Source(SourceError::Metadata(_)) => Stage::Metadata,
            ExportError::Source(SourceError::Progress(_)) => Stage::Read,
            ExportError::Store(_) => Stage::Write,
            _ => Stage::Encode,
        }
    }
}

/// What one step wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Rows read from production.
    pub rows: usize,
    /// Compressed bytes written, all objects of the step.
    pub bytes: usize,
    /// Keys written.
    pub keys: Vec<String>,
    /// Duplicates the processed tier removed.
    pub duplicates: usize,
}

/// One unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Export one table's window.
    Window(Table, Window),
    /// Write the aggregates of one UTC day.
    Day(Window),
}

/// The work to do, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// The exporter over a production source and an archive.
pub struct Exporter<S> {
    source: S,
    archive: Archive,
    config: ExportConfig,
    health: Option<Arc<Health>>,
    /// Windows the last plan found closed by time but waiting for completeness, all tables.
    waiting: AtomicUsize,
}

impl<S: WindowSource> Exporter<S> {
    pub fn new(source: S, archive: Archive, config: ExportConfig) -> Self {
        Exporter {
            source,
            archive,
            config,
            health: None,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Reports each cycle of [`Exporter::run`] to `health` (served at `/health`).
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    /// Where `table`'s next export starts: its watermark, else its oldest record's window.
    async fn next_start(&self, table: Table) -> Result<Option<TimestampUs>, ExportError> {
        if let Some(wm) = self
            .source
            .watermark(&layout::watermark_name(table))
            .await?
        {
            return Ok(Some(wm));
        }
        Ok(self
            .source
            .earliest(table)
            .await?
            .map(|ts| self.config.window_for(table).window_of(ts).start))
    }

    /// The closed windows not yet exported, then the days whose aggregates are due.
    pub async fn plan(&self, now: TimestampUs) -> Result<Plan, ExportError> {
        let settle = self.settle_us();
        let time_bound = TimestampUs::from_micros(now.micros().saturating_sub(settle));
        let mut steps = Vec::new();
        // How far every table will have been exported once this plan ran.
        let mut covered_until = time_bound;
        let mut waiting_total = 0;
        for table in EXPORT_TABLES {
            let len = self.config.window_for(table);
            let Some(mut start) = self.next_start(table).await? else {
                self.report_waiting(table, 0);
                continue;
            };
            // Closed by time and complete in production.
            let closed_bound = match self.complete_until(table, now).await? {
                Some(complete) => time_bound.min(complete),
                None => time_bound,
            };
            let waiting = len
                .windows(closed_bound.max(start), time_bound)
                .filter(|w| w.end > closed_bound && w.end <= time_bound)
                .count();
            self.report_waiting(table, waiting);
            waiting_total += waiting;
            if !len.is_aligned(start) {
                // The window length changed since the watermark was written: one short window
                // up to the next boundary, so no row is exported under two keys.
                let end = len.window_of(start).end;
                if end > closed_bound {
                    covered_until = covered_until.min(start);
                    continue;
                }
                steps.push(Step::Window(table, Window { start, end }));
                start = end;
            }
            let mut last_end = start;
            for w in len.windows(start, closed_bound) {
                if w.end > closed_bound {
                    break;
                }
                last_end = w.end;
                steps.push(Step::Window(table, w));
            }
            covered_until = covered_until.min(last_end);
        }
        self.waiting.store(waiting_total, Ordering::Relaxed);
        if self.config.aggregates {
            let from = match self.source.watermark(layout::AGGREGATES_WATERMARK).await? {
                Some(wm) => Some(wm),
                None => self.first_day().await?,
            };
            if let Some(from) = from {
                for day in window::days(from, covered_until) {
                    if day.end <= covered_until {
                        steps.push(Step::Day(day));
                    }
                }
            }
        }
        Ok(Plan { steps })
    }

    async fn first_day(&self) -> Result<Option<TimestampUs>, ExportError> {
        let mut first: Option<TimestampUs> = None;
        for table in EXPORT_TABLES {
            if let Some(ts) = self.source.earliest(table).await? {
                first = Some(first.map_or(ts, |f| f.min(ts)));
            }
        }
        Ok(first.map(|ts| WindowLen::DAY.window_of(ts).start))
    }

    /// Exports the windows and days covering `[from, to)` without touching watermarks (a
    /// manual re-export; the keys are the same as the continuous exporter's).
    pub fn plan_range(&self, from: TimestampUs, to: TimestampUs) -> Plan {
        let mut steps = Vec::new();
        for table in EXPORT_TABLES {
            for w in self.config.window_for(table).windows(from, to) {
                steps.push(Step::Window(table, w));
            }
        }
        if self.config.aggregates {
            for day in window::days(from, to) {
                steps.push(Step::Day(day));
            }
        }
        Plan { steps }
    }

    /// Runs one step; with `advance`, moves the step's watermark forward afterwards.
    pub async fn run_step(&self, step: Step, advance: bool) -> Result<StepReport, ExportError> {
        let result = match step {
            Step::Window(table, w) => {
                let report = self.export_window(table, w).await;
                // What the window held, for the late-row re-check (recorded even for a
                // manual re-export: it is what the object now holds).
                match report {
                    Ok(r) => self.record_rows(table, w, r.rows).await.map(|()| r),
                    Err(e) => Err(e),
                }
            }
            Step::Day(day) => self.export_day(day).await,
        };
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                StepFailed { stage: e.stage() }.emit();
                return Err(e);
            }
        };
        if advance {
            let (name, end) = match step {
                Step::Window(table, w) => (layout::watermark_name(table), w.end),
                Step::Day(day) => (layout::AGGREGATES_WATERMARK.to_string(), day.end),
            };
            let current = self.source.watermark(&name).await?;
            if current.is_none_or(|c| c < end)
                && let Err(e) = self.source.set_watermark(&name, end).await
            {
                StepFailed {
                    stage: Stage::Watermark,
                }
                .emit();
                return Err(e.into());
            }
            if let Step::Window(table, w) = step {
                let seconds = self.lag_beyond_due(table, w.end, TimestampUs::now());
                LagMeasured { table, seconds }.emit();
            }
        }
        Ok(report)
    }

    /// Exports one table's window to `raw/` (and `processed/`).
    pub async fn export_window(&self, table: Table, w: Window) -> Result<StepReport, ExportError> {
        let started = Instant::now();
        let records = self.source.read_window(table, w.start, w.end).await?;
        let rows = records.len();
        if rows == 0 {
            // An empty window writes no object; the watermark still records it as exported.
            return Ok(StepReport::default());
        }
        let want_processed = self.config.processed && PROCESSED_TABLES.contains(&table);
        let snapshots = if want_processed && table == Table::Deltas {
            self.source
                .read_window(Table::Snapshots, w.start, w.end)
                .await?
        } else {
            Vec::new()
        };
        let markets = if want_processed {
            let mut tickers: Vec<String> = records
                .iter()
                .map(|r| schema::sort_key(r).0.to_string())
                .collect();
            tickers.sort_unstable();
            tickers.dedup();
            self.source.market_refs(&tickers).await?
        } else {
            Default::default()
        };
        let row_group_rows = self.config.row_group_rows;
        let encoded = tokio::task::spawn_blocking(move || {
            encode_window(
                table,
                w,
                records,
                &snapshots,
                &markets,
                want_processed,
                row_group_rows,
            )
        })
        .await??;
        let mut report = StepReport {
            rows,
            ..StepReport::default()
        };
        for (tier, data) in encoded.files {
            let key = layout::table_key(tier, table, &w);
            report.bytes += data.len();
            ObjectWritten {
                dataset: table.name(),
                tier: tier.prefix(),
                rows: if tier == Tier::Raw {
                    rows
                } else {
                    rows - encoded.duplicates
                },
                bytes: data.len(),
            }
            .emit();
            self.archive.put_atomic(&key, data).await?;
            report.keys.push(key.to_string());
        }
        report.duplicates = encoded.duplicates;
        WindowExported {
            table,
            window_start: w.start,
            rows,
            bytes: report.bytes,
            duplicates: encoded.duplicates,
            elapsed: started.elapsed(),
        }
        .emit();
        Ok(report)
    }

    /// Writes the three aggregates of one UTC day.
    pub async fn export_day(&self, day: Window) -> Result<StepReport, ExportError> {
        let mut agg = DayAggregator::new();
        let mut rows = 0;
        for table in [
            Table::Trades,
            Table::Deltas,
            Table::Snapshots,
            Table::Tickers,
            Table::Lifecycle,
        ] {
            // Read in the table's own windows so a day of deltas is never in memory at once.
            for w in self.config.window_for(table).windows(day.start, day.end) {
                let records = self
                    .source
                    .read_window(table, w.start, w.end.min(day.end))
                    .await?;
                rows += records.len();
                for r in &records {
                    agg.add(r);
                }
            }
        }
        if rows == 0 {
            // A day without records writes no aggregate objects (like an empty window).
            return Ok(StepReport::default());
        }
        let markets = self.source.market_refs(&agg.tickers()).await?;
        let row_group_rows = self.config.row_group_rows;
        let files = tokio::task::spawn_blocking(move || -> Result<Vec<_>, ExportError> {
            let mut files = Vec::new();
            for (aggregate, batch) in agg.finish(day.start, &markets)? {
                let meta = FileMeta {
                    dataset: format!("aggregates.{}", aggregate.name()),
                    extra: vec![
                        ("kalshi_data.day_start".into(), day.start.to_rfc3339()),
                        ("kalshi_data.day_end".into(), day.end.to_rfc3339()),
                    ],
                    sorted_by_first_two: false,
                    row_group_rows,
                };
                let rows = batch.num_rows();
                files.push((
                    aggregate,
                    rows,
                    encode::encode(&batch.schema(), &[batch], &meta)?,
                ));
            }
            Ok(files)
        })
        .await??;
        let mut report = StepReport {
            rows,
            ..StepReport::default()
        };
        for (aggregate, agg_rows, data) in files {
            let key = layout::aggregate_key(aggregate, &day);
            report.bytes += data.len();
            ObjectWritten {
                dataset: aggregate.name(),
                tier: metrics::AGGREGATES_TIER,
                rows: agg_rows,
                bytes: data.len(),
            }
            .emit();
            self.archive.put_atomic(&key, data).await?;
            report.keys.push(key.to_string());
        }
        Ok(report)
    }

    /// Plans and runs everything due now, advancing watermarks; stops early on `shutdown`.
    pub async fn catch_up(&self, shutdown: &CancellationToken) -> Result<StepReport, ExportError> {
        let plan = self.plan(TimestampUs::now()).await?;
        let mut total = StepReport::default();
        for step in plan.steps {
            if shutdown.is_cancelled() {
                break;
            }
            let r = self.run_step(step, true).await?;
            total.rows += r.rows;
            total.bytes += r.bytes;
            total.duplicates += r.duplicates;
            total.keys.extend(r.keys);
        }
        Ok(total)
    }

    /// The continuous exporter: catches up, then exports each window as it closes, until
    /// `shutdown`. Errors are logged and counted, then retried with backoff (1 s → 60 s: after
    /// an outage of the archive or production the exporter is back within a minute);
    /// the watermark guarantees nothing is skipped.
    pub async fn run(&self, shutdown: CancellationToken) {
        let policy = BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut attempt = 0_u32;
        let mut last_recheck: Option<Instant> = None;
        metrics::register(self.config.processed, self.config.aggregates);
        loop {
            let mut cycle = self.catch_up(&shutdown).await;
            let recheck_due = last_recheck.is_none_or(|t| {
                t.elapsed() >= Duration::from_secs(self.config.recheck_interval_secs.max(1))
            });
            if cycle.is_ok() && recheck_due && self.config.recheck_hours > 0 {
                match self.recheck().await {
                    Ok(_) => last_recheck = Some(Instant::now()),
                    Err(e) => cycle = Err(e),
                }
            }
            let wait = match cycle {
                Ok(report) => {
                    attempt = 0;
                    if report.rows > 0 || !report.keys.is_empty() {
                        CycleExported {
                            rows: report.rows,
                            bytes: report.bytes,
                            objects: report.keys.len(),
                        }
                        .emit();
                    }
                    let (watermarks, next_due) = self.update_lag().await;
                    if let Some(health) = &self.health {
                        health.cycle_ok(watermarks);
                    }
                    // Wake when the next window closes rather than up to a poll interval
                    // later: the archive's latency is the window, the settle delay and the
                    // export, not a poll on top.
                    let poll = Duration::from_secs(self.config.poll_interval_secs.max(1));
                    let until_due = next_due.map_or(poll, |due| {
                        let us = due.micros().saturating_sub(TimestampUs::now().micros());
                        Duration::from_micros(u64::try_from(us).unwrap_or(0))
                    });
                    // Waiting for a gatherer's rows to reach production: look again each
                    // second (the deduplicator proves progress about that often), not at the
                    // 200 ms floor an overdue window would otherwise get.
                    let floor = if self.waiting.load(Ordering::Relaxed) > 0 {
                        Duration::from_secs(1)
                    } else {
                        Duration::from_millis(200)
                    };
                    poll.min(until_due.max(floor))
                }
                Err(e) => {
                    CycleFailed { error: &e }.emit();
                    if let Some(health) = &self.health {
                        health.cycle_failed(e.to_string());
                    }
                    let d = policy.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    d
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("archive exporter stopped");
    }

    /// Records in production how many rows the exported window held.
    async fn record_rows(&self, table: Table, w: Window, rows: usize) -> Result<(), ExportError> {
        let name = layout::window_rows_name(table, w.start);
        let count = TimestampUs::from_micros(i64::try_from(rows).unwrap_or(i64::MAX));
        if let Err(e) = self.source.set_watermark(&name, count).await {
            StepFailed {
                stage: Stage::Watermark,
            }
            .emit();
            return Err(e.into());
        }
        Ok(())
    }
}
