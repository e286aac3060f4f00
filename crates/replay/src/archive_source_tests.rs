//! `--tickers` from the archive: only the row groups whose `ticker` statistics may hold one of
//! them are read (counted by [`ArchiveSource::row_groups`]), and the records are those
//! markets' alone.

use super::*;
use kd_archive::Window;
use kd_archive::encode::{FileMeta, encode};
use kd_archive::layout::{Tier, table_key};
use kd_archive::schema::{raw_batch, raw_schema};
use kd_core::records::Level;
use kd_core::{Count, OrderbookDelta, OrderbookSnapshot, Price, Side};

type Res = Result<(), Box<dyn std::error::Error>>;

const TICKERS: [&str; 4] = ["KXA-1", "KXB-1", "KXC-1", "KXD-1"];
const PER_TICKER: usize = 50;

/// One raw file of `table` for the hour at `from`, sorted by (ticker, time) as the exporter
/// writes it, in row groups of `group_rows`.
fn write(dir: &std::path::Path, table: Table, from: TimestampUs, mut records: Vec<Record>) -> Res {
    records.sort_by(|a, b| (market(a), a.exchange_ts()).cmp(&(market(b), b.exchange_ts())));
    let batch = raw_batch(table, &records)?;
    let meta = FileMeta {
        dataset: format!("raw.{}", table.name()),
        extra: Vec::new(),
        sorted_by_first_two: true,
        row_group_rows: PER_TICKER,
    };
    let bytes = encode(&raw_schema(table), &[batch], &meta)?;
    let window = Window {
        start: from,
        end: TimestampUs::from_micros(from.micros() + 3_600_000_000),
    };
    let path = dir.join(table_key(Tier::Raw, table, &window).as_ref());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

fn archive(dir: &std::path::Path, from: TimestampUs) -> Res {
    let at = |us: i64| TimestampUs::from_micros(from.micros() + us);
    let price = |u: i64| Price::new(u).unwrap_or(Price::ZERO);
    let snaps = TICKERS
        .iter()
        .map(|t| {
            Record::Snapshot(OrderbookSnapshot {
                ticker: t.to_string(),
                source: SnapshotSource::Ws,
                exchange_ts: from,
                yes: vec![Level {
                    price: price(40_000),
                    size: Count::new(1_000),
                }],
                no: Vec::new(),
                received_at: from,
                pos: Default::default(),
            })
        })
        .collect();
    write(dir, Table::Snapshots, from, snaps)?;
    let deltas = TICKERS
        .iter()
        .flat_map(|t| {
            (0..PER_TICKER as i64).map(move |i| {
                Record::Delta(OrderbookDelta {
                    ticker: t.to_string(),
                    exchange_ts: at(1_000 * (i + 1)),
                    side: Side::Yes,
                    price: price(40_000 + 10 * i),
                    delta: Count::new(100),
                    occurrence: 0,
                    received_at: at(1_000 * (i + 1)),
                    pos: Default::default(),
                })
            })
        })
        .collect();
    write(dir, Table::Deltas, from, deltas)
}

#[tokio::test]
async fn tickers_read_only_the_row_groups_that_may_hold_them() -> Res {
    let dir = tempfile::tempdir()?;
    let from = TimestampUs::parse_rfc3339("2026-12-02T10:00:00Z")?;
    let to = TimestampUs::from_micros(from.micros() + 600_000_000);
    archive(dir.path(), from)?;
    let url = dir.path().display().to_string();

    let all = ArchiveSource::open(&url, &S3Options::default())?;
    let loaded = all.load(from, to, &[]).await?;
    assert_eq!(loaded.books.deltas.len(), TICKERS.len() * PER_TICKER);
    let groups = all.row_groups(Table::Deltas);
    assert_eq!(groups.total, TICKERS.len(), "one row group per market");
    assert_eq!(groups.read, groups.total);

    let one = ArchiveSource::open(&url, &S3Options::default())?;
    let wanted = vec!["KXC-1".to_string()];
    let loaded = one.load(from, to, &wanted).await?;
    assert_eq!(loaded.books.deltas.len(), PER_TICKER);
    assert!(loaded.books.deltas.iter().all(|d| d.ticker == "KXC-1"));
    assert_eq!(loaded.books.snapshots.len(), 1);
    assert_eq!(
        one.row_groups(Table::Deltas),
        RowGroups { read: 1, total: 4 },
        "only KXC-1's row group is read"
    );
    Ok(())
}
