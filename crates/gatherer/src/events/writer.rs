//! Events of the writer thread ([`crate::writer`]): commits, their failures and recovery,
//! acknowledgements and retention.

use super::InternalEvent;
use crate::metrics as m;
use crate::store::Heads;
use kd_core::Table;
use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

/// What a failed commit means to an operator (`disk_full` reads differently).
fn cause(kind: &str) -> &'static str {
    if kind == "disk_full" {
        "disk full"
    } else {
        "write error"
    }
}

/// A commit failed; the batch is kept and retried. `loud` once at first and then every
/// `LOUD_EVERY` (an error line), otherwise a debug line, so a long outage does not flood logs.
pub struct CommitFailed<'a> {
    pub store: &'a Path,
    pub kind: &'static str,
    pub error: &'a dyn Display,
    pub rows: usize,
    pub failing_for: Duration,
    pub queued: usize,
    pub retry_in: Duration,
    pub loud: bool,
}

impl InternalEvent for CommitFailed<'_> {
    fn emit(self) {
        store_error_counters(self.kind);
        metrics::counter!(m::WRITER_RETRIES_TOTAL).increment(1);
        let cause = cause(self.kind);
        if self.loud {
            tracing::error!(store = %self.store.display(), kind = self.kind, error = %self.error,
                rows = self.rows, failing_for = ?self.failing_for, queued = self.queued,
                "{cause}: store commit failed; the batch is kept and retried, committed rows stay pullable");
        } else {
            tracing::debug!(kind = self.kind, error = %self.error, retry_in = ?self.retry_in,
                "commit failed; retrying");
        }
    }
}

/// A commit failed at shutdown after the grace: the batch's rows are dropped (the next start
/// records a downtime gap from the last stored row, which covers them).
pub struct RowsLostAtShutdown<'a> {
    pub store: &'a Path,
    pub kind: &'static str,
    pub error: &'a dyn Display,
    pub rows: usize,
}

impl InternalEvent for RowsLostAtShutdown<'_> {
    fn emit(self) {
        store_error_counters(self.kind);
        metrics::counter!(m::WRITER_DROPPED_TOTAL).increment(self.rows as u64);
        let cause = cause(self.kind);
        tracing::error!(store = %self.store.display(), kind = self.kind, error = %self.error,
            rows = self.rows,
            "{cause}: commit failed at shutdown; rows lost (the next start records a downtime gap from the last stored row)");
    }
}

fn store_error_counters(kind: &'static str) {
    metrics::counter!(m::WRITER_ERRORS_TOTAL).increment(1);
    metrics::counter!(m::STORE_WRITE_ERRORS_TOTAL, "kind" => kind).increment(1);
    metrics::gauge!(m::STORE_WRITE_FAILING).set(1.0);
}

/// The first commit after failures: the alarm clears.
pub struct StoreRecovered<'a> {
    pub store: &'a Path,
    pub failed_for: Duration,
    pub rows: usize,
    pub queued: usize,
}

impl InternalEvent for StoreRecovered<'_> {
    fn emit(self) {
        metrics::gauge!(m::STORE_WRITE_FAILING).set(0.0);
        tracing::warn!(store = %self.store.display(), failed_for = ?self.failed_for,
            rows = self.rows, queued = self.queued,
            "store takes writes again; the kept batch is committed");
    }
}

/// A batch was committed: its size, its time, and every row's receive-to-commit delay.
pub struct BatchCommitted<'a> {
    pub commit_time: Duration,
    pub rows: usize,
    /// Rows per table, in [`crate::store::index`] order.
    pub per_table: &'a [u64; 6],
    pub heads: Heads,
    /// Each row's delay from receipt to commit, in microseconds.
    pub delays_us: &'a mut dyn Iterator<Item = i64>,
}

impl InternalEvent for BatchCommitted<'_> {
    fn emit(self) {
        metrics::histogram!(m::WRITER_COMMIT_SECONDS).record(self.commit_time.as_secs_f64());
        metrics::histogram!(m::WRITER_BATCH_ROWS).record(self.rows as f64);
        metrics::counter!(m::WRITER_BATCHES_TOTAL).increment(1);
        let delay = metrics::histogram!(m::WRITER_RECEIVE_TO_COMMIT_SECONDS);
        for us in self.delays_us {
            delay.record(us.max(0) as f64 / 1e6);
        }
        for t in Table::ALL {
            let n = self.per_table[crate::store::index(t)];
            if n > 0 {
                metrics::counter!(m::WRITER_ROWS_TOTAL, "table" => t.name()).increment(n);
                metrics::gauge!(m::STORE_HEAD, "table" => t.name()).set(self.heads.get(t) as f64);
            }
        }
    }
}

/// The deduplicator acknowledged rows of a table; `unacked` is what stays.
pub struct Acknowledged {
    pub table: Table,
    pub unacked: u64,
}

impl InternalEvent for Acknowledged {
    fn emit(self) {
        metrics::gauge!(m::STORE_UNACKED_ROWS, "table" => self.table.name())
            .set(self.unacked as f64);
    }
}

/// An acknowledgement could not be recorded (the deduplicator retries it).
pub struct AckRefused<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for AckRefused<'_> {
    fn emit(self) {
        metrics::counter!(m::STORE_ERRORS_TOTAL, "kind" => "ack").increment(1);
        tracing::warn!(error = %self.error, "acknowledgement refused");
    }
}

/// A retention pass failed; the next interval retries it.
pub struct RetentionFailed<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for RetentionFailed<'_> {
    fn emit(self) {
        metrics::counter!(m::STORE_ERRORS_TOTAL, "kind" => "retention").increment(1);
        tracing::warn!(error = %self.error, "retention pass failed; retried next interval");
    }
}

/// A retention pass deleted acknowledged, expired rows (per table, in store index order).
pub struct RetentionDeleted<'a> {
    pub deleted: &'a [u64; 6],
}

impl InternalEvent for RetentionDeleted<'_> {
    fn emit(self) {
        for t in Table::ALL {
            let n = self.deleted[crate::store::index(t)];
            if n > 0 {
                metrics::counter!(m::STORE_RETENTION_DELETED_TOTAL, "table" => t.name())
                    .increment(n);
            }
        }
    }
}

/// The store's size and depth, refreshed periodically and after retention.
pub struct StoreStats {
    pub heads: Heads,
    pub acks: Heads,
    pub disk_bytes: u64,
}

impl InternalEvent for StoreStats {
    fn emit(self) {
        metrics::gauge!(m::STORE_DISK_BYTES).set(self.disk_bytes as f64);
        for t in Table::ALL {
            let depth = self.heads.get(t).saturating_sub(self.acks.get(t));
            metrics::gauge!(m::STORE_UNACKED_ROWS, "table" => t.name()).set(depth as f64);
            metrics::gauge!(m::STORE_HEAD, "table" => t.name()).set(self.heads.get(t) as f64);
        }
    }
}

/// The writer's queue depth after filling a batch.
pub struct QueueDepth(pub usize);

impl InternalEvent for QueueDepth {
    fn emit(self) {
        metrics::gauge!(m::WRITER_QUEUE_DEPTH).set(self.0 as f64);
    }
}

/// The writer stopped with everything received committed.
pub struct WriterStopped {
    pub heads: Heads,
    /// Folding the WAL into the database failed (it is replayed at the next start).
    pub checkpoint_error: Option<String>,
}

impl InternalEvent for WriterStopped {
    fn emit(self) {
        if let Some(error) = self.checkpoint_error {
            tracing::warn!(%error, "checkpoint at shutdown failed (the WAL is replayed next start)");
        }
        tracing::info!(heads = ?self.heads, "writer stopped; everything received is committed");
    }
}
