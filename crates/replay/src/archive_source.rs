//! `--archive URL`: the replay's records read from the Parquet archive (docs/archive.md) — a
//! local folder (`PATH` or `file://PATH`) or `s3://BUCKET/PREFIX` — instead of production.
//!
//! Only what the range needs is read: the `raw/` windows (one object per table and window,
//! `<table>_<start>_<len>.parquet`) that overlap `[from, to]`, plus, for the books at `from`,
//! earlier `snapshots` windows walked back until every market of the range has a WebSocket
//! snapshot at or before `from` (the base `kd_core::book` rebuilds from) and the `deltas`
//! windows from there on. Of each file, only the record's columns are fetched (range requests),
//! and with `--tickers` only the row groups whose `ticker` statistics may hold one of them.
//! The records are the ones production holds (the raw tier is production's rows, unchanged),
//! so the dataset built from them is the production replay's.
//!
//! Two things the archive does not hold, and what replaces them: market metadata (REST
//! `/markets` lists nothing; books and feeds are unaffected) and the gatherer list production
//! keeps in its cursors (here: every gatherer named by a gap record of the archive, which
//! misses a gatherer that never had a gap, so a window where every *other* gatherer was down
//! is announced as uncovered — an over-announcement, never a hidden gap).

use crate::parquet_rows::{self, RowGroups, RowsError};
use crate::source::Loaded;
use futures::TryStreamExt;
use kd_archive::{Archive, S3Options, StoreError};
use kd_core::{Record, SnapshotSource, Table, TimestampUs};
use object_store::ObjectStore;
use object_store::path::Path;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Why the archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveReadError {
    #[error("--archive {0}: no such folder")]
    NoFolder(String),
    #[error("--archive: {0}")]
    Store(#[from] StoreError),
    #[error("listing the archive: {0}")]
    List(#[from] object_store::Error),
    #[error("archive file {0}")]
    Rows(#[from] RowsError),
}

/// One `raw/` object: a table's window.
#[derive(Debug, Clone)]
pub struct Part {
    pub path: Path,
    pub size: u64,
    pub start: i64,
    pub end: i64,
}

/// An opened archive.
pub struct ArchiveSource {
    store: Arc<dyn ObjectStore>,
    /// Row groups read and present per table, over every read so far (logged after a load;
    /// tests check that `--tickers` skips row groups).
    row_groups: Mutex<BTreeMap<&'static str, RowGroups>>,
}

impl ArchiveSource {
    /// Opens `url` (`PATH`, `file://PATH` or `s3://BUCKET/PREFIX`); a folder must exist.
    pub fn open(url: &str, s3: &S3Options) -> Result<ArchiveSource, ArchiveReadError> {
        let url = if url.contains("://") {
            url.to_string()
        } else {
            let abs = std::path::absolute(url).unwrap_or_else(|_| url.into());
            format!("file://{}", abs.display())
        };
        if let Some(path) = url.strip_prefix("file://")
            && !std::path::Path::new(path).is_dir()
        {
            return Err(ArchiveReadError::NoFolder(path.to_string()));
        }
        Ok(ArchiveSource {
            store: Archive::open(&url, s3)?.store,
            row_groups: Mutex::default(),
        })
    }

    /// Row groups of `table` read so far, and how many the files read hold.
    pub fn row_groups(&self, table: Table) -> RowGroups {
        self.row_groups
            .lock()
            .ok()
            .and_then(|m| m.get(table.name()).copied())
            .unwrap_or_default()
    }

    fn count(&self, table: Table, groups: RowGroups) {
        if let Ok(mut m) = self.row_groups.lock() {
            let c = m.entry(table.name()).or_default();
            c.read += groups.read;
            c.total += groups.total;
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Every `raw/<table>/` window object, by window start.
    pub async fn parts(&self, table: Table) -> Result<Vec<Part>, ArchiveReadError> {
        let prefix = Path::from(format!("raw/{}", table.name()));
        let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut parts: Vec<Part> = listed
            .into_iter()
            .filter_map(|m| {
                let (start, end) = window_of(m.location.filename()?, table)?;
                Some(Part {
                    path: m.location,
                    size: m.size,
                    start,
                    end,
                })
            })
            .collect();
        parts.sort_by_key(|p| p.start);
        Ok(parts)
    }

    /// Every record of `table` in `parts` (`tickers` non-empty: of those markets only).
    pub async fn read(
        &self,
        table: Table,
        parts: &[Part],
        tickers: &[String],
    ) -> Result<Vec<Record>, ArchiveReadError> {
        let names = parquet_rows::columns(table);
        let reads = parts.iter().map(|p| async move {
            let (batches, groups) =
                parquet_rows::read_batches(&self.store, &p.path, p.size, names, tickers).await?;
            self.count(table, groups);
            let mut out = Vec::new();
            for b in &batches {
                out.extend(parquet_rows::decode(table, b, p.path.as_ref())?);
            }
            Ok::<_, ArchiveReadError>(out)
        });
        let mut all: Vec<Record> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        if !tickers.is_empty() && table != Table::Gaps {
            all.retain(|r| market(r).is_none_or(|m| tickers.iter().any(|t| t == m)));
        }
        Ok(all)
    }

    /// Reads what a replay of `[from, to]` needs (module docs).
    pub async fn load(
        &self,
        from: TimestampUs,
        to: TimestampUs,
        tickers: &[String],
    ) -> Result<Loaded, ArchiveReadError> {
        let (lo, hi) = (from.micros(), to.micros());
        let overlaps = |p: &&Part| p.start <= hi && p.end > lo;
        let in_range = |ts: TimestampUs| ts.micros() >= lo && ts.micros() <= hi;
        let mut loaded = Loaded::default();
        for table in [Table::Trades, Table::Tickers, Table::Lifecycle, Table::Gaps] {
            let parts: Vec<Part> = self
                .parts(table)
                .await?
                .iter()
                .filter(overlaps)
                .cloned()
                .collect();
            for r in self.read(table, &parts, tickers).await? {
                match &r {
                    Record::Gap(g) if !in_range(g.start) => continue,
                    Record::Gap(_) => {}
                    other if !in_range(other.exchange_ts()) => continue,
                    _ => {}
                }
                loaded.rest.push(r);
            }
        }
        loaded.rest.gatherers = self.gatherers().await?;

        // Books: the range's snapshots and deltas, then earlier snapshot windows until every
        // market has its base, then the deltas since the earliest window read.
        let snap_parts = self.parts(Table::Snapshots).await?;
        let delta_parts = self.parts(Table::Deltas).await?;
        let range_snaps: Vec<Part> = snap_parts.iter().filter(overlaps).cloned().collect();
        let mut snaps = self.read(Table::Snapshots, &range_snaps, tickers).await?;
        let mut deltas = self
            .read(
                Table::Deltas,
                &delta_parts
                    .iter()
                    .filter(overlaps)
                    .cloned()
                    .collect::<Vec<_>>(),
                tickers,
            )
            .await?;
        let mut needed: BTreeSet<String> = snaps
            .iter()
            .chain(&deltas)
            .filter_map(market)
            .map(str::to_string)
            .collect();
        needed.extend(loaded.rest.trades.iter().map(|t| t.ticker.clone()));
        needed.extend(loaded.rest.tickers.iter().map(|t| t.ticker.clone()));
        needed.extend(tickers.iter().cloned());
        let mut based: BTreeSet<String> = BTreeSet::new();
        note_bases(&mut based, &snaps, from);
        let mut earliest = lo;
        for p in snap_parts.iter().rev().filter(|p| p.end <= lo) {
            if needed.iter().all(|m| based.contains(m)) {
                break;
            }
            let more = self
                .read(Table::Snapshots, std::slice::from_ref(p), tickers)
                .await?;
            note_bases(&mut based, &more, from);
            snaps.extend(more);
            earliest = earliest.min(p.start);
        }
        let older: Vec<Part> = delta_parts
            .iter()
            .filter(|p| p.end <= lo && p.end > earliest)
            .cloned()
            .collect();
        deltas.extend(self.read(Table::Deltas, &older, tickers).await?);
        for r in snaps.into_iter().chain(deltas) {
            if r.exchange_ts() <= to {
                loaded.books.push(r);
            }
        }
        let deltas_read = self.row_groups(Table::Deltas);
        tracing::info!(
            snapshot_windows = range_snaps.len(),
            delta_windows = delta_parts.iter().filter(overlaps).count() + older.len(),
            delta_row_groups_read = deltas_read.read,
            delta_row_groups = deltas_read.total,
            "archive read"
        );
        Ok(loaded)
    }

    /// The gatherers named by any gap of the archive (only the `gatherer` column is read).
    async fn gatherers(&self) -> Result<Vec<String>, ArchiveReadError> {
        let mut names = BTreeSet::new();
        for p in self.parts(Table::Gaps).await? {
            let (batches, _) =
                parquet_rows::read_batches(&self.store, &p.path, p.size, &["gatherer"], &[])
                    .await?;
            for b in &batches {
                if let Some(col) = b
                    .column_by_name("gatherer")
                    .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
                {
                    names.extend(col.iter().flatten().map(str::to_string));
                }
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// Adds the markets that have a WebSocket snapshot at or before `from` among `records`.
fn note_bases(based: &mut BTreeSet<String>, records: &[Record], from: TimestampUs) {
    for r in records {
        if let Record::Snapshot(s) = r
            && s.source == SnapshotSource::Ws
            && s.exchange_ts <= from
        {
            based.insert(s.ticker.clone());
        }
    }
}

/// The market a record is about (`None`: gaps).
fn market(r: &Record) -> Option<&str> {
    match r {
        Record::Trade(t) => Some(&t.ticker),
        Record::Delta(d) => Some(&d.ticker),
        Record::Snapshot(s) => Some(&s.ticker),
        Record::Ticker(t) => Some(&t.ticker),
        Record::Lifecycle(l) => Some(&l.subject),
        Record::Gap(_) => None,
    }
}

/// `<table>_<YYYYMMDDTHHMMZ>_<len>.parquet` → the window `[start, end)` in µs.
fn window_of(file: &str, table: Table) -> Option<(i64, i64)> {
    let rest = file
        .strip_prefix(table.name())?
        .strip_prefix('_')?
        .strip_suffix(".parquet")?;
    let (stamp, len) = rest.split_once('_')?;
    let len: kd_archive::WindowLen = len.parse().ok()?;
    let b = stamp.as_bytes();
    if b.len() != 14 || b.get(8) != Some(&b'T') || b.get(13) != Some(&b'Z') {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:00Z",
        stamp.get(0..4)?,
        stamp.get(4..6)?,
        stamp.get(6..8)?,
        stamp.get(9..11)?,
        stamp.get(11..13)?
    );
    let start = TimestampUs::parse_rfc3339(&text).ok()?.micros();
    Some((start, start + len.micros()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_names_parse() {
        let w = window_of("deltas_20260105T1400Z_1h.parquet", Table::Deltas);
        let start = TimestampUs::parse_rfc3339("2026-01-05T14:00:00Z")
            .map(TimestampUs::micros)
            .ok();
        assert_eq!(w.map(|w| w.0), start);
        assert_eq!(w.map(|w| w.1 - w.0), Some(3_600_000_000));
        assert_eq!(
            window_of("trades_20260105T0000Z_1d.parquet", Table::Trades).map(|w| w.1 - w.0),
            Some(86_400_000_000)
        );
        assert!(window_of("deltas_20260105T1400Z_1h.parquet#3", Table::Deltas).is_none());
        assert!(window_of("trades_20260105T1400Z_1h.parquet", Table::Deltas).is_none());
    }
}

#[cfg(test)]
#[path = "archive_source_tests.rs"]
mod ticker_tests;
