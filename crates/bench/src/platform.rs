//! The platform stage: the platform as it is deployed, all at once — `kalshi-data up` as a
//! child process (the simulator, three gatherer processes reading it over real WebSockets, the
//! deduplicator and the exporter, each its own OS process) against a scratch PostgreSQL
//! database, at a rising exchange rate. Each step runs `--platform-secs`, lets `up` drain, then
//! runs `kalshi-data verify --truth … --production …`; a step passes when verify says `OK`
//! with book check points, the deduplicator's p99 lag stays under 1 s and the exchange
//! reached 90 % of the asked rate. Stepping stops at the first step that does not pass.
//!
//! Figures of the highest passing step (`platform_max_msgs_per_s` is the rate the exchange
//! achieved there): CPU per 10,000 published messages of every process (`/proc/PID/stat`
//! utime + stime over the window, PostgreSQL's backends of the scratch database included) and
//! exchange → production latency: for each delta and trade whose exchange time falls in the
//! window, from that time (the simulator stamps its wall clock at publish) to the first
//! PostgreSQL snapshot, polled every 100 ms, in which the transaction that inserted it
//! (`xmin`) had committed — an upper bound by up to one poll. Production has no insert-time
//! column and `track_commit_timestamp` is off by default, hence the snapshots.

pub mod sample;

use crate::BenchError;
use crate::measure::quantile;
use crate::production::ScratchDb;
use crate::report::Report;
use sample::{Readings, Snapshot};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The worst p99 deduplicator lag a passing step may show (issue 21).
const MAX_P99_LAG_S: f64 = 1.0;
/// Share of the asked rate the exchange must reach for a step to count as that rate.
const MIN_ACHIEVED: f64 = 0.9;
/// Rows read back per table for the latency figures (a Bernoulli sample beyond).
const LATENCY_ROWS: f64 = 300_000.0;

/// What the stage runs.
#[derive(Debug, Clone)]
pub struct PlatformPlan {
    pub exe: PathBuf,
    /// The PostgreSQL server (`--production`); each step gets its own scratch database.
    pub server: String,
    pub markets: usize,
    pub rates: Vec<u32>,
    pub secs: u64,
}

/// One step's outcome.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Step {
    pub rate: u32,
    pub achieved_msgs_per_s: Option<f64>,
    pub verify: String,
    pub verify_ok: bool,
    pub lag_p99_s: Option<f64>,
    pub lag_max_s: Option<f64>,
    /// CPU ms per 10,000 published messages, per process name.
    pub cpu_ms_per_10k: std::collections::BTreeMap<String, f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub rows_timed: usize,
    pub restarts: u64,
    pub loadavg: String,
    pub passed: bool,
    /// Why it did not pass (empty when it did).
    pub why: String,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Steps up the rate and records the figures of the best passing step.
pub async fn run(plan: &PlatformPlan, dir: &Path, report: &mut Report) {
    let mut best: Option<Step> = None;
    let mut steps = Vec::new();
    for &rate in &plan.rates {
        let sub = dir.join(format!("platform-{rate}"));
        let step = match step(plan, rate, &sub).await {
            Ok(s) => s,
            Err(e) => Step {
                rate,
                why: e.to_string(),
                loadavg: loadavg(),
                ..Step::default()
            },
        };
        eprintln!(
            "bench platform: {rate} msg/s asked, {} achieved, lag p99 {:?} s, {}: {}",
            step.achieved_msgs_per_s.map_or(0.0, f64::round),
            step.lag_p99_s,
            if step.passed { "passed" } else { "failed" },
            if step.passed { &step.verify } else { &step.why }
        );
        // A passing step's stores are not needed; a failing one's logs say why.
        if step.passed {
            let _ = std::fs::remove_dir_all(&sub);
        }
        let passed = step.passed;
        if passed {
            best = Some(step.clone());
        }
        steps.push(step);
        if !passed {
            break;
        }
    }
    report.note(
        "platform_steps",
        serde_json::to_value(&steps).unwrap_or_default(),
    );
    report.note("platform_markets", plan.markets as u64);
    report.note("platform_secs", plan.secs);
    let why = steps
        .first()
        .map_or("no rates to step through".to_string(), |s| {
            format!("the first step ({} msg/s) failed: {}", s.rate, s.why)
        });
    let Some(b) = best else {
        for k in PLATFORM_KEYS {
            report.skip(k, &why);
        }
        return;
    };
    report.set("platform_max_msgs_per_s", b.achieved_msgs_per_s, &why);
    report.set("platform_dedup_lag_p99_s", b.lag_p99_s, "no lag readings");
    for (tag, v) in [("p50", b.p50_ms), ("p99", b.p99_ms), ("p999", b.p999_ms)] {
        report.set(
            &format!("platform_{tag}_exchange_to_production_ms"),
            v,
            "no rows timed",
        );
    }
    for (name, ms) in &b.cpu_ms_per_10k {
        report.set(
            &format!("platform_cpu_ms_per_10k_msgs_{}", name.replace('-', "_")),
            Some(*ms),
            "",
        );
    }
}

/// The keys set from the best step (the CPU ones are per process name on top).
pub const PLATFORM_KEYS: [&str; 5] = [
    "platform_max_msgs_per_s",
    "platform_dedup_lag_p99_s",
    "platform_p50_exchange_to_production_ms",
    "platform_p99_exchange_to_production_ms",
    "platform_p999_exchange_to_production_ms",
];

async fn step(plan: &PlatformPlan, rate: u32, dir: &Path) -> Result<Step, BenchError> {
    let db = ScratchDb::create(&plan.server).await?;
    let out = step_in(plan, rate, dir, &db).await;
    let _ = db.drop_db().await;
    out
}

async fn step_in(
    plan: &PlatformPlan,
    rate: u32,
    dir: &Path,
    db: &ScratchDb,
) -> Result<Step, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::stage("platform dir", e))?;
    let log = std::fs::File::create(dir.join("up.out"))
        .map_err(|e| BenchError::stage("platform log", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| BenchError::stage("platform log", e))?;
    let data_dir = dir.join("up");
    let mut child = tokio::process::Command::new(&plan.exe)
        .arg("up")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--markets", &plan.markets.to_string()])
        .args(["--rate", &rate.to_string()])
        .args(["--duration", &plan.secs.to_string()])
        .arg("--plain")
        // Through the environment: a URL with a password must not be on a command line.
        .env("KALSHI_DATA_PRODUCTION", &db.url)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BenchError::stage("spawn up", e))?;

    let pg = crate::production::connect(&db.url).await?;
    let timeline: Arc<Mutex<Vec<(i64, Snapshot)>>> = Arc::default();
    let stop = CancellationToken::new();
    let snapshots = tokio::spawn(poll_snapshots(
        db.url.clone(),
        timeline.clone(),
        stop.clone(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| BenchError::stage("http client", e))?;
    let mut readings = Readings::default();
    // `up` takes the run, its drain (up to 300 s) and its stop; beyond, it is stuck.
    let limit = Instant::now() + Duration::from_secs(plan.secs + 600);
    let status = loop {
        tokio::select! {
            s = child.wait() => break s.ok(),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        sample::read_once(&http, Some(&pg), &db.name, &data_dir, &mut readings).await;
        if Instant::now() > limit {
            terminate(&child);
            break tokio::time::timeout(Duration::from_secs(60), child.wait())
                .await
                .ok()
                .and_then(Result::ok);
        }
    };
    stop.cancel();
    let _ = snapshots.await;
    readings.restarts = restarts(&data_dir);
    if !status.is_some_and(|s| s.success()) {
        return Err(BenchError::msg(
            "platform",
            format!(
                "up ended with {status:?}; see {}",
                dir.join("up.out").display()
            ),
        ));
    }

    let verify = run_verify(&plan.exe, &data_dir, &db.url).await?;
    let mut s = Step {
        rate,
        verify_ok: verify_ok(&verify),
        verify,
        restarts: readings.restarts,
        loadavg: loadavg(),
        ..Step::default()
    };
    let published = readings.published();
    if let Some((n, d)) = published {
        s.achieved_msgs_per_s = Some(n as f64 / d.as_secs_f64());
        for (name, ms) in readings.cpu.window_ms() {
            if n > 0 {
                s.cpu_ms_per_10k.insert(name, ms * 10_000.0 / n as f64);
            }
        }
    }
    let mut lags = readings.lags.clone();
    lags.sort_by(f64::total_cmp);
    s.lag_p99_s = quantile(&lags, 0.99);
    s.lag_max_s = lags.last().copied();
    if let (Some((t0, _, _)), Some((t1, _, _))) = (readings.window_start, readings.window_end) {
        let timeline = timeline.lock().map(|v| v.clone()).unwrap_or_default();
        let expected = s.achieved_msgs_per_s.unwrap_or(0.0) * plan.secs as f64;
        let rows = timed_rows(&pg, t0.micros(), t1.micros(), expected).await?;
        let mut lat = sample::commit_latencies(&rows, &timeline);
        lat.sort_by(f64::total_cmp);
        s.rows_timed = lat.len();
        s.p50_ms = quantile(&lat, 0.5);
        s.p99_ms = quantile(&lat, 0.99);
        s.p999_ms = quantile(&lat, 0.999);
    }
    s.why = judge(&s);
    s.passed = s.why.is_empty();
    Ok(s)
}

/// Empty when the step passes, else what failed.
fn judge(s: &Step) -> String {
    let mut why = Vec::new();
    if !s.verify_ok {
        why.push(format!("verify did not pass: {}", s.verify));
    }
    match s.lag_p99_s {
        Some(l) if l < MAX_P99_LAG_S => {}
        Some(l) => why.push(format!("deduplicator lag p99 {l:.1} s ≥ {MAX_P99_LAG_S} s")),
        None => why.push("no deduplicator lag readings".into()),
    }
    match s.achieved_msgs_per_s {
        Some(a) if a >= MIN_ACHIEVED * f64::from(s.rate) => {}
        Some(a) => why.push(format!(
            "the exchange reached {a:.0} msg/s of {} asked",
            s.rate
        )),
        None => why.push("no published count".into()),
    }
    if s.restarts > 0 {
        why.push(format!("{} process restarts", s.restarts));
    }
    why.join("; ")
}

/// `verify: OK …` with at least one book check point.
fn verify_ok(line: &str) -> bool {
    line.starts_with("verify: OK")
        && line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("books="))
            .and_then(|b| b.split('/').nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// `verify`'s verdict line (the last `verify:` line of its output).
async fn run_verify(exe: &Path, data_dir: &Path, url: &str) -> Result<String, BenchError> {
    let out = tokio::process::Command::new(exe)
        .arg("verify")
        .arg("--truth")
        .arg(data_dir.join("truth.jsonl"))
        .env("KALSHI_DATA_PRODUCTION", url)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| BenchError::stage("run verify", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    std::fs::write(data_dir.join("verify.out"), text.as_bytes())
        .map_err(|e| BenchError::stage("verify output", e))?;
    Ok(text
        .lines()
        .rev()
        .find(|l| l.starts_with("verify:"))
        .map_or_else(
            || {
                format!(
                    "no verdict (exit {:?}): {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            },
            str::to_string,
        ))
}

/// Restarts `up` counted for its children (`up.json`).
fn restarts(data_dir: &Path) -> u64 {
    std::fs::read_to_string(data_dir.join("up.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["processes"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["restarts"].as_u64()).sum::<u64>())
        })
        .unwrap_or(0)
}

/// SIGTERM to `up`: it stops its children at once.
fn terminate(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Every 100 ms, which transactions had committed (until `stop`).
async fn poll_snapshots(
    url: String,
    timeline: Arc<Mutex<Vec<(i64, Snapshot)>>>,
    stop: CancellationToken,
) {
    let Ok(pg) = crate::production::connect(&url).await else {
        return;
    };
    loop {
        if let Ok(row) = pg
            .query_one("SELECT pg_current_snapshot()::text", &[])
            .await
            && let Ok(text) = row.try_get::<_, String>(0)
            && let Some(s) = Snapshot::parse(&text)
        {
            let now = kd_core::TimestampUs::now().micros();
            if let Ok(mut v) = timeline.lock() {
                v.push((now, s));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// `(xmin, exchange_ts)` of the deltas and trades with exchange time in `[from, to]` (a
/// Bernoulli sample of about [`LATENCY_ROWS`] per table when there are more).
async fn timed_rows(
    pg: &tokio_postgres::Client,
    from: i64,
    to: i64,
    expected: f64,
) -> Result<Vec<(u32, i64)>, BenchError> {
    let pct = (LATENCY_ROWS * 100.0 / expected.max(1.0)).clamp(0.01, 100.0);
    let mut out = Vec::new();
    for table in ["orderbook_deltas", "trades"] {
        // xmin is `xid`, readable as text; the sample percentage is a number we formatted.
        let sql = format!(
            "SELECT xmin::text, exchange_ts FROM {table} TABLESAMPLE BERNOULLI ({pct:.4}) \
             WHERE exchange_ts BETWEEN $1 AND $2"
        );
        let rows = pg
            .query(&sql, &[&from, &to])
            .await
            .map_err(|e| BenchError::stage("latency rows", e))?;
        for r in rows {
            if let (Ok(x), Ok(ts)) = (r.try_get::<_, String>(0), r.try_get::<_, i64>(1))
                && let Ok(x) = x.parse::<u32>()
            {
                out.push((x, ts));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_must_say_ok_with_books() {
        assert!(verify_ok(
            "verify: OK trades=1/1 deltas=2/2 tickers=0/0 books=3/3"
        ));
        assert!(!verify_ok(
            "verify: OK trades=1/1 deltas=2/2 tickers=0/0 books=0/0"
        ));
        assert!(!verify_ok(
            "verify: FAIL trades=1/1 deltas=2/2 tickers=0/0 books=2/3"
        ));
    }

    #[test]
    fn a_step_fails_on_lag_rate_or_verify() {
        let ok = Step {
            rate: 10_000,
            achieved_msgs_per_s: Some(9_500.0),
            verify: "verify: OK trades=1/1 deltas=1/1 tickers=0/0 books=1/1".into(),
            verify_ok: true,
            lag_p99_s: Some(0.4),
            ..Step::default()
        };
        assert_eq!(judge(&ok), "");
        let slow = Step {
            lag_p99_s: Some(1.2),
            ..ok.clone()
        };
        assert!(judge(&slow).contains("lag"));
        let short = Step {
            achieved_msgs_per_s: Some(7_000.0),
            ..ok.clone()
        };
        assert!(judge(&short).contains("reached"));
        let wrong = Step {
            verify_ok: false,
            ..ok
        };
        assert!(judge(&wrong).contains("verify"));
    }
}
