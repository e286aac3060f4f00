//! Memory and start-up at scale: a real gatherer **process** (`kalshi-data gatherer`, so its
//! RSS is its own) against the in-process simulator with N markets at a modest rate. Reports
//! the time from spawn to `/ready` (first full market sync and a connection up), the time until
//! every known market is subscribed, and RSS once subscribed.

use crate::BenchError;
use crate::harness;
use crate::measure::rss_mb;
use crate::report::Report;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What one scale point measured.
#[derive(Debug, Clone, Copy)]
pub struct ScalePoint {
    pub markets: usize,
    pub ready_s: f64,
    pub subscribed_s: Option<f64>,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    /// WebSocket connections the simulator accepted (the pool's size when nothing reconnected).
    pub connections_opened: u64,
    /// Connections the simulator cut off for falling behind its feed (error 25, close 1011).
    pub overflow_disconnects: u64,
    /// Gap records the gatherer wrote for one connection the exchange closed once every
    /// market was subscribed (`None` when not measured: `drop_once` off, or no full
    /// subscription to start from).
    pub gaps_per_connection_loss: Option<u64>,
}

fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::stage("free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| BenchError::stage("free port", e))
}

/// Runs one gatherer process against `markets` markets.
pub async fn point(
    exe: &Path,
    markets: usize,
    rate: u32,
    dir: &Path,
    limit: Duration,
    drop_once: bool,
) -> Result<ScalePoint, BenchError> {
    let shutdown = CancellationToken::new();
    let sim = harness::sim(markets, rate, &shutdown).await?;
    let port = free_port()?;
    let start = Instant::now();
    let mut child = tokio::process::Command::new(exe)
        .arg("gatherer")
        .args(["--gatherer-id", "bench-scale"])
        .args(["--rest-url", &sim.rest_base()])
        .args(["--ws-url", &sim.ws_url()])
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("KALSHI_DATA_GATHERER_SNAPSHOT_POLL_INTERVAL_MINS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BenchError::stage("spawn gatherer", e))?;
    let pid = child.id().unwrap_or(0);
    let mut result = observe(pid, port, start, markets, limit).await;
    if drop_once
        && let Ok(p) = result.as_mut()
        && p.subscribed_s.is_some()
    {
        p.gaps_per_connection_loss = drop_one_connection(&sim, port, dir).await.ok();
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    if let Ok(point) = result.as_mut() {
        let stats = sim.stats().await;
        point.connections_opened = stats.connections_total;
        point.overflow_disconnects = stats.overflow_disconnects;
    }
    shutdown.cancel();
    let _ = sim.join().await;
    result
}

async fn observe(
    pid: u32,
    port: u16,
    start: Instant,
    markets: usize,
    limit: Duration,
) -> Result<ScalePoint, BenchError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| BenchError::stage("http client", e))?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = start + limit;
    let mut ready_s = None;
    let mut subscribed_s = None;
    while Instant::now() < deadline && subscribed_s.is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if ready_s.is_none()
            && let Ok(r) = http.get(format!("{base}/ready")).send().await
            && r.status().is_success()
        {
            ready_s = Some(start.elapsed().as_secs_f64());
        }
        if ready_s.is_some()
            && let Ok(r) = http.get(format!("{base}/health")).send().await
            && let Ok(h) = r.json::<serde_json::Value>().await
        {
            let known = h["markets_known"].as_u64().unwrap_or(0);
            let subscribed = h["markets_subscribed"].as_u64().unwrap_or(0);
            if known > 0 && subscribed >= known {
                subscribed_s = Some(start.elapsed().as_secs_f64());
            }
        }
    }
    let Some(ready_s) = ready_s else {
        return Err(BenchError::msg(
            "scale",
            format!(
                "gatherer not ready within {} s at {markets} markets",
                limit.as_secs()
            ),
        ));
    };
    // Steady state: the largest RSS over two seconds of streaming.
    let mut rss = 0.0_f64;
    let mut peak = 0.0_f64;
    for _ in 0..20 {
        if let Some((now, hwm)) = rss_mb(pid) {
            rss = rss.max(now);
            peak = peak.max(hwm);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(ScalePoint {
        markets,
        ready_s,
        subscribed_s,
        rss_mb: rss,
        peak_rss_mb: peak,
        connections_opened: 0,
        overflow_disconnects: 0,
        gaps_per_connection_loss: None,
    })
}

/// Gap records in the gatherer's store (every reason; read-only beside its writer).
fn gap_rows(dir: &Path) -> Result<u64, BenchError> {
    let sql = |e| BenchError::stage("read gaps", e);
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(sql)?;
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM gaps", [], |r| r.get(0))
        .map_err(sql)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The exchange closes one connection once (`ws-close:1011:EVERY`, cleared as soon as it has
/// fired); the gap records written from then until every market is subscribed again and the
/// count has stood still for 3 s.
async fn drop_one_connection(
    sim: &kd_sim::SimHandle,
    port: u16,
    dir: &Path,
) -> Result<u64, BenchError> {
    let before = gap_rows(dir)?;
    let closed0 = sim.stats().await.ws_closed_by_fault;
    sim.add_fault(kd_sim::faults::FaultSpec::WsClose {
        code: 1011,
        every: Some(Duration::from_secs(1)),
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().await.ws_closed_by_fault == closed0 {
        if Instant::now() > deadline {
            sim.clear_faults();
            return Err(BenchError::msg(
                "scale",
                "the exchange closed no connection",
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.clear_faults();
    if sim.stats().await.ws_closed_by_fault > closed0 + 1 {
        return Err(BenchError::msg("scale", "more than one connection closed"));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| BenchError::stage("http client", e))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut last, mut still) = (u64::MAX, 0);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let all = match http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            Ok(r) => r.json::<serde_json::Value>().await.ok().is_some_and(|h| {
                let known = h["markets_known"].as_u64().unwrap_or(0);
                known > 0 && h["markets_subscribed"].as_u64().unwrap_or(0) >= known
            }),
            Err(_) => false,
        };
        let n = gap_rows(dir)?;
        still = if all && n == last { still + 1 } else { 0 };
        last = n;
        if still >= 3 {
            return Ok(n.saturating_sub(before));
        }
    }
    Err(BenchError::msg(
        "scale",
        "not resubscribed within 300 s after the connection loss",
    ))
}

/// Runs each market count in turn and records `rss_<label>_markets_mb` and, for the largest,
/// `sync_<label>_markets_s`.
pub async fn run(
    exe: &Path,
    counts: &[usize],
    rate: u32,
    dir: &Path,
    report: &mut Report,
) -> Vec<ScalePoint> {
    let mut points = Vec::new();
    for &n in counts {
        let label = label(n);
        let sub = dir.join(format!("scale-{n}"));
        let outcome = match std::fs::create_dir_all(&sub) {
            // The connection loss is measured at the largest count (1 M markets by default).
            Ok(()) => {
                let largest = counts.iter().max() == Some(&n);
                point(exe, n, rate, &sub, Duration::from_secs(600), largest).await
            }
            Err(e) => Err(BenchError::stage("scale dir", e)),
        };
        match outcome {
            Ok(p) => {
                report.set(&format!("rss_{label}_markets_mb"), Some(p.rss_mb), "");
                report.set(
                    &format!("peak_rss_{label}_markets_mb"),
                    Some(p.peak_rss_mb),
                    "",
                );
                report.set(&format!("sync_{label}_markets_s"), Some(p.ready_s), "");
                report.set(
                    &format!("subscribed_{label}_markets_s"),
                    p.subscribed_s,
                    "not every market subscribed within the limit",
                );
                report.set(
                    &format!("ws_connections_{label}_markets"),
                    Some(p.connections_opened as f64),
                    "",
                );
                report.set(
                    &format!("ws_overflow_disconnects_{label}_markets"),
                    Some(p.overflow_disconnects as f64),
                    "",
                );
                if p.gaps_per_connection_loss.is_some() || counts.iter().max() == Some(&n) {
                    report.set(
                        &format!("gap_records_per_connection_loss_{label}_markets"),
                        p.gaps_per_connection_loss.map(|g| g as f64),
                        "not measured: no full subscription, or no resubscription in time",
                    );
                }
                points.push(p);
            }
            Err(e) => {
                let why = e.to_string();
                report.skip(&format!("rss_{label}_markets_mb"), &why);
                report.skip(&format!("sync_{label}_markets_s"), &why);
            }
        }
        let _ = std::fs::remove_dir_all(&sub);
    }
    points
}

/// `10k`, `100k`, `1m`.
pub fn label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}
