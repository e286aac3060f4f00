//! Metadata sync: series, events and markets straight from Kalshi REST every few minutes,
//! upserted latest-wins, market status mapped to the 4-value production status.
//!
//! A failed cycle is logged and counted; the next cycle retries (the gatherers' registries keep
//! collecting regardless — metadata never gates the time-series path).

use crate::events::{InternalEvent, MetadataFailed, MetadataSynced, UnknownMarketStatus};
use crate::health::Health;
use kd_core::TimestampUs;
use kd_core::backoff::BackoffPolicy;
use kd_kalshi::rest::{EventsQuery, MarketsQuery, RestClient, RestError, SeriesQuery};
use kd_kalshi::wire::rest::{Event, Market, Series};
use kd_production::{EventRow, MarketRow, ProductionStatus, SeriesRow, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("Kalshi REST: {0}")]
    Rest(#[from] RestError),
    #[error("production: {0}")]
    Store(#[from] StoreError),
}

/// Rows upserted by one cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetadataCounts {
    pub series: u64,
    pub events: u64,
    pub markets: u64,
}

/// A series as a production row (the whole object kept as JSON).
pub fn series_row(s: &Series) -> SeriesRow {
    SeriesRow {
        ticker: s.ticker.clone(),
        title: s.title.clone(),
        category: s.category.clone(),
        frequency: s.frequency.clone(),
        raw: serde_json::to_string(s).unwrap_or_default(),
    }
}

pub fn event_row(e: &Event) -> EventRow {
    // Nested markets are stored in `markets`; keep the event's own JSON lean.
    let mut lean = e.clone();
    lean.markets = None;
    EventRow {
        event_ticker: e.event_ticker.clone(),
        series_ticker: e.series_ticker.clone(),
        title: e.title.clone(),
        category: e.category.clone(),
        raw: serde_json::to_string(&lean).unwrap_or_default(),
    }
}

/// A market as a production row; an unknown Kalshi status is kept as sent, mapped to `None`
/// and counted.
pub fn market_row(mk: &Market) -> MarketRow {
    let kalshi_status = mk.status.clone().unwrap_or_default();
    let status = ProductionStatus::from_kalshi(&kalshi_status);
    if status.is_none() {
        UnknownMarketStatus {
            ticker: &mk.ticker,
            status: &kalshi_status,
        }
        .emit();
    }
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(|s| TimestampUs::parse_rfc3339(s).ok())
    };
    MarketRow {
        ticker: mk.ticker.clone(),
        event_ticker: mk.event_ticker.clone(),
        title: mk.title.clone(),
        kalshi_status,
        status,
        open_time: time(&mk.open_time),
        close_time: time(&mk.close_time),
        result: mk.result.clone().filter(|r| !r.is_empty()),
        raw: serde_json::to_string(mk).unwrap_or_default(),
    }
}

/// One full pass: every series, event and market.
pub async fn sync_once(
    rest: &RestClient,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<MetadataCounts, MetadataError> {
    let policy = BackoffPolicy::POLLER;
    let (sq, eq, mq) = (
        SeriesQuery::default(),
        EventsQuery::default(),
        MarketsQuery::default(),
    );
    let series = rest
        .retry(policy, Some(3), shutdown, || rest.series_list(&sq))
        .await?;
    let series_rows: Vec<SeriesRow> = series.series.iter().map(series_row).collect();
    let events = rest
        .retry(policy, Some(3), shutdown, || rest.all_events(&eq))
        .await?;
    let event_rows: Vec<EventRow> = events.iter().map(event_row).collect();
    let markets = rest
        .retry(policy, Some(3), shutdown, || rest.all_markets(&mq))
        .await?;
    let market_rows: Vec<MarketRow> = markets.iter().map(market_row).collect();
    let counts = MetadataCounts {
        series: store.upsert_series(&series_rows).await?,
        events: store.upsert_events(&event_rows).await?,
        markets: store.upsert_markets(&market_rows).await?,
    };
    MetadataSynced {
        series: counts.series,
        events: counts.events,
        markets: counts.markets,
    }
    .emit();
    Ok(counts)
}

/// Runs [`sync_once`] every `interval` until shutdown.
pub async fn run(
    rest: RestClient,
    store: Store,
    health: Arc<Health>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match sync_once(&rest, &store, &shutdown).await {
            Ok(_) => {}
            Err(MetadataError::Rest(RestError::Cancelled)) => return,
            Err(e) => {
                if let MetadataError::Store(s) = &e {
                    health.production_failed(s.to_string());
                }
                MetadataFailed { error: &e }.emit();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
