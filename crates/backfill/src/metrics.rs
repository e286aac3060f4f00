//! The backfill's metrics, named in one place. The command is short-lived, so these are for
//! runs inside a long-lived process (tests, `up`) and for the final report's cross-check.

/// REST requests sent (pages of trades, market listings), by `endpoint` (`live`,
/// `historical`, `markets`).
pub const REQUESTS_TOTAL: &str = "backfill_requests_total";
/// Trades new to production.
pub const TRADES_INSERTED_TOTAL: &str = "backfill_trades_inserted_total";
/// Trades production already had.
pub const TRADES_DUPLICATE_TOTAL: &str = "backfill_trades_duplicate_total";
/// REST trades that could not be converted (bad field), skipped and counted.
pub const PARSE_ERRORS_TOTAL: &str = "backfill_parse_errors_total";
/// Chunks completed (watermark advanced or already past).
pub const CHUNKS_TOTAL: &str = "backfill_chunks_total";
