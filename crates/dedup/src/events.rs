//! The deduplicator's internal events (Vector's `emit()` style): one type per observable
//! event, whose [`InternalEvent::emit`] writes its log line and its metrics together, so the
//! two never disagree. Metric names live in [`crate::metrics`]; failure kinds in [`ErrorKind`].

use crate::metrics as m;
use kd_core::Table;
use std::time::Duration;

/// Something observable happened: log it and count it.
pub trait InternalEvent {
    fn emit(self);
}

/// The `kind` label of `dedup_errors_total`: every failure the deduplicator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    GathererUnreachable,
    /// Connection refused: nothing listens at the gatherer's address.
    GathererRefused,
    /// The TLS handshake failed (unknown issuer, name mismatch, expired, client certificate).
    GathererTls,
    /// HTTP 401/403: the token does not match.
    GathererUnauthorized,
    GathererStatus,
    GathererDecode,
    GathererIdentity,
    Ack,
    Database,
    DatabaseUnreachable,
    DatabaseTimeout,
    Metadata,
    UnknownStatus,
    /// A connection sample the server refused.
    PgStats,
}

impl ErrorKind {
    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::GathererUnreachable => "gatherer_unreachable",
            ErrorKind::GathererRefused => "gatherer_refused",
            ErrorKind::GathererTls => "gatherer_tls",
            ErrorKind::GathererUnauthorized => "gatherer_unauthorized",
            ErrorKind::GathererStatus => "gatherer_status",
            ErrorKind::GathererDecode => "gatherer_decode",
            ErrorKind::GathererIdentity => "gatherer_identity",
            ErrorKind::Ack => "ack",
            ErrorKind::Database => "database",
            ErrorKind::DatabaseUnreachable => "database_unreachable",
            ErrorKind::DatabaseTimeout => "database_timeout",
            ErrorKind::Metadata => "metadata",
            ErrorKind::UnknownStatus => "unknown_status",
            ErrorKind::PgStats => "pg_stats",
        }
    }
}

impl From<kd_production::ErrorKind> for ErrorKind {
    fn from(kind: kd_production::ErrorKind) -> Self {
        match kind {
            kd_production::ErrorKind::Unreachable => ErrorKind::DatabaseUnreachable,
            kd_production::ErrorKind::Database => ErrorKind::Database,
        }
    }
}

fn count_error(kind: ErrorKind) {
    metrics::counter!(m::ERRORS_TOTAL, "kind" => kind.as_str()).increment(1);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An acknowledgement to a gatherer failed. Harmless: the next one covers it, and until then
/// the gatherer keeps the rows.
pub struct AckFailed<'a> {
    pub gatherer: &'a str,
    pub table: Table,
    pub error: &'a dyn std::error::Error,
}

impl InternalEvent for AckFailed<'_> {
    fn emit(self) {
        count_error(ErrorKind::Ack);
        tracing::debug!(gatherer = %self.gatherer, table = %self.table, error = %self.error, "ack failed");
    }
}

/// A pull failed; the gatherer is skipped for `retry_in`.
pub struct PullFailed<'a> {
    pub gatherer: &'a str,
    pub table: Table,
    pub error: &'a crate::pull_client::PullError,
    pub retry_in: Duration,
    /// Whether to log this one (the first failure and every tenth, not each retry).
    pub log: bool,
}

impl InternalEvent for PullFailed<'_> {
    fn emit(self) {
        count_error(self.error.kind());
        if self.log {
            tracing::warn!(gatherer = %self.gatherer, table = %self.table, error = %self.error,
                retry_in_ms = millis(self.retry_in), "pull failed; skipping this gatherer for now");
        }
    }
}

/// A gatherer answers again after failures.
pub struct GathererReachable<'a> {
    pub gatherer: &'a str,
    pub table: Table,
}

impl InternalEvent for GathererReachable<'_> {
    fn emit(self) {
        tracing::info!(gatherer = %self.gatherer, table = %self.table, "gatherer reachable again");
    }
}

/// A gatherer's sequence restarted below our cursor (its store was replaced).
pub struct GathererReset<'a> {
    pub gatherer: &'a str,
    pub table: Table,
    pub head: u64,
    pub cursor: u64,
    /// The store the cursor counted in, and the one the gatherer now answers from (equal when
    /// only the head went below the cursor).
    pub old_store: &'a str,
    pub new_store: &'a str,
}

impl InternalEvent for GathererReset<'_> {
    fn emit(self) {
        metrics::counter!(m::GATHERER_RESETS_TOTAL).increment(1);
        if self.old_store != self.new_store {
            tracing::warn!(gatherer = %self.gatherer, table = %self.table, head = self.head,
                cursor = self.cursor, old_store = %self.old_store, new_store = %self.new_store,
                "gatherer store replaced; re-reading it from the start");
        } else {
            tracing::warn!(gatherer = %self.gatherer, table = %self.table, head = self.head, cursor = self.cursor,
                "gatherer head below our cursor; re-reading it from the start");
        }
    }
}

/// Rows filed in production's `quarantine` instead of their table.
pub struct RowsQuarantined<'a> {
    pub table: Table,
    /// `not_storable`, `refused` or `unreadable`.
    pub reason_kind: &'static str,
    pub rows: u64,
    /// One example reason (the first row's).
    pub reason: &'a str,
}

impl InternalEvent for RowsQuarantined<'_> {
    fn emit(self) {
        metrics::counter!(m::QUARANTINED_TOTAL, "table" => self.table.name(), "reason" => self.reason_kind)
            .increment(self.rows);
        tracing::error!(table = %self.table, rows = self.rows, kind = self.reason_kind, reason = %self.reason,
            "rows filed in quarantine instead of production; the cursor moves past them");
    }
}

/// At start: every table's quarantine counter exists at 0, so the RowsQuarantined alert's
/// `increase()` sees the first quarantined row (a counter born at 1 shows no increase).
pub struct QuarantineCounted;

impl InternalEvent for QuarantineCounted {
    fn emit(self) {
        for table in Table::ALL {
            for reason in ["not_storable", "refused", "unreadable"] {
                metrics::counter!(m::QUARANTINED_TOTAL, "table" => table.name(), "reason" => reason)
                    .increment(0);
            }
        }
    }
}

/// Rows received from a gatherer.
pub struct RecordsPolled<'a> {
    pub gatherer: &'a str,
    pub table: Table,
    pub rows: usize,
}

impl InternalEvent for RecordsPolled<'_> {
    fn emit(self) {
        metrics::counter!(m::RECORDS_POLLED_TOTAL, "gatherer" => self.gatherer.to_string(), "table" => self.table.name())
            .increment(self.rows as u64);
    }
}

/// One merged batch committed: rows new to production, copies absorbed (in memory and by the
/// database), and the exchange-time → commit latency of each row.
pub struct BatchCommitted<'a> {
    pub table: Table,
    pub inserted: u64,
    pub duplicates: u64,
    pub records: &'a [kd_core::Record],
    pub now: kd_core::TimestampUs,
}

impl InternalEvent for BatchCommitted<'_> {
    fn emit(self) {
        let table = self.table.name();
        metrics::counter!(m::RECORDS_WRITTEN_TOTAL, "table" => table).increment(self.inserted);
        metrics::counter!(m::DUPLICATES_TOTAL, "table" => table).increment(self.duplicates);
        metrics::counter!(m::TRANSACTIONS_TOTAL, "table" => table).increment(1);
        let latency = metrics::histogram!(m::COMMIT_LATENCY_SECONDS, "table" => table);
        for r in self.records {
            // Display only (a histogram of seconds); never feeds back into data.
            latency.record((self.now.micros() - r.exchange_ts().micros()).max(0) as f64 / 1e6);
        }
    }
}

/// A production transaction failed; it is retried after `retry_in`, nothing acknowledged.
pub struct ProductionWriteFailed<'a> {
    pub table: Table,
    pub rows: usize,
    pub kind: ErrorKind,
    pub error: &'a str,
    pub retry_in: Duration,
}

impl InternalEvent for ProductionWriteFailed<'_> {
    fn emit(self) {
        count_error(self.kind);
        metrics::counter!(m::RETRIES_TOTAL).increment(1);
        tracing::warn!(table = %self.table, rows = self.rows, error = %self.error,
            retry_in_ms = millis(self.retry_in), "production write failed; retrying (nothing acknowledged)");
    }
}

/// Production answers again after failed writes.
pub struct ProductionReachable {
    pub table: Table,
    pub attempts: u32,
}

impl InternalEvent for ProductionReachable {
    fn emit(self) {
        tracing::info!(table = %self.table, attempts = self.attempts, "production reachable again");
    }
}

/// Preparing production (migrate, partitions, cursors) failed; retried after `retry_in`.
pub struct PrepareFailed<'a> {
    pub what: &'a str,
    pub error: &'a kd_production::StoreError,
    pub retry_in: Duration,
}

impl InternalEvent for PrepareFailed<'_> {
    fn emit(self) {
        count_error(self.error.kind().into());
        metrics::counter!(m::RETRIES_TOTAL).increment(1);
        tracing::warn!(error = %self.error, retry_in_ms = millis(self.retry_in), "{} failed; retrying", self.what);
    }
}

/// The idle connectivity check failed.
pub struct PingFailed<'a> {
    pub error: &'a kd_production::StoreError,
}

impl InternalEvent for PingFailed<'_> {
    fn emit(self) {
        count_error(self.error.kind().into());
    }
}

/// Creating partitions ahead failed; retried next hour.
pub struct PartitionsFailed<'a> {
    pub error: &'a kd_production::StoreError,
}

impl InternalEvent for PartitionsFailed<'_> {
    fn emit(self) {
        count_error(self.error.kind().into());
        tracing::warn!(error = %self.error, "creating partitions ahead failed; retrying next hour");
    }
}

/// Connections in use on the production server and its limit.
pub struct ConnectionsSampled {
    pub in_use: u64,
    pub max: u64,
}

impl InternalEvent for ConnectionsSampled {
    fn emit(self) {
        // Gauges are f64; connection counts are far below 2^53, so this is exact.
        metrics::gauge!(m::PG_CONNECTIONS).set(self.in_use as f64);
        metrics::gauge!(m::PG_MAX_CONNECTIONS).set(self.max as f64);
    }
}

/// Sampling the connections failed; the gauges keep their last value.
pub struct ConnectionSampleFailed<'a> {
    pub error: &'a kd_production::StoreError,
}

impl InternalEvent for ConnectionSampleFailed<'_> {
    fn emit(self) {
        count_error(if self.error.is_connection() {
            ErrorKind::DatabaseUnreachable
        } else {
            ErrorKind::PgStats
        });
        tracing::warn!(error = %self.error, "sampling production connections failed");
    }
}

/// Kalshi sent a market status this binary does not know (stored as NULL).
pub struct UnknownMarketStatus<'a> {
    pub ticker: &'a str,
    pub status: &'a str,
}

impl InternalEvent for UnknownMarketStatus<'_> {
    fn emit(self) {
        count_error(ErrorKind::UnknownStatus);
        tracing::warn!(ticker = %self.ticker, status = %self.status, "unknown Kalshi market status");
    }
}

/// One metadata pass upserted these rows.
pub struct MetadataSynced {
    pub series: u64,
    pub events: u64,
    pub markets: u64,
}

impl InternalEvent for MetadataSynced {
    fn emit(self) {
        metrics::counter!(m::METADATA_UPSERTED_TOTAL, "kind" => "series").increment(self.series);
        metrics::counter!(m::METADATA_UPSERTED_TOTAL, "kind" => "events").increment(self.events);
        metrics::counter!(m::METADATA_UPSERTED_TOTAL, "kind" => "markets").increment(self.markets);
        tracing::info!(
            series = self.series,
            events = self.events,
            markets = self.markets,
            "metadata synced"
        );
    }
}

/// A metadata pass failed; retried next cycle.
pub struct MetadataFailed<'a> {
    pub error: &'a dyn std::error::Error,
}

impl InternalEvent for MetadataFailed<'_> {
    fn emit(self) {
        count_error(ErrorKind::Metadata);
        tracing::warn!(error = %self.error, "metadata sync failed; retrying next cycle");
    }
}
