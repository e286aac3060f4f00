//! A running `kalshi-data up`: the whole tree (simulator, 3 gatherers, deduplicator, exporter)
//! as supervised OS processes, driven like an operator would. Its children are found through
//! `DATA_DIR/up.json` (pid, port, metrics URL per process) and probed over plain HTTP
//! ([`crate::http`]); dropping an [`Up`] stops the whole tree even when a test fails.
//!
//! The binary's path is an argument (`env!("CARGO_BIN_EXE_kalshi-data")` in the test crate):
//! Cargo tells only the tests of the `kalshi-data` package where it is.

use crate::http::{get as http_get, get_json, request as http_request};
use crate::process::signal;
use crate::wait::wait_for;
use crate::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a scenario runs `up`.
#[derive(Debug, Clone)]
pub struct UpOpts {
    /// `--markets`: markets the simulator lists.
    pub markets: u32,
    /// `--rate`: messages per second the simulator publishes.
    pub rate: u32,
    /// `--duration` in seconds: `up` drains and exits by itself after it.
    pub duration: u64,
    /// `--fault` specs for the simulator (e.g. `ws-drop:0.005`).
    pub faults: Vec<String>,
    /// `--production` URL; `None` is SQLite in the data directory.
    pub production: Option<String>,
    /// `up --config FILE`: supervise exactly these processes instead of the local plan.
    pub config: Option<PathBuf>,
    /// Environment of `up` and so of every process it starts (e.g.
    /// `KALSHI_DATA_GATHERER_<KEY>` overrides a gatherer configuration key).
    pub env: Vec<(String, String)>,
    /// `--sim-arg` values: switches appended to the simulator's command line (e.g.
    /// `["--historical-cutoff-lag-s", "5"]`).
    pub sim_args: Vec<String>,
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
            sim_args: Vec::new(),
        }
    }
}

/// A running `kalshi-data up`. Dropping it stops the whole tree even when a test fails.
pub struct Up {
    /// The data directory (`up.json`, `truth.jsonl`, `logs/`, one directory per gatherer).
    pub dir: PathBuf,
    /// `up`'s own output.
    pub log: PathBuf,
    /// The production URL `up` was given.
    pub production: String,
    /// When `up` was started: `--duration` counts from here.
    pub started: Instant,
    child: Child,
    /// Set once `up` has been seen to exit: nothing left to stop on drop.
    done: bool,
}

/// The gatherers of `up`'s local plan, by process name.
pub const GATHERERS: [&str; 3] = ["gatherer-a", "gatherer-b", "gatherer-c"];

impl Up {
    /// Waits until 3 s before `up --duration` (`duration_secs`) ends, then clears the
    /// simulator's faults, as an operator would: the drain waits for the gatherers' heads to
    /// stop moving, and periodic closes or stalls (each one re-subscribes) would keep them
    /// moving for ever.
    pub fn clear_faults_before_end(&self, duration_secs: u64) -> Result<()> {
        let end = self.started + Duration::from_secs(duration_secs);
        std::thread::sleep(end.saturating_duration_since(Instant::now() + Duration::from_secs(3)));
        let cleared = self
            .url("sim", "/_sim/faults")
            .and_then(|u| http_request("DELETE", &u, None))
            .map(|r| r.0);
        if cleared.is_some_and(|s| s < 300) {
            Ok(())
        } else {
            Err(Error::Failed(format!("clearing the faults: {cleared:?}")))
        }
    }

    /// Starts `bin up --plain` on `dir` (created), its output in `DIR.up.log`; production is
    /// `o.production`, else SQLite in `dir`.
    pub fn start(bin: &Path, dir: &Path, o: &UpOpts) -> Result<Up> {
        Up::start_as(bin, dir, o, false)
    }

    /// Like [`Up::start`], but the production URL goes to `up` through `KALSHI_DATA_PRODUCTION`
    /// instead of its command line (as an operator with a password in the URL would).
    pub fn start_with_production_env(bin: &Path, dir: &Path, o: &UpOpts) -> Result<Up> {
        Up::start_as(bin, dir, o, true)
    }

    fn start_as(bin: &Path, dir: &Path, o: &UpOpts, production_env: bool) -> Result<Up> {
        std::fs::create_dir_all(dir)?;
        let log = dir.with_extension("up.log");
        let out = std::fs::File::create(&log)?;
        let production = o
            .production
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("production.db").display()));
        let mut cmd = Command::new(bin);
        cmd.args(["up", "--plain", "--data-dir"])
            .arg(dir)
            .args(["--markets", &o.markets.to_string()])
            .args(["--rate", &o.rate.to_string()])
            .args(["--duration", &o.duration.to_string()]);
        if production_env {
            cmd.env("KALSHI_DATA_PRODUCTION", &production);
        } else {
            cmd.args(["--production", &production]);
        }
        for f in &o.faults {
            cmd.args(["--fault", f]);
        }
        for a in &o.sim_args {
            cmd.arg(format!("--sim-arg={a}"));
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

    /// `up.json` as `up` last wrote it.
    pub fn state(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join("up.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The `up.json` entry of process `name`.
    pub fn process(&self, name: &str) -> Option<Value> {
        self.state()?["processes"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// The current pid of `name` (a restart changes it).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.process(name)?["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
    }

    /// `http://127.0.0.1:PORT{path}` of `name`.
    pub fn url(&self, name: &str, path: &str) -> Option<String> {
        let port = self.process(name)?["port"].as_u64()?;
        Some(format!("http://127.0.0.1:{port}{path}"))
    }

    /// `name`'s `/health` document, when it answers 200.
    pub fn health(&self, name: &str) -> Option<Value> {
        get_json(&self.url(name, "/health")?)
    }

    /// `name`'s `/metrics` text.
    pub fn metrics(&self, name: &str) -> Option<String> {
        let (status, body) = http_get(&self.url(name, "/metrics")?, None)?;
        (status == 200).then_some(body)
    }

    /// The gatherer's `deltas` store head (only WebSocket data moves it), when it answers.
    pub fn deltas_head(&self, name: &str) -> Option<u64> {
        self.health(name)?["store"]["tables"]["deltas"]["head"].as_u64()
    }

    /// Every gatherer collecting (deltas stored) and the deduplicator answering.
    pub fn wait_ready(&self, limit: Duration) -> Result<()> {
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
        .map_err(|e| Error::Failed(format!("{e}\n{}", self.log_text())))
    }

    /// Sends `sig` to the current process of `name`; returns its pid.
    pub fn signal(&self, name: &str, sig: &str) -> Result<u32> {
        let pid = self
            .pid(name)
            .ok_or_else(|| Error::Failed(format!("{name} has no pid")))?;
        signal(pid, sig)?;
        Ok(pid)
    }

    /// Waits until `up` has started a new process for `name` (a pid other than `old`).
    pub fn wait_restarted(&self, name: &str, old: u32, limit: Duration) -> Result<u32> {
        wait_for(limit, &format!("{name} restarted"), || {
            self.pid(name).filter(|p| *p != old)
        })
    }

    /// Waits until the deltas head of `name` exceeds `above`: new WebSocket data committed.
    pub fn wait_deltas_above(&self, name: &str, above: u64, limit: Duration) -> Result<()> {
        wait_for(limit, &format!("{name} storing new deltas"), || {
            self.deltas_head(name).filter(|h| *h > above).map(|_| ())
        })
    }

    /// Waits until `name` has every connection up and every known market subscribed.
    pub fn wait_subscribed(&self, name: &str, limit: Duration) -> Result<()> {
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
    pub fn wait_exit(&mut self, limit: Duration) -> Result<()> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait()? {
                self.done = true;
                if !st.success() {
                    return Err(Error::Failed(format!(
                        "up failed: {st}\n{}",
                        self.log_text()
                    )));
                }
                let log = self.log_text();
                if !log.contains("up: drained") {
                    return Err(Error::Failed(format!("up never drained:\n{log}")));
                }
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(Error::Failed(format!("up did not finish within {limit:?}")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends `sig` (e.g. `INT`, as Ctrl-C at a terminal does) to `up` itself.
    pub fn signal_up(&self, sig: &str) -> Result<()> {
        signal(self.child.id(), sig)
    }

    /// `up`'s own output so far.
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
    /// Starts sampling the deduplicator of the `up` on `dir`.
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
                    .and_then(|(_, body)| crate::prom::max(&body, "dedup_sync_lag_seconds"))
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

    /// Stops sampling; the worst lag seen, in seconds.
    pub fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.max.lock().map_or(f64::NAN, |g| *g)
    }
}
