//! Pure functions from Kalshi's bytes to domain records (`kd_core::records`).
//!
//! - [`parse_ws`]: one WebSocket frame to one [`WsEvent`]; [`parse_ws_frame_at`] (the
//!   gatherer's entry point) takes the receive time on both clocks ([`ReceiveTimes`]);
//!   [`parse_ws_frame_scaled`] also the NO side's wire scale per `sid` ([`NoScale`]): NO levels
//!   are always returned on the NO-bid scale.
//! - `parse_*` for each REST response, plus [`orderbook_to_snapshot`] and
//!   [`rest_trade_to_record`] for the two REST objects that become records.
//!
//! Rules (docs/wire.md has the full list and the reasons):
//! - Current format first (dollar strings, `_fp` counts, `ts_ms`), legacy integers accepted.
//! - Delta time: RFC 3339 `ts` (µs), else `ts_ms`, else integer-seconds `ts`. Trades and tickers:
//!   `ts_ms`, else `ts` (seconds). Snapshots: `exchange_ts = received_at`.
//! - Lifecycle: payload = `msg` re-serialised with sorted keys; `exchange_ts` see [`lifecycle`].
//! - Unknown fields are ignored; an unknown message type is [`WsEvent::Unknown`], not an error.
//! - No panics on any input: every failure is a [`WsParseError`] / [`RestParseError`] naming the
//!   message type and field, with `kind()` for metric labels.

mod accessors;
mod convert;
mod envelope;
pub mod error;
pub mod lifecycle;
pub mod no_scale;
mod rest;
mod ws;

pub use error::{FieldError, RestParseError, WsParseError};
pub use lifecycle::canonical_json;
pub use no_scale::NoScale;
pub use rest::{
    orderbook_to_snapshot, parse_event, parse_events_page, parse_exchange_schedule,
    parse_exchange_status, parse_historical_trades_page, parse_market, parse_markets_page,
    parse_orderbook, parse_orderbooks, parse_series, parse_series_list, parse_trades_page,
    rest_trade_to_record,
};
pub use ws::{
    ReceiveTimes, WsFrame, parse_ws, parse_ws_frame, parse_ws_frame_at, parse_ws_frame_scaled,
    parse_ws_text,
};

use kd_core::{
    Lifecycle, OrderbookDelta, OrderbookSnapshot, Price, Record, Ticker, TimestampUs, Trade,
};

/// One WebSocket message, typed. Data variants carry finished records (with `received_at` and
/// `pos` filled in); response variants carry what the connection manager needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// `orderbook_snapshot`; `id` is set when it answers a `get_snapshot` command.
    Snapshot {
        sid: u64,
        seq: Option<u64>,
        id: Option<u64>,
        snapshot: OrderbookSnapshot,
    },
    /// `orderbook_delta`; `delta.occurrence` is 0 — the gatherer assigns it.
    Delta {
        sid: u64,
        seq: Option<u64>,
        delta: OrderbookDelta,
    },
    /// `trade` (`seq` absent in old feeds).
    Trade {
        sid: u64,
        seq: Option<u64>,
        trade: Trade,
    },
    /// `ticker` (never sequenced).
    Ticker { sid: u64, ticker: Ticker },
    /// `market_lifecycle_v2` or `multivariate_market_lifecycle` (a combo market; same shape,
    /// `lifecycle.kind` tells which), every `event_type` including `metadata_updated`.
    MarketLifecycle {
        sid: u64,
        seq: Option<u64>,
        lifecycle: Lifecycle,
        info: MarketLifecycleInfo,
    },
    /// `event_lifecycle` (a new event), or `event_fee_update` (its fee override set or cleared;
    /// `lifecycle.kind` tells which, `series_ticker` is then `None`).
    EventLifecycle {
        sid: u64,
        seq: Option<u64>,
        lifecycle: Lifecycle,
        event_ticker: String,
        series_ticker: Option<String>,
    },
    /// Reply to `subscribe`.
    Subscribed {
        id: Option<u64>,
        channel: String,
        sid: u64,
    },
    /// Reply to `update_subscription`: `market_tickers` is the subscription's full list after
    /// the update (empty when the reply carries none). A sequenced `ok` consumes a `seq`.
    Ok {
        id: Option<u64>,
        sid: Option<u64>,
        seq: Option<u64>,
        market_tickers: Vec<String>,
    },
    /// Reply to `unsubscribe`.
    Unsubscribed {
        id: Option<u64>,
        sid: Option<u64>,
        seq: Option<u64>,
    },
    /// A command or channel error (`code` per WIRE.md: 8 unknown channel, 10/25 terminal, 26
    /// market limit, …). `market_tickers` lists `msg.market_ticker`/`msg.market_tickers` when
    /// the exchange names the markets concerned.
    Error {
        id: Option<u64>,
        sid: Option<u64>,
        seq: Option<u64>,
        code: u32,
        msg: String,
        market_tickers: Vec<String>,
    },
    /// Reply to `list_subscriptions` (Kalshi sends it as `type: "ok"` with an array `msg`).
    ListSubscriptions {
        id: Option<u64>,
        subscriptions: Vec<SubscriptionInfo>,
    },
    /// A message type this parser does not know: typed, counted by the caller, never an error.
    Unknown {
        type_name: String,
        sid: Option<u64>,
        seq: Option<u64>,
    },
}

impl WsEvent {
    /// A fixed label for metrics and logs: the wire type name (`unknown` for unknown types).
    pub fn kind_name(&self) -> &'static str {
        match self {
            WsEvent::Snapshot { .. } => "orderbook_snapshot",
            WsEvent::Delta { .. } => "orderbook_delta",
            WsEvent::Trade { .. } => "trade",
            WsEvent::Ticker { .. } => "ticker",
            WsEvent::MarketLifecycle { lifecycle, .. }
            | WsEvent::EventLifecycle { lifecycle, .. } => lifecycle::kind_name(&lifecycle.kind),
            WsEvent::Subscribed { .. } => "subscribed",
            WsEvent::Ok { .. } => "ok",
            WsEvent::Unsubscribed { .. } => "unsubscribed",
            WsEvent::Error { .. } => "error",
            WsEvent::ListSubscriptions { .. } => "list_subscriptions",
            WsEvent::Unknown { .. } => "unknown",
        }
    }

    /// The record a data message carries (`None` for command replies and unknown types).
    pub fn into_record(self) -> Option<Record> {
        match self {
            WsEvent::Snapshot { snapshot, .. } => Some(Record::Snapshot(snapshot)),
            WsEvent::Delta { delta, .. } => Some(Record::Delta(delta)),
            WsEvent::Trade { trade, .. } => Some(Record::Trade(trade)),
            WsEvent::Ticker { ticker, .. } => Some(Record::Ticker(ticker)),
            WsEvent::MarketLifecycle { lifecycle, .. }
            | WsEvent::EventLifecycle { lifecycle, .. } => Some(Record::Lifecycle(lifecycle)),
            WsEvent::Subscribed { .. }
            | WsEvent::Ok { .. }
            | WsEvent::Unsubscribed { .. }
            | WsEvent::Error { .. }
            | WsEvent::ListSubscriptions { .. }
            | WsEvent::Unknown { .. } => None,
        }
    }

    /// The subscription id, when the message has one.
    pub fn sid(&self) -> Option<u64> {
        match self {
            WsEvent::Snapshot { sid, .. }
            | WsEvent::Delta { sid, .. }
            | WsEvent::Trade { sid, .. }
            | WsEvent::Ticker { sid, .. }
            | WsEvent::MarketLifecycle { sid, .. }
            | WsEvent::EventLifecycle { sid, .. }
            | WsEvent::Subscribed { sid, .. } => Some(*sid),
            WsEvent::Ok { sid, .. }
            | WsEvent::Unsubscribed { sid, .. }
            | WsEvent::Error { sid, .. }
            | WsEvent::Unknown { sid, .. } => *sid,
            WsEvent::ListSubscriptions { .. } => None,
        }
    }

    /// The sequence number, when the message consumes one (for gap detection per `sid`).
    pub fn seq(&self) -> Option<u64> {
        match self {
            WsEvent::Snapshot { seq, .. }
            | WsEvent::Delta { seq, .. }
            | WsEvent::Trade { seq, .. }
            | WsEvent::MarketLifecycle { seq, .. }
            | WsEvent::EventLifecycle { seq, .. }
            | WsEvent::Ok { seq, .. }
            | WsEvent::Unsubscribed { seq, .. }
            | WsEvent::Error { seq, .. }
            | WsEvent::Unknown { seq, .. } => *seq,
            WsEvent::Ticker { .. }
            | WsEvent::Subscribed { .. }
            | WsEvent::ListSubscriptions { .. } => None,
        }
    }
}

/// What the market registry needs from a market's lifecycle message (either channel), converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketLifecycleInfo {
    /// The channel it came on: `market_lifecycle_v2`, or `multivariate_market_lifecycle` (a
    /// combo market).
    pub channel: &'static str,
    pub market_ticker: String,
    /// `created`, `activated`, `deactivated`, `close_date_updated`, `determined`, `settled`,
    /// `price_level_structure_updated`, `metadata_updated`, or a newer one (kept as sent).
    pub event_type: String,
    /// From `additional_metadata` (on `created`).
    pub event_ticker: Option<String>,
    pub open_ts: Option<TimestampUs>,
    pub close_ts: Option<TimestampUs>,
    pub determination_ts: Option<TimestampUs>,
    pub settled_ts: Option<TimestampUs>,
    /// From `additional_metadata` (on `created`).
    pub expected_expiration_ts: Option<TimestampUs>,
    /// `yes`/`no`/… on `determined`.
    pub result: Option<String>,
    /// On `determined` (dollars; legacy integer cents).
    pub settlement_value: Option<Price>,
    /// On `deactivated`/`activated`: trading paused on an open market.
    pub is_deactivated: Option<bool>,
    /// From `additional_metadata` (on `created`).
    pub title: Option<String>,
    /// On `created` and `price_level_structure_updated`.
    pub price_level_structure: Option<String>,
}

/// One active subscription as `list_subscriptions` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub channel: String,
    pub sid: u64,
}
