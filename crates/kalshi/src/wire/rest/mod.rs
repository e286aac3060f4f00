//! REST responses as Kalshi sends them (field lists from `rest-fields-3.34.md`, which supersedes
//! `openapi.yaml` 3.13.0), plus the legacy integer-cent fields older responses carry.
//!
//! Owned (`String`) rather than borrowed: these outlive the response buffer (the registry and the
//! deduplicator keep metadata; the simulator serializes them back). Decimals stay as the text
//! Kalshi sent — converting is the job of `parse` (or the accessor methods here), so a value is
//! never rounded on the way in. `Option` fields are skipped when `None` on output, so a
//! serialized struct looks like what Kalshi sends. Unknown fields are ignored.
//!
//! - [`exchange`]: status and schedule; [`market`]: markets; [`event`]: events and series;
//!   [`book`]: order books; [`trade`]: trades.

pub mod book;
pub mod event;
pub mod exchange;
pub mod market;
pub mod trade;

pub use book::{MarketOrderbook, OrderbookFp, OrderbookResponse, OrderbooksResponse};
pub use event::{Event, EventResponse, EventsPage, Series, SeriesList, SeriesResponse};
pub use exchange::{
    DailySchedule, ExchangeScheduleResponse, ExchangeStatus, MaintenanceWindow, Schedule,
    WeeklySchedule,
};
pub use market::{
    Market, MarketResponse, MarketsPage, MveSelectedLeg, PriceRange, SettlementSource,
};
pub use trade::{HistoricalCutoff, RestTrade, TradesPage};

use serde::Deserialize;

/// The cursor to request next, `None` when this was the last page (empty or absent cursor).
pub(super) fn next_cursor(cursor: &Option<String>) -> Option<&str> {
    cursor.as_deref().filter(|c| !c.is_empty())
}

/// A JSON value that is either one `T` or a list of them (older schedule responses).
pub(super) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
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
