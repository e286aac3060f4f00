//! Events of the snapshot poller ([`crate::poller`]).

use super::InternalEvent;
use crate::metrics as m;
use kd_kalshi::parse::RestParseError;
use kd_kalshi::rest::RestError;

/// A poll cycle ended (`stored`: REST books handed to the writer).
pub struct PollCycleDone {
    pub markets: usize,
    pub stored: usize,
}

impl InternalEvent for PollCycleDone {
    fn emit(self) {
        metrics::counter!(m::POLLER_CYCLES_TOTAL).increment(1);
        tracing::info!(
            markets = self.markets,
            stored = self.stored,
            "snapshot poll cycle done"
        );
    }
}

/// A market's REST book was stored as a snapshot with source `rest`.
pub struct BookPolled;

impl InternalEvent for BookPolled {
    fn emit(self) {
        metrics::counter!(m::POLLER_SNAPSHOTS_TOTAL).increment(1);
    }
}

/// A market's book could not be fetched after the retries: skipped until the next cycle.
pub struct BookFetchFailed<'a> {
    pub ticker: &'a str,
    pub error: &'a RestError,
}

impl InternalEvent for BookFetchFailed<'_> {
    fn emit(self) {
        metrics::counter!(m::POLLER_ERRORS_TOTAL, "kind" => self.error.kind()).increment(1);
        tracing::debug!(ticker = %self.ticker, error = %self.error, "order book skipped this cycle");
    }
}

/// The answer held neither `orderbook_fp` nor the legacy `orderbook`.
pub struct BookEmpty<'a> {
    pub ticker: &'a str,
}

impl InternalEvent for BookEmpty<'_> {
    fn emit(self) {
        metrics::counter!(m::POLLER_ERRORS_TOTAL, "kind" => "empty").increment(1);
        tracing::debug!(ticker = %self.ticker, "order book answer without a book; skipped");
    }
}

/// The book's levels did not parse.
pub struct BookNotParsed<'a> {
    pub ticker: &'a str,
    pub error: &'a RestParseError,
}

impl InternalEvent for BookNotParsed<'_> {
    fn emit(self) {
        metrics::counter!(m::POLLER_ERRORS_TOTAL, "kind" => self.error.kind()).increment(1);
        tracing::debug!(ticker = %self.ticker, error = %self.error, "order book not parsed; skipped");
    }
}
