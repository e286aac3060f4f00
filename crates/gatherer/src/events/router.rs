//! Events of the router ([`crate::router`]) and its stages.

use super::InternalEvent;
use crate::metrics as m;
use crate::router::gaps::GapRepair;
use crate::sequence::GapNotice;

/// A gap was recorded (a gap row for the writer, a notice for repair).
pub struct GapRecorded<'a> {
    pub conn: usize,
    pub notice: &'a GapNotice,
    pub repair: GapRepair,
}

impl InternalEvent for GapRecorded<'_> {
    fn emit(self) {
        let n = self.notice;
        metrics::counter!(m::SEQUENCE_GAPS_TOTAL, "reason" => n.reason.as_str()).increment(1);
        tracing::info!(
            conn = self.conn,
            sid = ?n.sid,
            ticker = ?n.ticker,
            channel = %n.channel,
            reason = n.reason.as_str(),
            repair = self.repair.as_str(),
            expected = ?n.expected,
            got = ?n.got,
            "gap"
        );
    }
}

/// A frame larger than the limit was refused (the connection stays up).
pub struct FrameOversized {
    pub conn: usize,
    pub bytes: usize,
}

impl InternalEvent for FrameOversized {
    fn emit(self) {
        metrics::counter!(m::ROUTER_PARSE_ERRORS_TOTAL, "kind" => "oversized").increment(1);
        tracing::debug!(
            bytes = self.bytes,
            conn = self.conn,
            "oversized frame refused"
        );
    }
}

/// A frame did not parse (`kind`: the parse error's fixed label).
pub struct FrameNotParsed<'a> {
    pub conn: usize,
    pub kind: &'static str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for FrameNotParsed<'_> {
    fn emit(self) {
        metrics::counter!(m::ROUTER_PARSE_ERRORS_TOTAL, "kind" => self.kind).increment(1);
        tracing::debug!(error = %self.error, conn = self.conn, "frame not parsed");
    }
}

/// The writer queue has room again: the drop windows become gaps.
pub struct DropWindowsClosed {
    pub markets: usize,
}

impl InternalEvent for DropWindowsClosed {
    fn emit(self) {
        tracing::warn!(
            markets = self.markets,
            "writer queue was full; dropped records recorded as gaps"
        );
    }
}
