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

/// Where the `s3s-fs` binary is (`scripts/test-deps` installs it), as the archive tests find it.
fn s3s_fs() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("KALSHI_DATA_S3S_FS") {
        return Some(p.into());
    }
    let mut candidates: Vec<std::path::PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join("s3s-fs"))
        .collect();
    if let Ok(home) = std::env::var("CARGO_HOME")
        .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.cargo")))
    {
        candidates.push(std::path::Path::new(&home).join("bin").join("s3s-fs"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// An `s3s-fs` child over a folder, killed on drop.
struct S3(std::process::Child);

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--archive s3://…` (an S3-compatible server) reads the same records as the folder it
/// serves, and prunes row groups the same way.
#[tokio::test]
async fn an_s3_archive_reads_what_its_folder_holds() -> Res {
    let Some(bin) = s3s_fs() else {
        kd_testkit::ci::skip(
            "an_s3_archive_reads_what_its_folder_holds",
            "s3s-fs is not installed",
        );
        return Ok(());
    };
    let root = tempfile::tempdir()?;
    let folder = root.path().join("replay-bucket").join("kd");
    let from = TimestampUs::parse_rfc3339("2026-12-02T10:00:00Z")?;
    let to = TimestampUs::from_micros(from.micros() + 600_000_000);
    archive(&folder, from)?;
    let port = kd_testkit::ports::free_port()?;
    let (key, secret) = ("kdreplayaccess", "kdreplaysecret");
    let _server = S3(std::process::Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", key, "--secret-key", secret])
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            return Err("s3s-fs did not start".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let options = S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some(key.into()),
        secret_access_key: Some(kd_core::config::Secret::new(secret)),
        session_token: None,
        allow_http: Some(true),
    };
    let local = ArchiveSource::open(&folder.display().to_string(), &S3Options::default())?;
    let s3 = ArchiveSource::open("s3://replay-bucket/kd", &options)?;
    for tickers in [Vec::new(), vec!["KXC-1".to_string()]] {
        let (want, got) = (
            local.load(from, to, &tickers).await?,
            s3.load(from, to, &tickers).await?,
        );
        assert!(!got.books.deltas.is_empty());
        assert_eq!(got.books.deltas, want.books.deltas, "tickers {tickers:?}");
        assert_eq!(
            got.books.snapshots, want.books.snapshots,
            "tickers {tickers:?}"
        );
    }
    // Both loads together: 4 + 1 row groups of 4 + 4.
    assert_eq!(
        s3.row_groups(Table::Deltas),
        RowGroups { read: 5, total: 8 }
    );
    Ok(())
}
