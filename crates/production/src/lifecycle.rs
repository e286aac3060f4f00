//! Lifecycle copies: how the rule of `kd_core::identity::lifecycle` is kept in the database.
//!
//! Each gatherer files a lifecycle message at its own receipt estimate, so the copies of one
//! change never share an exact key. `lifecycle_copies` (schema 2) records every copy the
//! deduplicator has filed — `(gatherer, subject, event_type, payload_hash, exchange_ts)`, and
//! `row_ts`, the `exchange_ts` of the `lifecycle` row it belongs to. A copy from gatherer G at
//! time t, in the transaction that advances G's cursor:
//!
//! 1. already in `lifecycle_copies` (same gatherer, key and t): a replay — nothing changes;
//! 2. else the nearest `lifecycle` row with the same key within ±`LIFECYCLE_MATCH_US` of t
//!    that holds no copy of G: a copy of that change — only the copy is recorded;
//! 3. else a new change: a `lifecycle` row at t, and its first copy.
//!
//! So a crash and replay adds nothing (1), three gatherers' copies are one row (2), and two real
//! changes — even identical ones inside the tolerance — stay two rows, because one gatherer
//! receives each message once (2 never gives a row a second copy of G). Both backends run
//! exactly these steps (`postgres::lifecycle`, `sqlite::lifecycle`); the in-memory twin in
//! kd-core is what the property tests exercise. Rows written before schema 2 have no copies:
//! a later copy within the tolerance joins them.

use kd_core::identity::lifecycle::LIFECYCLE_MATCH_US;

/// Advisory lock serialising lifecycle filing on PostgreSQL ("kdlif").
pub(crate) const COPY_LOCK: i64 = 0x006b_646c_6966;

/// The times a copy at `ts` may match (inclusive).
pub(crate) fn window(ts: i64) -> (i64, i64) {
    (
        ts.saturating_sub(LIFECYCLE_MATCH_US),
        ts.saturating_add(LIFECYCLE_MATCH_US),
    )
}
