//! The exporter's internal events (Vector's `emit()` style): one type per observable event,
//! whose [`InternalEvent::emit`] writes its log line and its metrics together. Metric names
//! live in [`crate::metrics`]; failure stages are the typed [`Stage`].

use crate::metrics as m;
use kd_core::{Table, TimestampUs};
use std::time::Duration;

/// Something observable happened: log it and count it.
pub trait InternalEvent {
    fn emit(self);
}

/// Where an export step failed (the `stage` label of `export_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Read,
    Encode,
    Write,
    Watermark,
    Metadata,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Read,
        Stage::Encode,
        Stage::Write,
        Stage::Watermark,
        Stage::Metadata,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Encode => "encode",
            Stage::Write => "write",
            Stage::Watermark => "watermark",
            Stage::Metadata => "metadata",
        }
    }
}

/// One object written: its rows and compressed bytes, under its dataset (a table or an
/// aggregate) and tier.
pub struct ObjectWritten<'a> {
    pub dataset: &'a str,
    pub tier: &'static str,
    pub rows: usize,
    pub bytes: usize,
}

impl InternalEvent for ObjectWritten<'_> {
    fn emit(self) {
        m::bytes(self.dataset, self.tier, self.bytes);
        m::rows(self.dataset, self.tier, self.rows);
    }
}

/// A table's window fully written (every tier).
pub struct WindowExported {
    pub table: Table,
    pub window_start: TimestampUs,
    pub rows: usize,
    pub bytes: usize,
    /// Dropped by the processed tier.
    pub duplicates: usize,
    pub elapsed: Duration,
}

impl InternalEvent for WindowExported {
    fn emit(self) {
        let table = self.table.name();
        metrics::counter!(m::DUPLICATES_REMOVED_TOTAL, "table" => table)
            .increment(self.duplicates as u64);
        metrics::histogram!(m::DURATION_SECONDS, "table" => table)
            .record(self.elapsed.as_secs_f64());
        tracing::debug!(table = %self.table, window = %self.window_start, rows = self.rows,
            bytes = self.bytes, "window exported");
    }
}

/// A step failed at `stage` (the caller logs or returns the error itself).
pub struct StepFailed {
    pub stage: Stage,
}

impl InternalEvent for StepFailed {
    fn emit(self) {
        metrics::counter!(m::ERRORS_TOTAL, "stage" => self.stage.as_str()).increment(1);
    }
}

/// How far a table's watermark is behind now.
pub struct LagMeasured {
    pub table: Table,
    pub seconds: f64,
}

impl InternalEvent for LagMeasured {
    fn emit(self) {
        metrics::gauge!(m::LAG_SECONDS, "table" => self.table.name()).set(self.seconds.max(0.0));
    }
}

/// How many closed windows of a table wait for production to be complete.
pub struct WindowsWaiting {
    pub table: Table,
    pub windows: usize,
}

impl InternalEvent for WindowsWaiting {
    fn emit(self) {
        // Display only: a window count as a gauge.
        metrics::gauge!(m::WINDOWS_WAITING, "table" => self.table.name()).set(self.windows as f64);
    }
}

/// A continuous-export cycle wrote something.
pub struct CycleExported {
    pub rows: usize,
    pub bytes: usize,
    pub objects: usize,
}

impl InternalEvent for CycleExported {
    fn emit(self) {
        tracing::info!(
            rows = self.rows,
            bytes = self.bytes,
            objects = self.objects,
            "archive export"
        );
    }
}

/// A continuous-export cycle failed; retried after a backoff.
pub struct CycleFailed<'a> {
    pub error: &'a dyn std::error::Error,
}

impl InternalEvent for CycleFailed<'_> {
    fn emit(self) {
        tracing::warn!(error = %self.error, retriable = true, "archive export failed; retrying");
    }
}

/// Rows found in production for a window already exported; the window is exported again.
pub struct LateRowsFound {
    pub table: Table,
    pub window_start: TimestampUs,
    /// Rows in production now minus rows in the exported object.
    pub late: u64,
}

impl InternalEvent for LateRowsFound {
    fn emit(self) {
        metrics::counter!(m::LATE_ROWS_TOTAL, "table" => self.table.name()).increment(self.late);
        metrics::counter!(m::REEXPORTS_TOTAL, "table" => self.table.name()).increment(1);
        tracing::info!(table = %self.table, window = %self.window_start, late_rows = self.late,
            "late rows in an exported window; exported again");
    }
}
