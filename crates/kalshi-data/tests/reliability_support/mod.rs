//! Shared machinery of the reliability scenarios: drive `kalshi-data up` as a child process,
//! read its `up.json`, probe `/health` and `/metrics`, signal supervised children, run
//! `verify`, and print one line of figures per scenario.
//!
//! Everything is synchronous (std threads and sockets): a scenario is a script of real
//! processes, and the probes are plain HTTP/1.0 GETs on loopback.

#![allow(dead_code)] // each scenario uses part of this module

pub mod mangle;
pub mod pg;
pub mod tmpfs;

use kd_core::Record;
use kd_core::records::Identity;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Microseconds since the Unix epoch: the simulator stamps exchange time from this clock.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `GET url` with an optional bearer token; `(status, body)`, or `None` when nothing answers.
pub fn http_get(url: &str, token: Option<&str>) -> Option<(u16, String)> {
    http_request("GET", url, token)
}

/// One HTTP/1.0 request on loopback (no body); `(status, body)`.
pub fn http_request(method: &str, url: &str, token: Option<&str>) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let addr = host.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{auth}Content-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

pub fn get_json(url: &str) -> Option<Value> {
    let (status, body) = http_get(url, None)?;
    (status == 200).then_some(())?;
    serde_json::from_str(&body).ok()
}

/// Sum of every sample of a metric in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    kd_ops::probe::Metrics::parse(text).sum(name)
}

/// Largest sample of a metric in Prometheus text.
pub fn metric_max(text: &str, name: &str) -> Option<f64> {
    let m = kd_ops::probe::Metrics::parse(text);
    let all = m.all(name);
    (!all.is_empty()).then(|| all.iter().map(|(_, v)| *v).fold(0.0, f64::max))
}

/// Sends a signal with the `kill` program (the test crate has no signal binding of its own).
pub fn signal(pid: u32, sig: &str) -> Res<()> {
    let st = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()?;
    if !st.success() {
        return Err(format!("kill -{sig} {pid} failed: {st}").into());
    }
    Ok(())
}

/// Polls `f` every 100 ms until it returns `Some`, or fails after `limit` with `what`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Res<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= end {
            return Err(format!("timed out after {limit:?} waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How a scenario runs `up`.
#[derive(Debug, Clone)]
pub struct UpOpts {
    pub markets: u32,
    pub rate: u32,
    pub duration: u64,
    pub faults: Vec<String>,
    pub production: Option<String>,
    /// `up --config FILE`: supervise exactly these processes instead of the local plan.
    pub config: Option<PathBuf>,
    /// Environment of `up` and so of every process it starts (e.g.
    /// `KALSHI_DATA_GATHERER_<KEY>` overrides a gatherer configuration key).
    pub env: Vec<(String, String)>,
}

impl Default for UpOpts {
    fn default() -> Self {
        UpOpts {
            markets: 30,
            rate: 300,
            duration: 40,
            faults: Vec::new(),
            production: None,
            config: None,
            env: Vec::new(),
        }
    }
}

/// A running `kalshi-data up`. Dropping it stops the whole tree even when a test fails.
pub struct Up {
    pub dir: PathBuf,
    pub log: PathBuf,
    pub production: String,
    pub started: Instant,
    child: Child,
    done: bool,
}

pub const GATHERERS: [&str; 3] = ["gatherer-a", "gatherer-b", "gatherer-c"];

impl Up {
    /// Waits until 3 s before `up --duration` (`duration_secs`) ends, then clears the
    /// simulator's faults, as an operator would: the drain waits for the gatherers' heads to
    /// stop moving, and periodic closes or stalls (each one re-subscribes) would keep them
    /// moving for ever.
    pub fn clear_faults_before_end(&self, duration_secs: u64) -> Res<()> {
        let end = self.started + Duration::from_secs(duration_secs);
        std::thread::sleep(end.saturating_duration_since(Instant::now() + Duration::from_secs(3)));
        let cleared = self
            .url("sim", "/_sim/faults")
            .and_then(|u| http_request("DELETE", &u, None))
            .map(|r| r.0);
        if cleared.is_some_and(|s| s < 300) {
            Ok(())
        } else {
            Err(format!("clearing the faults: {cleared:?}").into())
        }
    }

    pub fn start(dir: &Path, o: &UpOpts) -> Res<Up> {
        std::fs::create_dir_all(dir)?;
        let log = dir.with_extension("up.log");
        let out = std::fs::File::create(&log)?;
        let production = o
            .production
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("production.db").display()));
        let mut cmd = Command::new(BIN);
        cmd.args(["up", "--plain", "--data-dir"])
            .arg(dir)
            .args(["--markets", &o.markets.to_string()])
            .args(["--rate", &o.rate.to_string()])
            .args(["--duration", &o.duration.to_string()])
            .args(["--production", &production]);
        for f in &o.faults {
            cmd.args(["--fault", f]);
        }
        if let Some(c) = &o.config {
            cmd.arg("--config").arg(c);
        }
        cmd.envs(o.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Up {
            dir: dir.to_owned(),
            log,
            production,
            started: Instant::now(),
            child,
            done: false,
        })
    }

    pub fn state(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join("up.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn process(&self, name: &str) -> Option<Value> {
        self.state()?["processes"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.process(name)?["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
    }

    pub fn url(&self, name: &str, path: &str) -> Option<String> {
        let port = self.process(name)?["port"].as_u64()?;
        Some(format!("http://127.0.0.1:{port}{path}"))
    }

    pub fn health(&self, name: &str) -> Option<Value> {
        get_json(&self.url(name, "/health")?)
    }

    pub fn metrics(&self, name: &str) -> Option<String> {
        let (status, body) = http_get(&self.url(name, "/metrics")?, None)?;
        (status == 200).then_some(body)
    }

    /// The gatherer's `deltas` store head (only WebSocket data moves it), when it answers.
    pub fn deltas_head(&self, name: &str) -> Option<u64> {
        self.health(name)?["store"]["tables"]["deltas"]["head"].as_u64()
    }

    /// Every gatherer collecting (deltas stored) and the deduplicator answering.
    pub fn wait_ready(&self, limit: Duration) -> Res<()> {
        wait_for(
            limit,
            "3 gatherers storing deltas and the deduplicator up",
            || {
                let all = GATHERERS.iter().all(|g| {
                    self.health(g).is_some_and(|h| {
                        matches!(h["status"].as_str(), Some("ok" | "degraded"))
                            && h["store"]["tables"]["deltas"]["head"]
                                .as_u64()
                                .is_some_and(|n| n > 0)
                    })
                });
                (all && self.health("dedup").is_some()).then_some(())
            },
        )
        .map_err(|e| format!("{e}\n{}", self.log_text()).into())
    }

    /// Sends `sig` to the current process of `name`; returns its pid.
    pub fn signal(&self, name: &str, sig: &str) -> Res<u32> {
        let pid = self.pid(name).ok_or_else(|| format!("{name} has no pid"))?;
        signal(pid, sig)?;
        Ok(pid)
    }

    /// Waits until `up` has started a new process for `name` (a pid other than `old`).
    pub fn wait_restarted(&self, name: &str, old: u32, limit: Duration) -> Res<u32> {
        wait_for(limit, &format!("{name} restarted"), || {
            self.pid(name).filter(|p| *p != old)
        })
    }

    /// Waits until the deltas head of `name` exceeds `above`: new WebSocket data committed.
    pub fn wait_deltas_above(&self, name: &str, above: u64, limit: Duration) -> Res<()> {
        wait_for(limit, &format!("{name} storing new deltas"), || {
            self.deltas_head(name).filter(|h| *h > above).map(|_| ())
        })
    }

    /// Waits until `name` has every connection up and every known market subscribed.
    pub fn wait_subscribed(&self, name: &str, limit: Duration) -> Res<()> {
        wait_for(limit, &format!("{name} fully subscribed"), || {
            let h = self.health(name)?;
            let n = |k: &str| h[k].as_u64().unwrap_or(0);
            (n("connections_total") > 0
                && n("connections_up") == n("connections_total")
                && n("markets_known") > 0
                && n("markets_subscribed") >= n("markets_known"))
            .then_some(())
        })
    }

    /// Waits for `up` to end by itself (the `--duration` drain); fails unless it succeeded.
    pub fn wait_exit(&mut self, limit: Duration) -> Res<()> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait()? {
                self.done = true;
                if !st.success() {
                    return Err(format!("up failed: {st}\n{}", self.log_text()).into());
                }
                let log = self.log_text();
                if !log.contains("up: drained") {
                    return Err(format!("up never drained:\n{log}").into());
                }
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!("up did not finish within {limit:?}").into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every child's log under `DATA_DIR/logs`, concatenated.
    pub fn child_logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("logs")) {
            for e in rd.flatten() {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }

    /// The last `n` lines of a child's log and its `/health`, for failure messages.
    pub fn diagnose(&self, name: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("logs").join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "{name} /health: {}\n{name} log (last {n} lines):\n{}",
            self.health(name).map_or("-".into(), |h| h.to_string()),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    /// Every child's log under `DATA_DIR/logs`, by file name.
    pub fn child_log_files(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("logs")) {
            for e in rd.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                out.push((e.file_name().to_string_lossy().into_owned(), text));
            }
        }
        out
    }

    /// Rows stored by each gatherer (every data table, not gap records).
    pub fn captured(&self) -> Vec<(String, u64)> {
        GATHERERS
            .iter()
            .map(|g| {
                let path = self.dir.join(g).join("store.sqlite");
                let n = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .and_then(|db| {
                    db.query_row(
                        "SELECT (SELECT COUNT(*) FROM trades) + (SELECT COUNT(*) FROM deltas)
                          + (SELECT COUNT(*) FROM snapshots) + (SELECT COUNT(*) FROM tickers)
                          + (SELECT COUNT(*) FROM lifecycle)",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .map_or(0, |n| u64::try_from(n).unwrap_or(0));
                ((*g).to_string(), n)
            })
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.done || matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // A failed scenario: stop the tree the way an operator would, then make sure.
        let _ = signal(self.child.id(), "TERM");
        let end = Instant::now() + Duration::from_secs(40);
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let pids: Vec<u32> = self
            .state()
            .and_then(|s| s["processes"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
            .collect();
        let _ = self.child.kill();
        for pid in pids {
            let _ = signal(pid, "KILL");
        }
    }
}

/// Samples the deduplicator's worst sync lag every 250 ms while a scenario runs.
pub struct LagMonitor {
    stop: Arc<AtomicBool>,
    max: Arc<Mutex<f64>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LagMonitor {
    pub fn start(dir: &Path) -> LagMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(Mutex::new(0.0_f64));
        let (s, m, dir) = (stop.clone(), max.clone(), dir.to_owned());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let url = std::fs::read_to_string(dir.join("up.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|st| {
                        st["processes"]
                            .as_array()?
                            .iter()
                            .find(|p| p["name"] == "dedup")?["metrics_url"]
                            .as_str()
                            .map(str::to_string)
                    });
                if let Some(lag) = url
                    .and_then(|u| http_get(&u, None))
                    .and_then(|(_, body)| metric_max(&body, "dedup_sync_lag_seconds"))
                    && let Ok(mut g) = m.lock()
                {
                    *g = g.max(lag);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        LagMonitor {
            stop,
            max,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.max.lock().map_or(f64::NAN, |g| *g)
    }
}

/// One category line of `verify`'s report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cat {
    pub ok: u64,
    pub expected: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub altered: u64,
    pub extra: u64,
    pub excused: u64,
}

/// `verify`'s outcome, parsed.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    pub passed: bool,
    pub text: String,
    pub last: String,
    pub cats: BTreeMap<String, Cat>,
    /// books: equal, expected, mismatched, in a gap of every gatherer, before first snapshot.
    pub books: [u64; 5],
}

fn numbers(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub fn verify(dir: &Path, production: &str) -> Res<Verified> {
    let out = Command::new(BIN)
        .arg("verify")
        .arg("--truth")
        .arg(dir.join("truth.jsonl"))
        .args(["--production", production])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Verified {
        passed: out.status.success(),
        last: String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
        ..Verified::default()
    };
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(": ") else {
            continue;
        };
        let n = numbers(rest);
        match name {
            "trades" | "deltas" | "tickers" | "lifecycle" if n.len() == 7 => {
                v.cats.insert(
                    name.to_string(),
                    Cat {
                        ok: n[0],
                        expected: n[1],
                        missing: n[2],
                        duplicated: n[3],
                        altered: n[4],
                        extra: n[5],
                        excused: n[6],
                    },
                );
            }
            "books" if n.len() == 5 => v.books = [n[0], n[1], n[2], n[3], n[4]],
            _ => {}
        }
    }
    v.text = text;
    Ok(v)
}

impl Verified {
    pub fn sum(&self, f: impl Fn(&Cat) -> u64) -> u64 {
        self.cats.values().map(f).sum()
    }

    /// `verify: OK`, a report parsed, and nothing duplicated or extra.
    pub fn assert_ok(&self) -> Res<()> {
        if !(self.passed && self.last.starts_with("verify: OK trades=") && self.cats.len() == 4) {
            return Err(format!("verify did not pass:\n{}", self.text).into());
        }
        Ok(())
    }
}

/// What the simulator published (`kind: published` lines), delivered or not.
pub fn truth(dir: &Path) -> Res<Vec<(Record, bool)>> {
    let mut out = Vec::new();
    for line in kd_sim::read_truth(&dir.join("truth.jsonl"))? {
        if let kd_sim::TruthLine::Published { record, delivered } = line? {
            out.push((record, delivered));
        }
    }
    Ok(out)
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Rows in production (every data table; gap records not counted).
pub fn production_rows(url: &str) -> Res<u64> {
    let counts = runtime()?.block_on(kd_ops::production::counts(url))?;
    Ok(counts
        .iter()
        .filter(|(t, _)| !t.contains("gap"))
        .map(|(_, n)| *n)
        .sum())
}

/// Identities of every time-series record in production.
pub fn production_identities(url: &str) -> Res<HashSet<Identity>> {
    let data = runtime()?.block_on(kd_ops::production::load(
        url,
        &kd_core::Table::ALL,
        kd_core::TimestampUs::from_micros(0),
        kd_core::TimestampUs::from_micros(i64::MAX - 2),
    ))?;
    Ok(data.records().map(|r| r.identity()).collect())
}

/// The one line of figures every scenario prints.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub scenario: String,
    pub published: u64,
    pub delivered: u64,
    pub captured: Vec<(String, u64)>,
    pub production: u64,
    pub missing: u64,
    pub excused: u64,
    pub duplicated: u64,
    pub max_lag_s: f64,
    /// What recovered and how long it took.
    pub recover: Vec<(String, Duration)>,
    pub verdict: String,
}

impl Figures {
    pub fn collect(
        scenario: &str,
        up: &Up,
        v: &Verified,
        max_lag_s: f64,
        recover: Vec<(String, Duration)>,
    ) -> Res<Figures> {
        let t = truth(&up.dir)?;
        Ok(Figures {
            scenario: scenario.to_string(),
            published: t.len() as u64,
            delivered: t.iter().filter(|(_, d)| *d).count() as u64,
            captured: up.captured(),
            production: production_rows(&up.production)?,
            missing: v.sum(|c| c.missing),
            excused: v.sum(|c| c.excused),
            duplicated: v.sum(|c| c.duplicated),
            max_lag_s,
            recover,
            verdict: v.last.clone(),
        })
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let captured: Vec<String> = self
            .captured
            .iter()
            .map(|(g, n)| format!("{}={n}", g.trim_start_matches("gatherer-")))
            .collect();
        let recover: Vec<String> = self
            .recover
            .iter()
            .map(|(w, d)| format!("{w}={:.1}s", d.as_secs_f64()))
            .collect();
        write!(
            f,
            "FIGURES {}: published={} delivered={} captured[{}] production={} missing={} \
             excused={} duplicated={} max_sync_lag={:.1}s recover[{}] | {}",
            self.scenario,
            self.published,
            self.delivered,
            captured.join(" "),
            self.production,
            self.missing,
            self.excused,
            self.duplicated,
            self.max_lag_s,
            recover.join(" "),
            self.verdict
        )
    }
}
