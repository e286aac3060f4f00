//! Helpers shared by the gatherer's integration tests.
#![allow(dead_code)]

use kd_core::pull::PulledRecord;
use kd_core::records::Level;
use kd_core::{Record, Table};
use kd_gatherer::config::GathererConfig;
use kd_gatherer::store::ReadPool;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A gatherer configuration for tests: port 0, the given store and exchange.
pub fn gatherer_config(dir: &Path, rest: &str, ws: &str) -> GathererConfig {
    GathererConfig {
        gatherer_id: "g-test".into(),
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or(GathererConfig::default().listen),
        rest_url: rest.to_string(),
        ws_url: ws.to_string(),
        connections: 2,
        markets_per_subscription: 64,
        ..GathererConfig::default()
    }
}

/// Every row of a table, in sequence order.
pub fn all_rows(
    dir: &Path,
    table: Table,
) -> Result<Vec<PulledRecord>, Box<dyn std::error::Error + Send + Sync>> {
    let pool = ReadPool::new(dir)?;
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = pool.pull(table, after, 50_000)?;
        match page.last() {
            Some(last) => after = last.seq,
            None => return Ok(out),
        }
        out.extend(page);
    }
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    kd_testkit::wait::until(limit, Duration::from_millis(20), async || f()).await
}

/// A book as two price → size maps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Book {
    pub yes: BTreeMap<i64, i64>,
    pub no: BTreeMap<i64, i64>,
}

impl Book {
    pub fn from_levels(yes: &[Level], no: &[Level]) -> Book {
        let side = |levels: &[Level]| {
            levels
                .iter()
                .filter(|l| l.size.hundredths() != 0)
                .map(|l| (l.price.units(), l.size.hundredths()))
                .collect()
        };
        Book {
            yes: side(yes),
            no: side(no),
        }
    }

    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Snapshot(s) => *self = Book::from_levels(&s.yes, &s.no),
            Record::Delta(d) => {
                let side = match d.side {
                    kd_core::Side::Yes => &mut self.yes,
                    kd_core::Side::No => &mut self.no,
                };
                let size = side.entry(d.price.units()).or_insert(0);
                *size += d.delta.hundredths();
                if *size == 0 {
                    side.remove(&d.price.units());
                }
            }
            _ => {}
        }
    }
}

/// Serialises the tests that assert on process-wide metrics (every gatherer of a test process
/// shares one Prometheus recorder, so counters must be read as deltas while no other gatherer
/// of the binary runs): they take it for writing; every other test that runs a gatherer or
/// writes a store takes it for reading, so those still run in parallel with each other. (All
/// integration tests are one binary, so the files no longer have a process each.)
pub static SERIAL: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub use kd_testkit::prom::value as metric;

/// The gatherer's `/metrics` text, over HTTP.
pub async fn scrape(
    addr: std::net::SocketAddr,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    Ok(reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?)
}

/// One request seen by [`RestProxy`].
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: std::time::Instant,
    /// Path relative to `/trade-api/v2` (`/markets/trades`).
    pub path: String,
    pub query: String,
    pub status: u16,
}

/// A recording HTTP proxy in front of the simulator's REST API, over real sockets: every
/// request is logged with its arrival time and the status the simulator answered. When
/// `retry_after_ms` is set, it is added to the body of every 429 (the simulator's injected
/// 429 carries none; Kalshi's may).
pub struct RestProxy {
    pub base: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RestProxy {
    pub async fn start(
        upstream: std::net::SocketAddr,
        retry_after_ms: Option<u64>,
    ) -> Result<RestProxy, Box<dyn std::error::Error + Send + Sync>> {
        use axum::response::IntoResponse;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Seen>::new()));
        let client = reqwest::Client::new();
        let log = seen.clone();
        let handler = move |uri: axum::http::Uri| {
            let client = client.clone();
            let log = log.clone();
            async move {
                let at = std::time::Instant::now();
                let pq = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                let reply = client.get(format!("http://{upstream}{pq}")).send().await;
                let (status, mut body) = match reply {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                    ),
                    Err(_) => (599, Vec::new()),
                };
                if status == 429
                    && let Some(ms) = retry_after_ms
                    && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body)
                {
                    v["error"]["retry_after_ms"] = ms.into();
                    body = v.to_string().into_bytes();
                }
                let path = uri.path();
                log.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
                    at,
                    path: path
                        .strip_prefix("/trade-api/v2")
                        .unwrap_or(path)
                        .to_string(),
                    query: uri.query().unwrap_or("").to_string(),
                    status,
                });
                let code = axum::http::StatusCode::from_u16(status)
                    .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
                (
                    code,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RestProxy {
            base: format!("http://{addr}/trade-api/v2"),
            seen,
            task,
        })
    }

    /// Every request so far to `path`.
    pub fn to(&self, path: &str) -> Vec<Seen> {
        self.all().into_iter().filter(|s| s.path == path).collect()
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for RestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP forwarder in front of the simulator's WebSocket port that records when each
/// connection (a WebSocket connect attempt) arrives.
pub struct WsProxy {
    pub url: String,
    pub accepts: std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    /// The forwarding tasks of live connections (aborting one drops both of its sockets).
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WsProxy {
    pub async fn start(
        upstream: std::net::SocketAddr,
    ) -> Result<WsProxy, Box<dyn std::error::Error + Send + Sync>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = accepts.clone();
        let live = links.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(std::time::Instant::now());
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                live.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(link.abort_handle());
            }
        });
        Ok(WsProxy {
            url: format!("ws://{addr}/trade-api/ws/v2"),
            accepts,
            links,
            task,
        })
    }

    /// Drops every live connection's sockets without a close frame: what a client reports as
    /// 1006 (abnormal closure).
    pub fn cut_all(&self) {
        for link in self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            link.abort();
        }
    }

    pub fn accepts(&self) -> Vec<std::time::Instant> {
        self.accepts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for WsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes one trade received at `at` into the store in `dir`, as a previous run would have:
/// the next start backfills trades over REST from `at` (the downtime repair).
pub fn seed_previous_run(
    dir: &Path,
    at: kd_core::TimestampUs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use kd_core::records::{TradeSource, WirePos};
    use kd_core::{Count, Price, Trade};
    let mut w = kd_gatherer::store::WriteConn::open(dir)?;
    w.insert_batch(&[Record::Trade(Trade {
        trade_id: "previous-run-1".into(),
        ticker: "PREVIOUS-RUN".into(),
        exchange_ts: at,
        yes_price: Price::new(40_000)?,
        no_price: Price::new(60_000)?,
        count: Count::new(100),
        taker_side: Some(kd_core::Side::Yes),
        is_block_trade: false,
        source: TradeSource::Ws,
        received_at: at,
        pos: WirePos::default(),
    })])?;
    Ok(())
}

/// A small simulator for failure tests: `markets` markets, all hot, no market creation.
pub async fn small_sim(
    markets: usize,
    rate: u32,
    truth: Option<std::path::PathBuf>,
) -> Result<kd_sim::SimHandle, Box<dyn std::error::Error + Send + Sync>> {
    Ok(kd_sim::start(
        kd_sim::SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets,
            rate,
            hot_markets: markets,
            truth,
            create_every: Duration::ZERO,
            ..kd_sim::SimConfig::default()
        },
        tokio_util::sync::CancellationToken::new(),
    )
    .await?)
}

/// A simulator and a gatherer whose store is on a 4 MiB tmpfs (to be filled), with a small
/// writer queue and a short backpressure wait, so a full disk overflows the queue quickly and
/// the drop-as-gap path runs too. What the full-disk tests share.
pub struct SmallDisk {
    /// Holds the mount point and the truth file; dropped last.
    pub dir: tempfile::TempDir,
    pub tmpfs: kd_testkit::tmpfs::Tmpfs,
    pub mnt: std::path::PathBuf,
    pub store: std::path::PathBuf,
    pub truth: std::path::PathBuf,
    pub sim: kd_sim::SimHandle,
    pub gatherer: kd_gatherer::GathererHandle,
}

impl SmallDisk {
    pub async fn start(
        markets: usize,
    ) -> Result<SmallDisk, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt)?;
        let tmpfs = kd_testkit::tmpfs::Tmpfs::mount(&mnt, "4m")?;
        let store = mnt.join("store");
        let truth = dir.path().join("truth.jsonl");
        let sim = small_sim(markets, 800, Some(truth.clone())).await?;
        let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
        config.snapshot_poll_interval_mins = 0;
        config.writer_batch_rows = 100;
        config.writer_queue_records = 300;
        config.router_backpressure_ms = 200;
        let gatherer =
            kd_gatherer::start(config, tokio_util::sync::CancellationToken::new()).await?;
        Ok(SmallDisk {
            dir,
            tmpfs,
            mnt,
            store,
            truth,
            sim,
            gatherer,
        })
    }
}
