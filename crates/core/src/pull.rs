//! The pull API contract between a gatherer and the deduplicator (DESIGN §3 "Pull API").
//!
//! - `GET /v1/pull/{table}?after=CURSOR&limit=N&wait_ms=MS` → [`PullResponse`]: the rows of
//!   `table` whose local sequence number is greater than `after`, in ascending order, at most
//!   `limit` (default 1000, max [`MAX_PULL_LIMIT`]). When none exist yet, the call waits up to
//!   `wait_ms` (default 0, max [`MAX_WAIT_MS`]) for new rows (long-poll) before answering.
//! - `POST /v1/ack/{table}` with [`AckRequest`] → 204: every row with sequence ≤ `cursor` is
//!   committed in production and may be deleted once older than the retention window.
//! - Both require `Authorization: Bearer TOKEN` when the gatherer is configured with a token
//!   (mandatory when it listens beyond loopback).
//!
//! The local sequence number is assigned in commit order by the gatherer's single writer, so a
//! cursor never skips a row that commits later.
//!
//! Every response names the local store it was read from (`store_id`, made when the store was
//! created): sequence numbers mean something only within one store, so a deduplicator that sees
//! a new id starts that gatherer's cursors over. A stored row the gatherer cannot read back
//! (its body is not JSON, or not the shape of its table's record) is answered as a
//! [`QuarantinedRow`] in `quarantined` instead of failing the page: the deduplicator files it
//! in production's `quarantine` table and its cursor moves past it like past any row.

pub mod codec;

use crate::records::Record;
use crate::table::Table;
use serde::{Deserialize, Serialize};

pub const MAX_PULL_LIMIT: usize = 50_000;
pub const MAX_WAIT_MS: u64 = 30_000;

/// One stored row: its local sequence number and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledRecord {
    pub seq: u64,
    pub record: Record,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    pub gatherer: String,
    pub table: Table,
    pub records: Vec<PulledRecord>,
    /// The highest sequence number committed in this table (for lag).
    pub head: u64,
    /// The id of the local store the rows come from (empty from a gatherer that predates it).
    #[serde(default)]
    pub store_id: String,
    /// Rows of this page the gatherer could not read, ascending by `seq`, interleaved by `seq`
    /// with `records` (every sequence number of the page is in one of the two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<QuarantinedRow>,
}

/// A stored row that is not a record: why, and its body as text (lossy UTF-8, at most
/// [`QUARANTINED_BODY_MAX`] bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedRow {
    pub seq: u64,
    pub reason: String,
    pub body: String,
}

/// How much of an unreadable body a pull answer carries.
pub const QUARANTINED_BODY_MAX: usize = 64 * 1024;

impl PullResponse {
    /// The highest sequence number the page covers (a record or a quarantined row).
    pub fn last_seq(&self) -> Option<u64> {
        let r = self.records.last().map(|r| r.seq);
        let q = self.quarantined.last().map(|q| q.seq);
        r.max(q)
    }

    /// Rows the page covers.
    pub fn rows(&self) -> usize {
        self.records.len() + self.quarantined.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub cursor: u64,
}
