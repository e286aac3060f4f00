//! Production as a [`WindowSource`]: the production store (PostgreSQL or SQLite) of
//! `kd-production`, opened by URL with `kd_production::open`.
//!
//! - **Where the first export starts** (no watermark yet): the store's oldest record of the
//!   table ([`Store::oldest`]), unless [`ProductionSource::start`] says otherwise.
//! - **Series of a market**, derived here: markets carry their event; the series is the event
//!   ticker's part before the first `-` (Kalshi's naming: `KXHIGHNY-25NOV27` belongs to
//!   `KXHIGHNY`).

use crate::source::{Completeness, MarketRef, SourceError, WindowSource};
use kd_core::{Record, Table, TimestampUs};
use kd_production::Store;
use std::collections::HashMap;

/// Why production could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProductionError {
    #[error("production store: {0}")]
    Open(#[from] kd_production::StoreError),
}

/// The production store as the exporter reads it.
#[derive(Debug, Clone)]
pub struct ProductionSource {
    store: Store,
    /// Where a non-empty table without a watermark starts; `None`: at its oldest record.
    pub start: Option<TimestampUs>,
}

/// Opens the production store `url` names (`postgres://…`, `sqlite://PATH`).
pub async fn open(url: &str) -> Result<ProductionSource, ProductionError> {
    Ok(ProductionSource::new(kd_production::open(url).await?))
}

impl ProductionSource {
    pub fn new(store: Store) -> Self {
        ProductionSource { store, start: None }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The series of an event by Kalshi's naming (`SERIES-REST`).
pub fn series_of_event(event_ticker: &str) -> &str {
    event_ticker.split('-').next().unwrap_or(event_ticker)
}

impl WindowSource for ProductionSource {
    async fn read_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> Result<Vec<Record>, SourceError> {
        self.store
            .read_window(table, from, to)
            .await
            .map_err(|e| SourceError::Read {
                table,
                source: Box::new(e),
            })
    }

    async fn earliest(&self, table: Table) -> Result<Option<TimestampUs>, SourceError> {
        let oldest = self
            .store
            .oldest(table)
            .await
            .map_err(|e| SourceError::Read {
                table,
                source: Box::new(e),
            })?;
        Ok(oldest.map(|ts| self.start.unwrap_or(ts)))
    }

    async fn watermark(&self, name: &str) -> Result<Option<TimestampUs>, SourceError> {
        self.store
            .watermark(name)
            .await
            .map_err(|e| SourceError::Watermark {
                name: name.to_string(),
                source: Box::new(e),
            })
    }

    async fn set_watermark(&self, name: &str, ts: TimestampUs) -> Result<(), SourceError> {
        self.store
            .set_watermark(name, ts)
            .await
            .map_err(|e| SourceError::Watermark {
                name: name.to_string(),
                source: Box::new(e),
            })
    }

    async fn completeness(&self, table: Table) -> Result<Vec<Completeness>, SourceError> {
        let rows = self
            .store
            .progress()
            .await
            .map_err(|e| SourceError::Progress(Box::new(e)))?;
        Ok(rows
            .into_iter()
            .filter(|p| p.table == table)
            .map(|p| Completeness {
                gatherer: p.gatherer,
                complete_through: p.complete_through,
                updated_at: p.updated_at,
            })
            .collect())
    }

    async fn market_refs(
        &self,
        tickers: &[String],
    ) -> Result<HashMap<String, MarketRef>, SourceError> {
        if tickers.is_empty() {
            return Ok(HashMap::new());
        }
        let markets = self
            .store
            .markets()
            .await
            .map_err(|e| SourceError::Metadata(Box::new(e)))?;
        let wanted: std::collections::HashSet<&str> = tickers.iter().map(String::as_str).collect();
        Ok(markets
            .into_iter()
            .filter(|m| wanted.contains(m.ticker.as_str()))
            .filter_map(|m| {
                let event = m.event_ticker?;
                let series = series_of_event(&event).to_string();
                Some((
                    m.ticker,
                    MarketRef {
                        event_ticker: event,
                        series_ticker: series,
                    },
                ))
            })
            .collect())
    }
}
