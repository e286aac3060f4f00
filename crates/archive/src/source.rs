//! What the exporter reads: production, seen through a small trait so the exporter does not
//! depend on one store's internals (the PostgreSQL/SQLite production store implements it in
//! [`crate::production`]; [`MemorySource`] serves tests and benchmarks).

use kd_core::{Record, Table, TimestampUs};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

/// A boxed error from the underlying store, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why production could not be read or its watermark written.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading the {table} window: {source}")]
    Read { table: Table, source: BoxError },
    #[error("watermark `{name}`: {source}")]
    Watermark { name: String, source: BoxError },
    #[error("market metadata: {0}")]
    Metadata(BoxError),
    #[error("sync progress: {0}")]
    Progress(BoxError),
}

/// How far production is complete for one gatherer's rows of a table (the deduplicator's
/// `sync_progress`): every row that gatherer committed before `complete_through` is in
/// production; `updated_at` is when the deduplicator last proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completeness {
    pub gatherer: String,
    pub complete_through: TimestampUs,
    pub updated_at: TimestampUs,
}

/// A market's place in Kalshi's hierarchy, for enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketRef {
    pub event_ticker: String,
    pub series_ticker: String,
}

/// Production as the exporter sees it.
pub trait WindowSource: Send + Sync {
    /// Every record of `table` with `from <= exchange_ts < to`.
    fn read_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> impl Future<Output = Result<Vec<Record>, SourceError>> + Send;

    /// How many records of `table` have `from <= exchange_ts < to`: what the late-row re-check
    /// compares with the rows an exported window held. By default it reads the window.
    fn count_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> impl Future<Output = Result<u64, SourceError>> + Send {
        async move { Ok(self.read_window(table, from, to).await?.len() as u64) }
    }

    /// The exchange time of the oldest record of `table`, `None` when it is empty: where the
    /// first export starts when no watermark exists yet.
    fn earliest(
        &self,
        table: Table,
    ) -> impl Future<Output = Result<Option<TimestampUs>, SourceError>> + Send;

    /// The watermark `name`: everything before it has been exported.
    fn watermark(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TimestampUs>, SourceError>> + Send;

    /// Advances (or sets) the watermark `name`.
    fn set_watermark(
        &self,
        name: &str,
        ts: TimestampUs,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// How far production is complete for `table`, one entry per gatherer the deduplicator
    /// pulls from. Empty (the default) when unknown: the exporter then waits only for the
    /// window's end plus the settle delay.
    fn completeness(
        &self,
        table: Table,
    ) -> impl Future<Output = Result<Vec<Completeness>, SourceError>> + Send {
        let _ = table;
        async { Ok(Vec::new()) }
    }

    /// Event and series of each known market among `tickers` (unknown ones are absent).
    fn market_refs(
        &self,
        tickers: &[String],
    ) -> impl Future<Output = Result<HashMap<String, MarketRef>, SourceError>> + Send;
}

/// An in-memory production: records per table, watermarks, market metadata.
#[derive(Debug, Default)]
pub struct MemorySource {
    tables: HashMap<Table, Vec<Record>>,
    watermarks: Mutex<BTreeMap<String, TimestampUs>>,
    markets: HashMap<String, MarketRef>,
    progress: Mutex<HashMap<Table, Vec<Completeness>>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds records (any tables).
    pub fn insert(&mut self, records: impl IntoIterator<Item = Record>) {
        for r in records {
            self.tables.entry(r.table()).or_default().push(r);
        }
    }

    /// Registers a market's event and series.
    pub fn insert_market(&mut self, ticker: &str, event_ticker: &str, series_ticker: &str) {
        self.markets.insert(
            ticker.to_string(),
            MarketRef {
                event_ticker: event_ticker.to_string(),
                series_ticker: series_ticker.to_string(),
            },
        );
    }

    /// Sets (replaces) `gatherer`'s completeness for `table`, as the deduplicator would.
    pub fn set_completeness(
        &self,
        table: Table,
        gatherer: &str,
        complete_through: TimestampUs,
        updated_at: TimestampUs,
    ) {
        if let Ok(mut map) = self.progress.lock() {
            let list = map.entry(table).or_default();
            list.retain(|c| c.gatherer != gatherer);
            list.push(Completeness {
                gatherer: gatherer.to_string(),
                complete_through,
                updated_at,
            });
        }
    }

    /// All records of a table (test oracles).
    pub fn records(&self, table: Table) -> &[Record] {
        self.tables.get(&table).map_or(&[], Vec::as_slice)
    }
}

impl WindowSource for MemorySource {
    async fn read_window(
        &self,
        table: Table,
        from: TimestampUs,
        to: TimestampUs,
    ) -> Result<Vec<Record>, SourceError> {
        Ok(self
            .records(table)
            .iter()
            .filter(|r| {
                let ts = r.exchange_ts();
                from <= ts && ts < to
            })
            .cloned()
            .collect())
    }

    async fn earliest(&self, table: Table) -> Result<Option<TimestampUs>, SourceError> {
        Ok(self.records(table).iter().map(Record::exchange_ts).min())
    }

    async fn watermark(&self, name: &str) -> Result<Option<TimestampUs>, SourceError> {
        let map = self.watermarks.lock().map_err(|_| SourceError::Watermark {
            name: name.to_string(),
            source: "lock poisoned".into(),
        })?;
        Ok(map.get(name).copied())
    }

    async fn set_watermark(&self, name: &str, ts: TimestampUs) -> Result<(), SourceError> {
        let mut map = self.watermarks.lock().map_err(|_| SourceError::Watermark {
            name: name.to_string(),
            source: "lock poisoned".into(),
        })?;
        map.insert(name.to_string(), ts);
        Ok(())
    }

    async fn completeness(&self, table: Table) -> Result<Vec<Completeness>, SourceError> {
        let map = self
            .progress
            .lock()
            .map_err(|_| SourceError::Progress("lock poisoned".into()))?;
        Ok(map.get(&table).cloned().unwrap_or_default())
    }

    async fn market_refs(
        &self,
        tickers: &[String],
    ) -> Result<HashMap<String, MarketRef>, SourceError> {
        Ok(tickers
            .iter()
            .filter_map(|t| self.markets.get(t).map(|m| (t.clone(), m.clone())))
            .collect())
    }
}
