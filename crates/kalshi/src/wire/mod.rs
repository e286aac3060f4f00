//! Serde structs mirroring Kalshi's JSON, kept apart from the domain records.
//!
//! - [`ws`]: the `msg` objects of WebSocket messages, borrowing strings from the frame.
//! - [`rest`]: REST response bodies, owned (they outlive the response).
//! - [`scalar`]: values Kalshi sends in several shapes (text or integer, borrowed strings).
//!
//! Nothing here converts units: decimals stay as the text Kalshi sent, so nothing is rounded on
//! the way in. The `parse` module turns these into `kd_core` records.

pub mod rest;
pub mod scalar;
pub mod ws;

pub use rest::{
    DailySchedule, Event, EventResponse, EventsPage, ExchangeScheduleResponse, ExchangeStatus,
    MaintenanceWindow, Market, MarketOrderbook, MarketResponse, MarketsPage, MveSelectedLeg,
    OrderbookFp, OrderbookResponse, OrderbooksResponse, PriceRange, RestTrade, Schedule, Series,
    SeriesList, SeriesResponse, SettlementSource, TradesPage, WeeklySchedule,
};
pub use scalar::{NumText, RestLevel, WireLevel, WireNum, WireStr};
pub use ws::{
    Envelope, ErrorMsg, EventLifecycleMsg, LifecycleMetadata, MarketLifecycleMsg, OkMsg,
    OrderbookDeltaMsg, OrderbookSnapshotMsg, SubscribedMsg, SubscriptionEntry, TickerMsg, TradeMsg,
    WirePriceRange,
};
