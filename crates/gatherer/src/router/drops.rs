//! Drop windows: while the writer queue stays full, dropped records are remembered per market
//! and channel; when it has room again each window becomes one gap.

use crate::sequence::{GapNotice, GapReason};
use kd_core::{Record, TimestampUs};
use std::collections::HashMap;

/// A drop window's key: market (when known) and channel.
type DropKey = (Option<String>, &'static str);
/// First and last drop, and the subscription of the dropped records (for a fresh snapshot).
type DropWindow = (TimestampUs, TimestampUs, Option<u64>);

/// The open drop windows of one connection.
#[derive(Debug, Default)]
pub(super) struct DropWindows {
    open: HashMap<DropKey, DropWindow>,
}

impl DropWindows {
    pub(super) fn is_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Notes a dropped record at `at` (exchange clock).
    pub(super) fn dropped(&mut self, record: &Record, at: TimestampUs) {
        let key = (subject_of(record), channel_of(record));
        let sid = match record {
            Record::Delta(d) => d.pos.sid,
            Record::Snapshot(s) => s.pos.sid,
            _ => None,
        };
        let window = self.open.entry(key).or_insert((at, at, sid));
        window.1 = at;
    }

    /// The queue has room again at `at` (exchange clock): every window as a gap notice.
    pub(super) fn close(&mut self, at: TimestampUs) -> Vec<GapNotice> {
        self.open
            .drain()
            .map(|((ticker, channel), (start, end, sid))| GapNotice {
                sid,
                ticker,
                channel: channel.to_string(),
                reason: GapReason::Dropped,
                start,
                end: end.max(at),
                expected: None,
                got: None,
            })
            .collect()
    }
}

/// The channel a record came from (for gaps).
fn channel_of(record: &Record) -> &'static str {
    match record {
        Record::Trade(_) => "trade",
        Record::Delta(_) | Record::Snapshot(_) => "orderbook_delta",
        Record::Ticker(_) => "ticker",
        Record::Lifecycle(l) if l.kind == "multivariate_market_lifecycle" => {
            "multivariate_market_lifecycle"
        }
        Record::Lifecycle(_) => "market_lifecycle_v2",
        Record::Gap(_) => "gap",
    }
}

fn subject_of(record: &Record) -> Option<String> {
    match record {
        Record::Trade(t) => Some(t.ticker.clone()),
        Record::Delta(d) => Some(d.ticker.clone()),
        Record::Snapshot(s) => Some(s.ticker.clone()),
        Record::Ticker(t) => Some(t.ticker.clone()),
        Record::Lifecycle(l) => Some(l.subject.clone()),
        Record::Gap(g) => g.ticker.clone(),
    }
}
