//! Recorded gap windows, and the question `verify` asks of them: did EVERY gatherer record a
//! gap covering this market, channel and instant? Only then may a delivered message be absent
//! from production without it being a loss of the platform (no copy can exist anywhere).

use kd_core::{Gap, TimestampUs};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Gap records grouped by gatherer, against the set of gatherers that ran.
#[derive(Debug, Clone, Default)]
pub struct GapIndex {
    by_gatherer: BTreeMap<String, GathererGaps>,
}

/// One gatherer's gaps, by market: `verify` asks about millions of messages, so each question
/// looks only at the gaps of its market and of the whole feed.
/// A record naming a subscription's markets is shared by each of them (`Arc`: at a million
/// markets one lost connection names 250,000 markets in about 250 records).
#[derive(Debug, Clone, Default)]
struct GathererGaps {
    by_ticker: HashMap<String, Vec<Arc<Gap>>>,
    whole_feed: Vec<Arc<Gap>>,
}

impl GathererGaps {
    fn push(&mut self, gap: Gap) {
        let gap = Arc::new(gap);
        if !gap.tickers.is_empty() {
            for t in &gap.tickers {
                self.by_ticker
                    .entry(t.clone())
                    .or_default()
                    .push(gap.clone());
            }
            return;
        }
        match &gap.ticker {
            Some(t) => self.by_ticker.entry(t.clone()).or_default().push(gap),
            None => self.whole_feed.push(gap),
        }
    }

    fn covers(&self, ticker: &str, chan: &str, ts: TimestampUs) -> bool {
        self.whole_feed
            .iter()
            .chain(self.by_ticker.get(ticker).into_iter().flatten())
            .any(|g| covers(g, ticker, chan, ts))
    }
}

/// Channel names as gatherers write them in gap records.
pub mod channel {
    pub const DELTA: &str = "orderbook_delta";
    pub const TRADE: &str = "trade";
    pub const TICKER: &str = "ticker";
    pub const LIFECYCLE: &str = "market_lifecycle_v2";
}

impl GapIndex {
    /// `gatherers`: every gatherer that fed production. A gatherer with no gap record covers
    /// everything, so nothing it could have seen is excused. Gatherers named only in gap
    /// records are added.
    pub fn new(gatherers: &[String], gaps: &[Gap]) -> Self {
        let mut by_gatherer: BTreeMap<String, GathererGaps> = gatherers
            .iter()
            .map(|g| (g.clone(), GathererGaps::default()))
            .collect();
        for gap in gaps {
            by_gatherer
                .entry(gap.gatherer.clone())
                .or_default()
                .push(gap.clone());
        }
        GapIndex { by_gatherer }
    }

    pub fn gatherers(&self) -> BTreeSet<&str> {
        self.by_gatherer.keys().map(String::as_str).collect()
    }

    /// True when every gatherer has a gap covering `ticker` on `chan` at `ts`.
    pub fn covered_by_all(&self, ticker: &str, chan: &str, ts: TimestampUs) -> bool {
        !self.by_gatherer.is_empty()
            && self
                .by_gatherer
                .values()
                .all(|gaps| gaps.covers(ticker, chan, ts))
    }
}

/// A gap covers a message when its window holds the time and it names the market (its one
/// market, one of its markets, or the whole feed) and the channel (or every channel).
pub fn covers(gap: &Gap, ticker: &str, chan: &str, ts: TimestampUs) -> bool {
    let ticker_ok = gap.names(ticker);
    let chan_ok = matches!(gap.channel.as_str(), "" | "*" | "all") || gap.channel == chan;
    ticker_ok && chan_ok && gap.start <= ts && ts <= gap.end
}

/// Whether the gatherer repaired the window (a fresh snapshot, REST trades, …).
pub fn is_repaired(gap: &Gap) -> bool {
    !matches!(gap.repair.as_str(), "" | "none")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(g: &str, ticker: Option<&str>, start: i64, end: i64) -> Gap {
        Gap {
            gatherer: g.into(),
            gap_id: format!("{g}-{start}"),
            ticker: ticker.map(Into::into),
            tickers: Vec::new(),
            channel: channel::DELTA.into(),
            start: TimestampUs::from_micros(start),
            end: TimestampUs::from_micros(end),
            reason: "seq_gap".into(),
            repair: "snapshot".into(),
        }
    }

    #[test]
    fn excused_only_when_every_gatherer_has_a_gap() {
        let names = vec!["a".to_string(), "b".to_string()];
        let t = TimestampUs::from_micros(15);
        let one = GapIndex::new(&names, &[gap("a", Some("M"), 10, 20)]);
        assert!(!one.covered_by_all("M", channel::DELTA, t));
        let both = GapIndex::new(
            &names,
            &[gap("a", Some("M"), 10, 20), gap("b", None, 0, 30)],
        );
        assert!(both.covered_by_all("M", channel::DELTA, t));
        assert!(!both.covered_by_all("N", channel::DELTA, t));
        assert!(!both.covered_by_all("M", channel::TRADE, t));
        assert!(!both.covered_by_all("M", channel::DELTA, TimestampUs::from_micros(25)));
    }

    #[test]
    fn one_record_covers_each_market_it_lists() {
        let names = vec!["a".to_string()];
        let mut sub = gap("a", None, 10, 20);
        sub.tickers = vec!["K".into(), "M".into(), "P".into()];
        let index = GapIndex::new(&names, &[sub]);
        let t = TimestampUs::from_micros(15);
        for listed in ["K", "M", "P"] {
            assert!(index.covered_by_all(listed, channel::DELTA, t), "{listed}");
        }
        // A list is not the whole feed.
        assert!(!index.covered_by_all("N", channel::DELTA, t));
        assert!(!index.covered_by_all("M", channel::DELTA, TimestampUs::from_micros(21)));
    }
}
