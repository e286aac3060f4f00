//! Shared test support: a deterministic synthetic production, an `s3s-fs` server on a free
//! port, and the independent pyarrow/DuckDB checker.
#![allow(dead_code)]

use kd_archive::MemorySource;
use kd_core::records::{
    Gap, Level, Lifecycle, OrderbookDelta, OrderbookSnapshot, SnapshotSource, Ticker, Trade,
    TradeSource, WirePos,
};
use kd_core::{Count, Price, Record, Side, TimestampUs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub const HOUR: i64 = 3_600_000_000;

/// 2026-01-05T00:00:00Z.
pub fn day0() -> TimestampUs {
    TimestampUs::from_micros(1_767_571_200_000_000)
}

/// (market, event, series); the last market is unknown to production's metadata.
pub const MARKETS: [(&str, &str, &str); 5] = [
    ("KXA-26JAN05-T1", "KXA-26JAN05", "KXA"),
    ("KXA-26JAN05-T2", "KXA-26JAN05", "KXA"),
    ("KXB-26JAN05-X", "KXB-26JAN05", "KXB"),
    ("KXB-26JAN06-Y", "KXB-26JAN06", "KXB"),
    ("KXC-UNKNOWN-Z", "", ""),
];

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> i64 {
        (self.next() % n.max(1)) as i64
    }
}

fn price(units: i64) -> Price {
    Price::new(units.clamp(0, 100_000)).unwrap_or(Price::ONE_DOLLAR)
}

/// A production holding `hours` hours of every table from [`day0`], about `per_hour` deltas
/// per hour, plus a few exact duplicates (to exercise the processed tier's deduplication).
pub fn synthetic(hours: i64, per_hour: usize, seed: u64) -> MemorySource {
    let mut rng = Rng::new(seed);
    let mut src = MemorySource::new();
    for (m, e, s) in MARKETS {
        if !e.is_empty() {
            src.insert_market(m, e, s);
        }
    }
    let start = day0().micros();
    let mut records = Vec::new();
    let mut trade_no = 0;
    for h in 0..hours {
        let base = start + h * HOUR;
        for (mi, (m, _, _)) in MARKETS.iter().enumerate() {
            let ts = |rng: &mut Rng| TimestampUs::from_micros(base + rng.below(HOUR as u64));
            // A snapshot at the start of the hour, then deltas on its levels.
            let snap_ts = TimestampUs::from_micros(base + (mi as i64) * 1000);
            records.push(Record::Snapshot(OrderbookSnapshot {
                ticker: m.to_string(),
                source: if h % 2 == 0 {
                    SnapshotSource::Ws
                } else {
                    SnapshotSource::Rest
                },
                exchange_ts: snap_ts,
                yes: vec![
                    Level {
                        price: price(40_000),
                        size: Count::new(10_000),
                    },
                    Level {
                        price: price(45_000),
                        size: Count::new(5_000),
                    },
                ],
                no: vec![Level {
                    price: price(50_000),
                    size: Count::new(7_500),
                }],
                received_at: snap_ts,
                pos: WirePos::default(),
            }));
            for _ in 0..per_hour / MARKETS.len() {
                let t = TimestampUs::from_micros(
                    snap_ts.micros() + 1 + rng.below((HOUR - 2000) as u64),
                );
                records.push(Record::Delta(OrderbookDelta {
                    ticker: m.to_string(),
                    exchange_ts: t,
                    side: if rng.below(2) == 0 {
                        Side::Yes
                    } else {
                        Side::No
                    },
                    price: price(40_000 + 1000 * rng.below(20)),
                    delta: Count::new(rng.below(2000) - 900),
                    occurrence: 0,
                    received_at: TimestampUs::from_micros(t.micros() + 1500),
                    pos: WirePos::default(),
                }));
            }
            for _ in 0..(5 + rng.below(10)) {
                let t = ts(&mut rng);
                let yes = 1000 * (20 + rng.below(60));
                trade_no += 1;
                records.push(Record::Trade(Trade {
                    trade_id: format!("trade-{trade_no:06}"),
                    ticker: m.to_string(),
                    exchange_ts: t,
                    yes_price: price(yes),
                    no_price: price(100_000 - yes),
                    count: Count::new(100 + rng.below(10_000)),
                    taker_side: if rng.below(3) == 0 {
                        None
                    } else {
                        Some(Side::Yes)
                    },
                    is_block_trade: rng.below(10) == 0,
                    source: TradeSource::Ws,
                    received_at: t,
                    pos: WirePos::default(),
                }));
            }
            for _ in 0..(3 + rng.below(5)) {
                let t = ts(&mut rng);
                let bid = 1000 * (30 + rng.below(30));
                records.push(Record::Ticker(Ticker {
                    ticker: m.to_string(),
                    exchange_ts: t,
                    price: Some(price(bid + 500)),
                    yes_bid: Some(price(bid)),
                    yes_ask: if rng.below(4) == 0 {
                        None
                    } else {
                        Some(price(bid + 1000))
                    },
                    volume: Some(Count::new(rng.below(1_000_000))),
                    open_interest: Some(Count::new(rng.below(500_000))),
                    dollar_volume: Some(rng.below(10_000)),
                    dollar_open_interest: None,
                    yes_bid_size: Some(Count::new(rng.below(5000))),
                    yes_ask_size: None,
                    last_trade_size: Some(Count::new(100)),
                    received_at: t,
                    pos: WirePos::default(),
                }));
            }
        }
        let t = TimestampUs::from_micros(base + 123);
        // Every lifecycle kind of today's exchange passes through the archive unfiltered.
        const KINDS: [&str; 4] = [
            "market_lifecycle_v2",
            "multivariate_market_lifecycle",
            "event_lifecycle",
            "event_fee_update",
        ];
        records.push(Record::Lifecycle(Lifecycle {
            subject: MARKETS[0].0.to_string(),
            kind: KINDS[h as usize % KINDS.len()].into(),
            event_type: "activated".into(),
            exchange_ts: t,
            payload: format!("{{\"hour\":{h}}}"),
            received_at: t,
            pos: WirePos::default(),
        }));
        records.push(Record::Gap(Gap {
            gatherer: "g1".into(),
            gap_id: format!("gap-{h}"),
            ticker: if h % 2 == 0 {
                None
            } else {
                Some(MARKETS[1].0.to_string())
            },
            tickers: Vec::new(),
            channel: "orderbook_delta".into(),
            start: TimestampUs::from_micros(base + 500),
            end: TimestampUs::from_micros(base + 900),
            reason: "seq_gap".into(),
            repair: "snapshot+rest_trades".into(),
        }));
    }
    // Exact duplicates: the processed tier must drop them, raw keeps what production holds.
    let dups: Vec<Record> = records
        .iter()
        .filter(|r| matches!(r, Record::Delta(_) | Record::Trade(_)))
        .step_by(97)
        .cloned()
        .collect();
    records.extend(dups);
    src.insert(records);
    src
}

pub use kd_testkit::ci::in_ci;

/// Where the `s3s-fs` binary is, if installed (`scripts/test-deps` installs it).
pub fn s3s_fs_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KALSHI_DATA_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok();
    let mut candidates: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("s3s-fs"))
        .collect();
    if let Some(h) = home {
        candidates.push(h.join("bin").join("s3s-fs"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// A running `s3s-fs` on a free loopback port over a temp dir, killed on drop.
pub struct S3Server {
    child: Child,
    bin: PathBuf,
    pub port: u16,
    pub endpoint: String,
    pub root: tempfile::TempDir,
    pub bucket: String,
}

pub const ACCESS_KEY: &str = "kdtestaccess";
pub const SECRET_KEY: &str = "kdtestsecret";

impl S3Server {
    /// Starts the server, or `Ok(None)` (with a loud message) when the binary is missing
    /// outside CI.
    pub fn start(
        bucket: &str,
    ) -> Result<Option<S3Server>, Box<dyn std::error::Error + Send + Sync>> {
        let Some(bin) = s3s_fs_binary() else {
            if in_ci() {
                return Err(
                    "s3s-fs is not installed: scripts/test-deps must run before the tests".into(),
                );
            }
            eprintln!(
                "\n*** SKIPPING S3 TEST: the s3s-fs binary is missing. Run scripts/test-deps \
                 (cargo install s3s-fs --version 0.14.1 --locked --features binary). ***\n"
            );
            return Ok(None);
        };
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join(bucket))?;
        for _attempt in 0..5 {
            let port = kd_testkit::ports::free_port()?;
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(root.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Some(S3Server {
                        child,
                        bin,
                        port,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        root,
                        bucket: bucket.to_string(),
                    }));
                }
                if child.try_wait()?.is_some() {
                    break; // lost the port race; try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err("s3s-fs did not start".into())
    }

    /// Stops the server (the S3 endpoint becomes unreachable: connections are refused).
    pub fn stop(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Starts it again on the same port and folder (after [`S3Server::stop`]).
    pub fn restart(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("s3s-fs did not start again on its port".into())
    }

    pub fn options(&self) -> kd_archive::S3Options {
        kd_archive::S3Options {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(kd_core::config::Secret::new(SECRET_KEY)),
            session_token: None,
            allow_http: Some(true),
        }
    }

    /// The folder where the server keeps the bucket's objects (read by pyarrow directly).
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(&self.bucket)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raw rows per table: `(ticker, exchange_ts, id)`, sorted.
pub type ArchiveRows = std::collections::BTreeMap<String, Vec<(String, i64, String)>>;

/// The raw rows of an archive folder per table, read by `tests/archive_rows.py` (pyarrow):
/// `[ticker, exchange_ts, id]` sorted; `Ok(None)` (loudly) when pyarrow is missing outside CI.
pub fn archive_rows(
    root: &Path,
) -> Result<Option<ArchiveRows>, Box<dyn std::error::Error + Send + Sync>> {
    if check_parquet(root)?.is_none() {
        return Ok(None);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("archive_rows.py");
    let out = Command::new("python3").arg(script).arg(root).output()?;
    if !out.status.success() {
        return Err(format!("archive_rows.py: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}

/// Runs `tests/check_parquet.py` over an archive folder; `Ok(None)` (loudly) when pyarrow is
/// missing outside CI.
pub fn check_parquet(
    root: &Path,
) -> Result<Option<serde_json::Value>, Box<dyn std::error::Error + Send + Sync>> {
    let has_pyarrow = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_pyarrow {
        if in_ci() {
            return Err(
                "pyarrow is not installed: scripts/test-deps must run before the tests".into(),
            );
        }
        eprintln!(
            "\n*** SKIPPING INDEPENDENT PARQUET CHECK: pyarrow is missing. Run scripts/test-deps. ***\n"
        );
        return Ok(None);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("check_parquet.py");
    let out = Command::new("python3").arg(script).arg(root).output()?;
    if !out.status.success() {
        return Err(format!(
            "check_parquet.py failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}
