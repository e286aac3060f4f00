//! Where a replay's records come from: production (`--production`) or the Parquet archive
//! (`--archive`). Both yield the same [`Loaded`] records, so everything after loading (the
//! timeline, books, feeds, REST, NDJSON, derived streams) is shared.

use crate::archive_source::{ArchiveReadError, ArchiveSource};
use kd_core::{Table, TimestampUs};
use kd_ops::production::ProductionData;
use kd_production::MarketRow;

/// Why the data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Production(#[from] kd_ops::production::ProductionError),
    #[error("production store: {0}")]
    Store(#[from] kd_production::StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveReadError),
}

/// What a source read for `[from, to]`.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Snapshots and deltas up to `to`, from early enough that every market's book at `from`
    /// can be rebuilt (production: from the beginning; the archive: from the window of the
    /// latest WebSocket snapshot at or before `from` of every market the range names).
    pub books: ProductionData,
    /// Trades, tickers, lifecycle and gaps of `[from, to]`, and the gatherers.
    pub rest: ProductionData,
    /// Market metadata (production only: the archive holds none).
    pub markets: Vec<MarketRow>,
}

/// A replay source.
pub enum Source {
    /// A production store URL (`sqlite://…`, `postgres://…`).
    Production(String),
    /// An opened Parquet archive.
    Archive(ArchiveSource),
}

impl Source {
    /// Reads `[from, to]`; `tickers` non-empty: those markets only (the rest of the records
    /// are dropped, or — from the archive — never decoded).
    pub async fn load(
        &self,
        from: TimestampUs,
        to: TimestampUs,
        tickers: &[String],
    ) -> Result<Loaded, DataError> {
        let mut loaded = match self {
            Source::Production(url) => production(url, from, to).await?,
            Source::Archive(a) => a.load(from, to, tickers).await?,
        };
        if !tickers.is_empty() {
            keep_only(&mut loaded, tickers);
        }
        Ok(loaded)
    }
}

async fn production(url: &str, from: TimestampUs, to: TimestampUs) -> Result<Loaded, DataError> {
    let origin = TimestampUs::from_micros(0);
    let books = kd_ops::production::load(url, &[Table::Snapshots, Table::Deltas], origin, to);
    let rest = kd_ops::production::load(
        url,
        &[Table::Trades, Table::Tickers, Table::Lifecycle, Table::Gaps],
        from,
        to,
    );
    let (books, rest) = tokio::try_join!(books, rest)?;
    let markets = kd_production::open(url).await?.markets().await?;
    Ok(Loaded {
        books,
        rest,
        markets,
    })
}

/// Drops every per-market record of another market (`--tickers`). Gaps stay: a gap without a
/// market is about the whole feed, and the uncovered windows are computed from all of them.
fn keep_only(loaded: &mut Loaded, tickers: &[String]) {
    let keep = |t: &str| tickers.iter().any(|x| x == t);
    loaded.books.snapshots.retain(|s| keep(&s.ticker));
    loaded.books.deltas.retain(|d| keep(&d.ticker));
    loaded.rest.trades.retain(|t| keep(&t.ticker));
    loaded.rest.tickers.retain(|t| keep(&t.ticker));
    loaded.markets.retain(|m| keep(&m.ticker));
    // Event lifecycle messages name an event, not a market: kept when a market is in it.
    loaded.rest.lifecycle.retain(|l| {
        tickers
            .iter()
            .any(|t| t == &l.subject || t.starts_with(&l.subject))
    });
}
