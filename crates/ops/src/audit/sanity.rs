//! Trade, ticker and snapshot sanity: values the exchange never sends for a consistent market.
//! Reported, not part of the exit status (a strange value is stored as sent, on purpose).

use kd_core::{OrderbookSnapshot, Price, Ticker, Trade};
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sanity {
    pub trades: usize,
    /// A trade at $0 or $1 (no contract trades there).
    pub trade_price_out_of_range: usize,
    /// YES and NO prices that do not sum to $1.
    pub trade_prices_not_one_dollar: usize,
    /// A trade of zero or negative size.
    pub trade_count_not_positive: usize,
    /// Trade ids seen twice (production's identity should make this impossible).
    pub duplicate_trade_ids: usize,
    pub tickers: usize,
    /// A YES bid above the YES ask.
    pub ticker_bid_above_ask: usize,
    /// Negative volume or open interest.
    pub ticker_negative_totals: usize,
    pub snapshots: usize,
    /// Snapshot levels of zero or negative size.
    pub snapshot_levels_not_positive: usize,
}

pub fn check(trades: &[Trade], tickers: &[Ticker], snapshots: &[OrderbookSnapshot]) -> Sanity {
    let mut s = Sanity {
        trades: trades.len(),
        tickers: tickers.len(),
        snapshots: snapshots.len(),
        ..Sanity::default()
    };
    let mut ids = HashSet::with_capacity(trades.len());
    for t in trades {
        if t.yes_price.units() == 0 || t.yes_price == Price::ONE_DOLLAR {
            s.trade_price_out_of_range += 1;
        }
        if t.yes_price.units() + t.no_price.units() != Price::ONE_DOLLAR.units() {
            s.trade_prices_not_one_dollar += 1;
        }
        if t.count.is_zero() || t.count.is_negative() {
            s.trade_count_not_positive += 1;
        }
        if !ids.insert(t.trade_id.as_str()) {
            s.duplicate_trade_ids += 1;
        }
    }
    for t in tickers {
        if let (Some(bid), Some(ask)) = (t.yes_bid, t.yes_ask)
            && ask.units() != 0
            && bid > ask
        {
            s.ticker_bid_above_ask += 1;
        }
        if t.volume.is_some_and(|v| v.is_negative())
            || t.open_interest.is_some_and(|v| v.is_negative())
        {
            s.ticker_negative_totals += 1;
        }
    }
    for snap in snapshots {
        s.snapshot_levels_not_positive += snap
            .yes
            .iter()
            .chain(&snap.no)
            .filter(|l| l.size.is_zero() || l.size.is_negative())
            .count();
    }
    s
}
