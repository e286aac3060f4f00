//! REST responses as Kalshi sends them (field lists from `rest-fields-3.34.md`, which supersedes
//! `openapi.yaml` 3.13.0), plus the legacy integer-cent fields older responses carry.
//!
//! Owned (`String`) rather than borrowed: these outlive the response buffer (the registry and the
//! deduplicator keep metadata; the simulator serializes them back). Decimals stay as the text
//! Kalshi sent — converting is the job of `parse` (or the accessor methods here), so a value is
//! never rounded on the way in. `Option` fields are skipped when `None` on output, so a
//! serialized struct looks like what Kalshi sends. Unknown fields are ignored.

use super::scalar::{RestLevel, null_as_default};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// `GET /exchange/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeStatus {
    pub exchange_active: bool,
    pub trading_active: bool,
    /// RFC 3339; present while the exchange is down for maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_estimated_resume_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_exchange_transfers_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_index_statuses: Option<Value>,
}

/// `GET /exchange/schedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeScheduleResponse {
    pub schedule: Schedule,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// A list in the current API; older responses sent one object (accepted as a list of one).
    #[serde(default, deserialize_with = "one_or_many")]
    pub standard_hours: Vec<WeeklySchedule>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

/// Trading sessions per weekday (times `HH:MM` in US Eastern), effective between two instants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeeklySchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub monday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tuesday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub wednesday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub thursday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub friday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub saturday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub sunday: Vec<DailySchedule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailySchedule {
    pub open_time: String,
    pub close_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub start_datetime: String,
    pub end_datetime: String,
}

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

/// An event (`GET /events`, `/events/{event_ticker}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_ticker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collateral_return_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutually_exclusive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_sources: Option<Vec<SettlementSource>>,
    /// Present with `with_nested_markets=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markets: Option<Vec<Market>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_on_brokers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_multiplier_override: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
}

/// `GET /events`: one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Value>,
}

/// `GET /events/{event_ticker}`: the event and its markets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventResponse {
    pub event: Event,
    #[serde(default, deserialize_with = "null_as_default")]
    pub markets: Vec<Market>,
}

/// A series (`GET /series`, `/series/{series_ticker}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_sources: Option<Vec<SettlementSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_terms_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<String>,
    /// A plain JSON number (a multiplier, not a price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_multiplier: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_prohibitions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
}

/// `GET /series`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub series: Vec<Series>,
    /// Not in the spec; kept in case the endpoint grows pagination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /series/{series_ticker}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesResponse {
    pub series: Series,
}

/// An order book as REST sends it: both sides are bids, `[price, count]` pairs.
///
/// Current: `yes_dollars`/`no_dollars` with `[dollars, count_fp]` strings. Legacy (`orderbook`
/// instead of `orderbook_fp`): `yes`/`no` with integer cents and counts. A side may be absent or
/// `null`; both mean no levels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderbookFp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_dollars: Option<Vec<RestLevel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_dollars: Option<Vec<RestLevel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes: Option<Vec<RestLevel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no: Option<Vec<RestLevel>>,
}

/// `GET /markets/{ticker}/orderbook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook_fp: Option<OrderbookFp>,
    /// Legacy name of the same object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook: Option<OrderbookFp>,
}

/// One entry of `GET /markets/orderbooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketOrderbook {
    pub ticker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook_fp: Option<OrderbookFp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook: Option<OrderbookFp>,
}

/// `GET /markets/orderbooks?tickers=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbooksResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub orderbooks: Vec<MarketOrderbook>,
}

/// A trade from `GET /markets/trades` or `GET /historical/trades`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestTrade {
    pub trade_id: String,
    pub ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_price_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_price_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker_outcome_side: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker_book_side: Option<String>,
    /// Deprecated by Kalshi.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker_side: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_block_trade: Option<bool>,
    /// RFC 3339, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// Legacy integer cents / whole contracts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// `GET /markets/trades` and `GET /historical/trades`: one page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradesPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub trades: Vec<RestTrade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// The cursor to request next, `None` when this was the last page (empty or absent cursor).
fn next_cursor(cursor: &Option<String>) -> Option<&str> {
    cursor.as_deref().filter(|c| !c.is_empty())
}

impl MarketsPage {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}

impl EventsPage {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}

impl TradesPage {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}

impl SeriesList {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}

impl OrderbookResponse {
    /// The book, whichever name it came under (`orderbook_fp` preferred).
    pub fn book(&self) -> Option<&OrderbookFp> {
        self.orderbook_fp.as_ref().or(self.orderbook.as_ref())
    }
}

impl MarketOrderbook {
    /// The book, whichever name it came under (`orderbook_fp` preferred).
    pub fn book(&self) -> Option<&OrderbookFp> {
        self.orderbook_fp.as_ref().or(self.orderbook.as_ref())
    }
}

/// A JSON value that is either one `T` or a list of them (older schedule responses).
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
        Null(()),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(t) => vec![t],
        OneOrMany::Null(()) => Vec::new(),
    })
}
