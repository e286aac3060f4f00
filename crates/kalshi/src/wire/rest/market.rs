//! Markets (`GET /markets`, `/markets/{ticker}`) and the objects nested in them.

use super::next_cursor;
use crate::wire::scalar::null_as_default;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// One band of a market's tick structure (`start`, `end`, `step` in dollars).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRange {
    pub start: String,
    pub end: String,
    pub step: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MveSelectedLeg {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_ticker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yes_settlement_value_dollars: Option<String>,
}

/// A market (`GET /markets`, `/markets/{ticker}`, nested in events).
///
/// Only `ticker` is required here: everything else Kalshi calls required has changed shape at
/// least once, and a registry that rejects a whole page over one odd field would stop tracking
/// markets. Times are RFC 3339 strings; prices `*_dollars` strings (legacy: integer cents);
/// counts `*_fp` strings (legacy: integers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Market {
    pub ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ticker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_sub_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_sub_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_expiration_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_expiration_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_timer_seconds: Option<i64>,
    /// Kalshi's full status (`initialized`, `active`, `inactive`, `closed`, `determined`,
    /// `finalized`, `settled`, …) — not the 4-value query filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notional_value_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_bid_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_bid_size_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_ask_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_ask_size_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_bid_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_ask_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_price_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_yes_bid_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_yes_ask_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_price_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_24h_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_interest_fp: Option<String>,
    /// Deprecated by Kalshi (always `"0.0000"` in 3.13, gone in 3.34).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liquidity_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_close_early: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fractional_trading_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_value_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_floor_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_bounds_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrence_datetime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_waiver_expiration_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_close_condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_primary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_secondary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_level_structure: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub price_ranges: Vec<PriceRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike_type: Option<String>,
    /// Strike values are the underlying's numbers, not prices: kept as JSON numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_strike: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_strike: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub functional_strike: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_strike: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mve_collection_ticker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mve_selected_legs: Option<Vec<MveSelectedLeg>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_participant_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_provisional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
    // Legacy integer fields (cents / whole contracts), read when the dollar/_fp form is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_bid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_ask: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_bid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_ask: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_yes_bid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_yes_ask: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_24h: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_interest: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liquidity: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notional_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_limit_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_price_units: Option<String>,
}

/// `GET /markets`: one page; pass `cursor` back until it is empty or absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MarketsPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub markets: Vec<Market>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /markets/{ticker}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketResponse {
    pub market: Market,
}

impl MarketsPage {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}
