//! Reading production for `verify` and `book`: every record of a time window, by table, plus
//! the names of the gatherers that fed it (from the deduplicator's cursors).

use kd_core::{
    Gap, Lifecycle, OrderbookDelta, OrderbookSnapshot, Record, Table, Ticker, TimestampUs, Trade,
};

/// Why production could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProductionError {
    #[error("production store: {0}")]
    Store(#[from] kd_production::StoreError),
}

/// Every record of a window, split by table.
#[derive(Debug, Clone, Default)]
pub struct ProductionData {
    pub trades: Vec<Trade>,
    pub deltas: Vec<OrderbookDelta>,
    pub snapshots: Vec<OrderbookSnapshot>,
    pub tickers: Vec<Ticker>,
    pub lifecycle: Vec<Lifecycle>,
    pub gaps: Vec<Gap>,
    /// Gatherers the deduplicator has pulled from (their cursors), sorted.
    pub gatherers: Vec<String>,
    /// Rows in production's `quarantine` per table (whatever their time: a quarantined row's
    /// time may be the very reason it is there).
    pub quarantined: kd_production::QuarantineCounts,
}

impl ProductionData {
    /// Sorts records into their tables (records of other tables are ignored).
    pub fn push(&mut self, record: Record) {
        match record {
            Record::Trade(t) => self.trades.push(t),
            Record::Delta(d) => self.deltas.push(d),
            Record::Snapshot(s) => self.snapshots.push(s),
            Record::Ticker(t) => self.tickers.push(t),
            Record::Lifecycle(l) => self.lifecycle.push(l),
            Record::Gap(g) => self.gaps.push(g),
        }
    }

    /// Every time-series record (not gaps), as [`Record`]s.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let trades = self.trades.iter().cloned().map(Record::Trade);
        let deltas = self.deltas.iter().cloned().map(Record::Delta);
        let snaps = self.snapshots.iter().cloned().map(Record::Snapshot);
        let tickers = self.tickers.iter().cloned().map(Record::Ticker);
        let lifecycle = self.lifecycle.iter().cloned().map(Record::Lifecycle);
        trades
            .chain(deltas)
            .chain(snaps)
            .chain(tickers)
            .chain(lifecycle)
    }
}

/// Reads `tables` of the window `[from, to]` (inclusive) from the store at `url`.
pub async fn load(
    url: &str,
    tables: &[Table],
    from: TimestampUs,
    to: TimestampUs,
) -> Result<ProductionData, ProductionError> {
    let store = kd_production::open(url).await?;
    // The store's window is half-open; one microsecond more makes `to` inclusive.
    let end = TimestampUs::from_micros(to.micros().saturating_add(1));
    let mut data = ProductionData::default();
    for &table in tables {
        for record in store.read_window(table, from, end).await? {
            data.push(record);
        }
    }
    let mut gatherers: Vec<String> = store.cursors().await?.into_keys().map(|(g, _)| g).collect();
    gatherers.sort();
    gatherers.dedup();
    data.gatherers = gatherers;
    data.quarantined = store.quarantine_counts().await?;
    Ok(data)
}

/// Rows per table (progress and `status`), then `quarantine` (rows refused or unreadable,
/// every table together).
pub async fn counts(url: &str) -> Result<Vec<(String, u64)>, ProductionError> {
    let store = kd_production::open(url).await?;
    let mut out = Vec::new();
    for table in Table::ALL {
        out.push((table.name().to_string(), store.count(table).await?));
    }
    let quarantined = store.quarantine_counts().await?.values().sum();
    out.push(("quarantine".to_string(), quarantined));
    Ok(out)
}
