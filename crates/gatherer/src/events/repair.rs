//! Events of the trade repair ([`crate::repair`]).

use super::InternalEvent;
use crate::metrics as m;
use kd_core::TimestampUs;
use kd_kalshi::rest::{RestError, TradesTier};

/// The downtime since the previous run's last stored trade is being backfilled.
pub struct DowntimeBackfillStarted {
    pub since: TimestampUs,
}

impl InternalEvent for DowntimeBackfillStarted {
    fn emit(self) {
        tracing::info!(since = %self.since.to_rfc3339(), "backfilling trades missed while down");
    }
}

/// `GET /historical/cutoff` failed or its `trades_created_ts` did not parse: the window is
/// read from both trade endpoints.
pub struct CutoffUnknown<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for CutoffUnknown<'_> {
    fn emit(self) {
        metrics::counter!(m::REPAIR_ERRORS_TOTAL, "kind" => "cutoff").increment(1);
        tracing::warn!(error = %self.error, "historical cutoff unknown; reading both trade endpoints");
    }
}

/// A page of a window could not be read after every attempt: the window's backfill stops
/// (other gatherers may hold its trades; verify names what is missing).
pub struct BackfillAbandoned<'a> {
    pub error: &'a RestError,
    pub tier: TradesTier,
    pub ticker: Option<&'a str>,
    pub reason: &'a str,
}

impl InternalEvent for BackfillAbandoned<'_> {
    fn emit(self) {
        metrics::counter!(m::REPAIR_ERRORS_TOTAL, "kind" => self.error.kind()).increment(1);
        tracing::error!(
            error = %self.error,
            endpoint = self.tier.path(),
            ticker = ?self.ticker,
            reason = self.reason,
            "trade backfill abandoned for this window"
        );
    }
}

/// A REST trade did not convert to a record (skipped).
pub struct TradeNotConverted<'a> {
    pub kind: &'static str,
    pub trade_id: &'a str,
}

impl InternalEvent for TradeNotConverted<'_> {
    fn emit(self) {
        metrics::counter!(m::REPAIR_ERRORS_TOTAL, "kind" => self.kind).increment(1);
        tracing::debug!(
            trade_id = self.trade_id,
            kind = self.kind,
            "REST trade not converted"
        );
    }
}

/// One window was read completely.
pub struct BackfillDone<'a> {
    pub ticker: Option<&'a str>,
    pub reason: &'a str,
    /// New trades from `/markets/trades`.
    pub live: u64,
    /// New trades from `/historical/trades`.
    pub historical: u64,
    /// The trade cutoff the historical part was cut by, when known.
    pub cutoff: Option<TimestampUs>,
}

impl InternalEvent for BackfillDone<'_> {
    fn emit(self) {
        let recovered = self.live + self.historical;
        metrics::counter!(m::REPAIR_TRADES_RECOVERED_TOTAL, "tier" => "live").increment(self.live);
        metrics::counter!(m::REPAIR_TRADES_RECOVERED_TOTAL, "tier" => "historical")
            .increment(self.historical);
        metrics::counter!(m::REPAIR_BACKFILLS_TOTAL, "reason" => self.reason.to_string())
            .increment(1);
        tracing::info!(
            ticker = ?self.ticker,
            reason = self.reason,
            recovered,
            live = self.live,
            historical = self.historical,
            cutoff = ?self.cutoff.map(|c| c.to_rfc3339()),
            "trade backfill done"
        );
    }
}

/// Stopping: the windows of gaps already known are read within a grace period.
pub struct StopWindowsReading {
    pub windows: usize,
}

impl InternalEvent for StopWindowsReading {
    fn emit(self) {
        tracing::info!(
            windows = self.windows,
            "reading trade windows of gaps before stopping"
        );
    }
}

/// Stopping: the grace period ended with windows unread.
pub struct StopWindowsUnread {
    pub windows: usize,
}

impl InternalEvent for StopWindowsUnread {
    fn emit(self) {
        metrics::counter!(m::REPAIR_ERRORS_TOTAL, "kind" => "unread_at_stop")
            .increment(self.windows as u64);
        tracing::warn!(
            windows = self.windows,
            "trade windows of gaps left unread at stop (other gatherers may hold them)"
        );
    }
}
