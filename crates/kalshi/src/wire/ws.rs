//! WebSocket messages as Kalshi sends them: the `msg` objects of each message type.
//!
//! Envelope: `{"type", "sid"?, "seq"?, "id"?, "msg"?}` — see [`Envelope`] (for writing) and
//! `parse::parse_ws` (for reading, which never builds an envelope value: it peeks `type` and
//! deserializes `msg` straight into the struct below).
//!
//! Every field is optional at this layer: the current format, the legacy format (integer cents,
//! whole-contract counts, second timestamps) and future additions all deserialize, and the parse
//! functions decide what is required, naming the missing field. Unknown fields are ignored.
//! Strings borrow from the input buffer ([`WireStr`]).

use super::scalar::{WireLevel, WireNum, WireStr};
use serde::{Deserialize, Serialize};

/// An outgoing/incoming envelope, for writers (the simulator, tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<'a, T> {
    #[serde(rename = "type", borrow)]
    pub msg_type: WireStr<'a>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub msg: Option<T>,
}

/// `orderbook_snapshot.msg`. A side with no levels is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderbookSnapshotMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_id: Option<WireStr<'a>>,
    /// Current: `[["0.0800", "300.00"], …]`.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_dollars_fp: Option<Vec<WireLevel<'a>>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub no_dollars_fp: Option<Vec<WireLevel<'a>>>,
    /// Transitional: dollar prices, integer counts.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_dollars: Option<Vec<WireLevel<'a>>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub no_dollars: Option<Vec<WireLevel<'a>>>,
    /// Legacy: integer cents, integer counts.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes: Option<Vec<WireLevel<'a>>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub no: Option<Vec<WireLevel<'a>>>,
}

/// `orderbook_delta.msg`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderbookDeltaMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_id: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub price_dollars: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub delta_fp: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub side: Option<WireStr<'a>>,
    /// RFC 3339 with microseconds (current) or integer seconds (legacy).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub ts: Option<WireNum<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
    /// Legacy integer cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// Legacy whole contracts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subaccount: Option<i64>,
}

/// `trade.msg`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TradeMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_id: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_price_dollars: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub no_price_dollars: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub count_fp: Option<WireStr<'a>>,
    /// Deprecated by Kalshi; read only when `taker_outcome_side`/`taker_book_side` are absent.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub taker_side: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub taker_outcome_side: Option<WireStr<'a>>,
    /// `bid` (≡ outcome `yes`) or `ask` (≡ `no`).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub taker_book_side: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_block_trade: Option<bool>,
    /// Seconds (deprecated; the fallback when `ts_ms` is missing).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub ts: Option<WireNum<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
    /// Legacy integer cents / whole contracts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// `ticker.msg`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TickerMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_id: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub price_dollars: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_bid_dollars: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_ask_dollars: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub volume_fp: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub open_interest_fp: Option<WireStr<'a>>,
    /// Whole dollars (plain integers even in the current format).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dollar_volume: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dollar_open_interest: Option<i64>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_bid_size_fp: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_ask_size_fp: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub last_trade_size_fp: Option<WireStr<'a>>,
    /// Seconds (deprecated).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub ts: Option<WireNum<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
    /// RFC 3339 (deprecated).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub time: Option<WireStr<'a>>,
    /// Legacy integer cents / whole contracts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_bid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_ask: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_interest: Option<i64>,
}

/// `additional_metadata` of a `market_lifecycle_v2` `created` message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleMetadata<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub name: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub title: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_sub_title: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub no_sub_title: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub rules_primary: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub rules_secondary: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_close_early: Option<bool>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub event_ticker: Option<WireStr<'a>>,
    /// Seconds.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub expected_expiration_ts: Option<WireNum<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub strike_type: Option<WireStr<'a>>,
    /// Strike values are the underlying's numbers (not prices); kept as JSON numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_strike: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_strike: Option<serde_json::Number>,
}

/// One band of a market's tick structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePriceRange<'a> {
    #[serde(borrow)]
    pub start: WireStr<'a>,
    #[serde(borrow)]
    pub end: WireStr<'a>,
    #[serde(borrow)]
    pub step: WireStr<'a>,
}

/// `market_lifecycle_v2.msg` and `multivariate_market_lifecycle.msg` (same shape), every
/// `event_type` (`created`, `activated`, `deactivated`,
/// `close_date_updated`, `determined`, `settled`, `price_level_structure_updated`,
/// `metadata_updated`, and whatever comes next).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarketLifecycleMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
    /// Seconds (or RFC 3339, accepted).
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub open_ts: Option<WireNum<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub close_ts: Option<WireNum<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub determination_ts: Option<WireNum<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub settled_ts: Option<WireNum<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub result: Option<WireStr<'a>>,
    /// Dollars (`"1.0000"`); legacy integer cents.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub settlement_value: Option<WireNum<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_deactivated: Option<bool>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub additional_metadata: Option<LifecycleMetadata<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub price_level_structure: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub price_ranges: Option<Vec<WirePriceRange<'a>>>,
    /// `metadata_updated` fields.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub strike_type: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_strike: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_strike: Option<serde_json::Number>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub yes_sub_title: Option<WireStr<'a>>,
}

/// `event_lifecycle.msg` (a new event; sent on `market_lifecycle_v2`, and on
/// `multivariate_market_lifecycle` for combo events).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventLifecycleMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub event_ticker: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub title: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub collateral_return_type: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub series_ticker: Option<WireStr<'a>>,
    /// Seconds.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub strike_date: Option<WireNum<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub strike_period: Option<WireStr<'a>>,
}

/// `event_fee_update.msg` (`market_lifecycle_v2` only): an event's fee override set, or
/// cleared (both fields `null`). The override itself stays in the stored payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventFeeUpdateMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub event_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub fee_type_override: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_multiplier_override: Option<serde_json::Number>,
}

/// `subscribed.msg`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscribedMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub channel: Option<WireStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<u64>,
}

/// `ok.msg` after `update_subscription`: the full market list of the subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OkMsg<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_tickers: Option<Vec<WireStr<'a>>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ids: Option<Vec<WireStr<'a>>>,
}

/// One entry of a `list_subscriptions` reply (`type: "ok"`, `msg` an array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionEntry<'a> {
    #[serde(borrow)]
    pub channel: WireStr<'a>,
    pub sid: u64,
}

/// `error.msg`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorMsg<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub msg: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_ticker: Option<WireStr<'a>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub market_tickers: Option<Vec<WireStr<'a>>>,
}
