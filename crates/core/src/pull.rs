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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub cursor: u64,
}
