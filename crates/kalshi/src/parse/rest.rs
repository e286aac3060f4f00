//! REST response bodies to wire structs, and the two REST objects that become records: order
//! books (snapshots) and trades.

use super::convert::{count, price, rest_levels, taker_side, trade_prices};
use super::error::{FieldError, RestParseError};
use crate::wire::rest::{
    EventResponse, EventsPage, ExchangeScheduleResponse, ExchangeStatus, MarketResponse,
    MarketsPage, OrderbookFp, OrderbookResponse, OrderbooksResponse, RestTrade, SeriesList,
    SeriesResponse, TradesPage,
};
use kd_core::records::{TradeSource, WirePos};
use kd_core::{OrderbookSnapshot, SnapshotSource, TimestampUs, Trade};
use serde::de::DeserializeOwned;

fn body<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, RestParseError> {
    serde_json::from_slice(bytes).map_err(|source| RestParseError::Json { what, source })
}

/// `GET /exchange/status`.
pub fn parse_exchange_status(bytes: &[u8]) -> Result<ExchangeStatus, RestParseError> {
    body(bytes, "exchange_status")
}

/// `GET /exchange/schedule`.
pub fn parse_exchange_schedule(bytes: &[u8]) -> Result<ExchangeScheduleResponse, RestParseError> {
    body(bytes, "exchange_schedule")
}

/// `GET /markets` (one page; follow `next_cursor()`).
pub fn parse_markets_page(bytes: &[u8]) -> Result<MarketsPage, RestParseError> {
    body(bytes, "markets_page")
}

/// `GET /markets/{ticker}`.
pub fn parse_market(bytes: &[u8]) -> Result<MarketResponse, RestParseError> {
    body(bytes, "market")
}

/// `GET /events` (one page).
pub fn parse_events_page(bytes: &[u8]) -> Result<EventsPage, RestParseError> {
    body(bytes, "events_page")
}

/// `GET /events/{event_ticker}`.
pub fn parse_event(bytes: &[u8]) -> Result<EventResponse, RestParseError> {
    body(bytes, "event")
}

/// `GET /series`.
pub fn parse_series_list(bytes: &[u8]) -> Result<SeriesList, RestParseError> {
    body(bytes, "series_list")
}

/// `GET /series/{series_ticker}`.
pub fn parse_series(bytes: &[u8]) -> Result<SeriesResponse, RestParseError> {
    body(bytes, "series")
}

/// `GET /markets/{ticker}/orderbook`. Returns the book whichever key it came under
/// (`orderbook_fp`, or legacy `orderbook`); a response with neither is `MissingField`.
pub fn parse_orderbook(bytes: &[u8]) -> Result<OrderbookFp, RestParseError> {
    let resp: OrderbookResponse = body(bytes, "orderbook")?;
    match resp.orderbook_fp.or(resp.orderbook) {
        Some(book) => Ok(book),
        None => Err(RestParseError::MissingField {
            what: "orderbook",
            field: "orderbook_fp",
        }),
    }
}

/// `GET /markets/orderbooks?tickers=…`.
pub fn parse_orderbooks(bytes: &[u8]) -> Result<OrderbooksResponse, RestParseError> {
    body(bytes, "orderbooks")
}

/// `GET /markets/trades` (one page).
pub fn parse_trades_page(bytes: &[u8]) -> Result<TradesPage, RestParseError> {
    body(bytes, "trades_page")
}

/// `GET /historical/trades` (one page; same shape as market trades).
pub fn parse_historical_trades_page(bytes: &[u8]) -> Result<TradesPage, RestParseError> {
    body(bytes, "historical_trades_page")
}

/// A REST order book as a snapshot record. REST books carry no time, so `exchange_ts` is
/// `received_at` (as for WebSocket snapshots). `source` says how it was fetched (normally
/// [`SnapshotSource::Rest`]). Levels are sorted ascending by price; an absent side is empty.
pub fn orderbook_to_snapshot(
    ticker: &str,
    ob: &OrderbookFp,
    source: SnapshotSource,
    received_at: TimestampUs,
) -> Result<OrderbookSnapshot, RestParseError> {
    let what = "orderbook";
    let side = |current: &Option<Vec<_>>, current_field, legacy: &Option<Vec<_>>, legacy_field| {
        match current {
            Some(levels) => rest_levels(Some(levels), current_field),
            None => rest_levels(legacy.as_deref(), legacy_field),
        }
        .map_err(|e| RestParseError::field(what, e))
    };
    Ok(OrderbookSnapshot {
        ticker: ticker.to_owned(),
        source,
        exchange_ts: received_at,
        yes: side(&ob.yes_dollars, "yes_dollars", &ob.yes, "yes")?,
        no: side(&ob.no_dollars, "no_dollars", &ob.no, "no")?,
        received_at,
        pos: WirePos::default(),
    })
}

/// A REST trade as a trade record (`source` = [`TradeSource::Rest`]); `exchange_ts` from
/// `created_time` (RFC 3339, microseconds).
pub fn rest_trade_to_record(
    t: &RestTrade,
    received_at: TimestampUs,
) -> Result<Trade, RestParseError> {
    rest_trade(t, received_at).map_err(|e| RestParseError::field("trade", e))
}

fn rest_trade(t: &RestTrade, received_at: TimestampUs) -> Result<Trade, FieldError> {
    if t.trade_id.is_empty() {
        return Err(FieldError::Missing("trade_id"));
    }
    if t.ticker.is_empty() {
        return Err(FieldError::Missing("ticker"));
    }
    let (yes_price, no_price) = trade_prices(
        price(
            t.yes_price_dollars.as_deref(),
            "yes_price_dollars",
            t.yes_price,
            "yes_price",
        )?,
        price(
            t.no_price_dollars.as_deref(),
            "no_price_dollars",
            t.no_price,
            "no_price",
        )?,
    )?;
    let count = count(t.count_fp.as_deref(), "count_fp", t.count, "count")?
        .ok_or(FieldError::Missing("count_fp"))?;
    let created = t
        .created_time
        .as_deref()
        .ok_or(FieldError::Missing("created_time"))?;
    let exchange_ts =
        TimestampUs::parse_rfc3339(created).map_err(FieldError::unit("created_time"))?;
    Ok(Trade {
        trade_id: t.trade_id.clone(),
        ticker: t.ticker.clone(),
        exchange_ts,
        yes_price,
        no_price,
        count,
        taker_side: taker_side(
            t.taker_outcome_side.as_deref(),
            t.taker_book_side.as_deref(),
            t.taker_side.as_deref(),
        ),
        is_block_trade: t.is_block_trade.unwrap_or(false),
        source: TradeSource::Rest,
        received_at,
        pos: WirePos::default(),
    })
}
