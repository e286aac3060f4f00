//! Every metric the deduplicator exports, named in one place (written by [`crate::events`]).

/// Rows received from a gatherer (`gatherer`, `table`).
pub const RECORDS_POLLED_TOTAL: &str = "dedup_records_polled_total";
/// Rows new to production (`table`).
pub const RECORDS_WRITTEN_TOTAL: &str = "dedup_records_written_total";
/// Copies absorbed, in memory or by the database (`table`).
pub const DUPLICATES_TOTAL: &str = "dedup_duplicates_total";
/// Age of the newest committed row while a gatherer holds uncommitted rows; 0 when current
/// (`gatherer`, `table`).
pub const SYNC_LAG_SECONDS: &str = "dedup_sync_lag_seconds";
/// 1 while every pull from the gatherer succeeds, else 0 (`gatherer`).
pub const GATHERER_HEALTH: &str = "dedup_gatherer_health";
/// 1 while production answers, else 0.
pub const RDS_CONNECTED: &str = "dedup_rds_connected";
/// Client connections open on the production PostgreSQL server (all databases), sampled
/// every 15 s. Not exported with SQLite production.
pub const PG_CONNECTIONS: &str = "dedup_pg_connections";
/// The production PostgreSQL server's `max_connections`, sampled with [`PG_CONNECTIONS`].
pub const PG_MAX_CONNECTIONS: &str = "dedup_pg_max_connections";
/// Failures by kind ([`crate::events::ErrorKind`]): `gatherer_unreachable`, `gatherer_refused`, `gatherer_tls`, `gatherer_unauthorized`, `gatherer_status`,
/// `gatherer_decode`, `gatherer_identity`, `ack`, `database`, `database_unreachable`,
/// `database_timeout`, `metadata`, `unknown_status`, `pg_stats` (a connection sample refused
/// by the server).
pub const ERRORS_TOTAL: &str = "dedup_errors_total";
/// Production transactions retried.
pub const RETRIES_TOTAL: &str = "dedup_retries_total";
/// Production transactions committed (`table`).
pub const TRANSACTIONS_TOTAL: &str = "dedup_transactions_total";
/// Exchange time → production commit, per committed row (`table`), seconds.
pub const COMMIT_LATENCY_SECONDS: &str = "dedup_commit_latency_seconds";
/// Metadata rows upserted (`kind`: series, events, markets).
pub const METADATA_UPSERTED_TOTAL: &str = "dedup_metadata_upserted_total";
/// Rows filed in production's `quarantine` instead of their table (`table`, `reason`:
/// `not_storable`, `refused`, `unreadable`).
pub const QUARANTINED_TOTAL: &str = "dedup_quarantined_total";
/// Gatherer cursors started over because the gatherer's store changed: a new store id, or
/// its sequence restarted below our cursor (their store was replaced).
pub const GATHERER_RESETS_TOTAL: &str = "dedup_gatherer_resets_total";
