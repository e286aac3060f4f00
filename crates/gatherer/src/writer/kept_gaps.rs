//! Gap records that arrive while a commit is failing join the kept batch; without a bound a
//! store failing for hours kept every one of them (a lossy connection records thousands a
//! second). While the batch is retried, gaps are coalesced per market, channel and reason: a
//! new one widens the window of the one already kept (earliest start, latest end), so the kept
//! batch grows by at most one gap per (market, channel, reason), whatever the failure's length.
//!
//! Widening never hides a loss: the merged window covers both originals, and the time between
//! them fell inside the same store failure, when nothing of that market was being stored
//! either (what the router dropped meanwhile is itself recorded as such a gap).

use kd_core::{Gap, Record};
use std::collections::HashMap;

/// (ticker, tickers, channel, reason): a record per subscription coalesces only with one naming
/// the same markets, so widening never moves a market into or out of a gap.
type Key = (Option<String>, Vec<String>, String, String);

/// The gaps this retry added to the kept batch, by [`Key`] → batch index.
#[derive(Debug, Default)]
pub(super) struct KeptGaps {
    index: HashMap<Key, usize>,
}

impl KeptGaps {
    /// Gap records added to the batch (one per key).
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Adds `gap` to `batch`, or widens the kept gap of its market, channel and reason.
    /// Returns true when it was coalesced.
    pub(super) fn keep(&mut self, batch: &mut Vec<Record>, gap: Gap) -> bool {
        let key = (
            gap.ticker.clone(),
            gap.tickers.clone(),
            gap.channel.clone(),
            gap.reason.clone(),
        );
        if let Some(&i) = self.index.get(&key)
            && let Some(Record::Gap(kept)) = batch.get_mut(i)
        {
            kept.start = kept.start.min(gap.start);
            kept.end = kept.end.max(gap.end);
            return true;
        }
        self.index.insert(key, batch.len());
        batch.push(Record::Gap(gap));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::TimestampUs;

    fn gap(ticker: &str, reason: &str, start: i64, end: i64) -> Gap {
        Gap {
            gatherer: "g".into(),
            gap_id: format!("{ticker}-{reason}-{start}"),
            ticker: Some(ticker.into()),
            tickers: Vec::new(),
            channel: "orderbook_delta".into(),
            start: TimestampUs::from_micros(start),
            end: TimestampUs::from_micros(end),
            reason: reason.into(),
            repair: "snapshot".into(),
        }
    }

    #[test]
    fn a_long_failure_keeps_one_gap_per_market_and_reason() {
        let mut batch = vec![Record::Gap(gap("A", "dropped", 0, 1))];
        let mut kept = KeptGaps::default();
        for i in 0..100_000 {
            let t = 10 + i * 10;
            kept.keep(&mut batch, gap("A", "dropped", t, t + 5));
            kept.keep(&mut batch, gap("B", "dropped", t, t + 5));
            kept.keep(&mut batch, gap("A", "seq_gap", t, t + 5));
        }
        // The gap already in the batch before the failure, plus one per (market, reason).
        assert_eq!(batch.len(), 4);
        let Some(Record::Gap(a)) = batch.get(1) else {
            panic!("{batch:?}")
        };
        assert_eq!(
            (a.start.micros(), a.end.micros()),
            (10, 10 + 99_999 * 10 + 5)
        );
    }
}
