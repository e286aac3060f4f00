//! Events of the pull API ([`crate::pull_api`]) and the clock estimate ([`crate::clock`]).

use super::InternalEvent;
use crate::metrics as m;
use kd_core::Table;
use std::fmt::Display;

/// A pull or acknowledgement was refused (`kind`: unauthorized, table, ack, store, …).
pub struct PullRefused {
    pub kind: &'static str,
}

impl InternalEvent for PullRefused {
    fn emit(self) {
        metrics::counter!(m::PULL_ERRORS_TOTAL, "kind" => self.kind).increment(1);
    }
}

/// The store could not answer a pull (the request is refused with HTTP 500).
pub struct PullFailed<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for PullFailed<'_> {
    fn emit(self) {
        tracing::error!(error = %self.error, "pull failed");
    }
}

/// A pull request arrived for a table.
pub struct PullRequested {
    pub table: Table,
}

impl InternalEvent for PullRequested {
    fn emit(self) {
        metrics::counter!(m::PULL_REQUESTS_TOTAL, "table" => self.table.name()).increment(1);
    }
}

/// A page of rows was served.
pub struct PullServed {
    pub table: Table,
    pub rows: usize,
}

impl InternalEvent for PullServed {
    fn emit(self) {
        metrics::counter!(m::PULL_ROWS_TOTAL, "table" => self.table.name())
            .increment(self.rows as u64);
    }
}

/// A page answered rows the store holds but cannot read, as quarantine entries.
pub struct RowsQuarantined {
    pub table: Table,
    pub rows: usize,
}

impl InternalEvent for RowsQuarantined {
    fn emit(self) {
        metrics::counter!(m::PULL_QUARANTINED_TOTAL, "table" => self.table.name())
            .increment(self.rows as u64);
        tracing::warn!(
            table = %self.table,
            rows = self.rows,
            "unreadable stored rows served as quarantine entries"
        );
    }
}

/// An acknowledgement was recorded.
pub struct AckServed {
    pub table: Table,
}

impl InternalEvent for AckServed {
    fn emit(self) {
        metrics::counter!(m::PULL_ACKS_TOTAL, "table" => self.table.name()).increment(1);
    }
}

/// The clock-offset estimate changed (`first`: the first estimate; `beyond_limit`: whether it
/// crossed the warning limit now, `Some(true)` going over, `Some(false)` coming back).
pub struct ClockOffsetChanged {
    pub offset_us: i64,
    pub first: bool,
    pub crossed_limit: Option<bool>,
    pub limit_us: i64,
}

impl InternalEvent for ClockOffsetChanged {
    fn emit(self) {
        let offset_ms = self.offset_us / 1_000;
        metrics::gauge!(m::GATHERER_CLOCK_OFFSET_SECONDS).set(self.offset_us as f64 / 1e6);
        if self.first {
            tracing::info!(offset_ms, "clock offset from the exchange estimated");
        }
        match self.crossed_limit {
            Some(true) => tracing::warn!(
                offset_ms,
                limit_ms = self.limit_us / 1_000,
                "this host's clock is off from the exchange's; exchange times are corrected \
                 with the estimate, but check NTP"
            ),
            Some(false) => tracing::info!(offset_ms, "clock offset back within limit"),
            None => {}
        }
    }
}
