//! Names of the REST client's Prometheus metrics, in one place (DESIGN §7).

/// Requests completed, by `endpoint` (a path template such as `/markets/{ticker}/orderbook`)
/// and `status` (the HTTP code, or `transport` when no response arrived).
pub const REQUESTS_TOTAL: &str = "rest_requests_total";
/// Failed requests by `kind` ([`super::RestError::kind`]).
pub const ERRORS_TOTAL: &str = "rest_errors_total";
/// Retries scheduled by the retry helpers (each sleep before another attempt).
pub const RETRIES_TOTAL: &str = "rest_retries_total";
/// 401/403 answers and local signing failures: credentials need a human.
pub const AUTH_FAILURES_TOTAL: &str = "rest_auth_failures_total";
/// Polls of `/exchange/status` while waiting out maintenance.
pub const MAINTENANCE_POLLS_TOTAL: &str = "rest_maintenance_polls_total";
/// Seconds spent waiting for the exchange to come back from maintenance.
pub const MAINTENANCE_WAIT_SECONDS_TOTAL: &str = "rest_maintenance_wait_seconds_total";
