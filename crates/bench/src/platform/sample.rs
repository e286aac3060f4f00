//! What the platform stage reads while `up` runs: the processes `up` started (its `up.json`),
//! their CPU (`/proc/PID/stat`), the exchange's published count, the gatherers' routed counts,
//! the deduplicator's lag, the PostgreSQL backends of the scratch database, and a timeline of
//! PostgreSQL snapshots (which transactions had committed when) for the latency figures.

use kd_core::TimestampUs;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/PID/stat`, 100 on every Linux ABI the
/// kernel exposes to user space (the kernel's own HZ is hidden behind it).
const USER_HZ: u64 = 100;

/// User + system CPU of a process, in `USER_HZ` ticks (`/proc/PID/stat` fields 14 and 15).
pub fn proc_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// One process of `up.json`.
#[derive(Debug, Clone)]
pub struct Proc {
    pub name: String,
    pub kind: String,
    pub pid: Option<u32>,
    pub port: u16,
}

/// `up.json`'s phase and processes (`None` until `up` has written it).
pub fn read_up_state(data_dir: &Path) -> Option<(String, Vec<Proc>)> {
    let text = std::fs::read_to_string(data_dir.join("up.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let phase = v["phase"].as_str()?.to_string();
    let procs = v["processes"]
        .as_array()?
        .iter()
        .filter_map(|p| {
            Some(Proc {
                name: p["name"].as_str()?.to_string(),
                kind: p["kind"].as_str()?.to_string(),
                pid: p["pid"].as_u64().and_then(|x| u32::try_from(x).ok()),
                port: u16::try_from(p["port"].as_u64()?).ok()?,
            })
        })
        .collect();
    Some((phase, procs))
}

/// Sum of a metric's series in Prometheus text (`name{…} value` or `name value`).
pub fn metric_values(text: &str, name: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect()
}

/// CPU of every process seen under one name (a restarted child has a new pid): per pid the
/// ticks when the window opened (0 for a pid first seen inside it: all its CPU is the
/// window's) and the latest reading.
#[derive(Debug, Default, Clone)]
pub struct CpuBook {
    /// name → pid → (ticks when the window opened, latest ticks, seen inside the window).
    by_name: BTreeMap<String, BTreeMap<u32, (u64, u64, bool)>>,
}

impl CpuBook {
    /// A reading; `in_window` false while the window has not opened (baselines move along).
    pub fn observe(&mut self, name: &str, pid: u32, ticks: u64, in_window: bool) {
        let pids = self.by_name.entry(name.to_string()).or_default();
        match pids.get_mut(&pid) {
            None if in_window => {
                // Born inside the window: all its CPU is the window's.
                pids.insert(pid, (0, ticks, true));
            }
            None => {
                pids.insert(pid, (ticks, ticks, false));
            }
            Some(e) if !e.2 => {
                // The reading that opens the window is its baseline.
                *e = (ticks, ticks, in_window);
            }
            Some(e) => e.1 = ticks,
        }
    }

    /// CPU milliseconds inside the window, per name.
    pub fn window_ms(&self) -> BTreeMap<String, f64> {
        self.by_name
            .iter()
            .map(|(n, pids)| {
                let ticks: u64 = pids.values().map(|(a, b, _)| b.saturating_sub(*a)).sum();
                (n.clone(), ticks as f64 * 1_000.0 / USER_HZ as f64)
            })
            .collect()
    }
}

/// The readings of one step, gathered every second while `up` runs.
#[derive(Debug, Default, Clone)]
pub struct Readings {
    /// When every gatherer had routed a first message (wall clock µs, monotonic instant).
    pub window_start: Option<(TimestampUs, Instant, u64)>,
    /// The last reading while `up` was still `running` (before its drain).
    pub window_end: Option<(TimestampUs, Instant, u64)>,
    /// The deduplicator's worst `dedup_sync_lag_seconds` at each reading in the window.
    pub lags: Vec<f64>,
    pub cpu: CpuBook,
    /// Restarts `up` reported (a crashed child makes the step's figures doubtful).
    pub restarts: u64,
}

impl Readings {
    /// Messages the exchange published inside the window, and the window's length.
    pub fn published(&self) -> Option<(u64, Duration)> {
        let (_, t0, p0) = self.window_start?;
        let (_, t1, p1) = self.window_end?;
        (t1 > t0).then(|| (p1.saturating_sub(p0), t1 - t0))
    }
}

/// One reading: `up.json`, then each process.
pub async fn read_once(
    http: &reqwest::Client,
    pg: Option<&tokio_postgres::Client>,
    db_name: &str,
    data_dir: &Path,
    r: &mut Readings,
) {
    let Some((phase, procs)) = read_up_state(data_dir) else {
        return;
    };
    let running = phase == "running";
    let mut published = None;
    let mut routed_all = true;
    let mut lag: Option<f64> = None;
    for p in &procs {
        let base = format!("http://127.0.0.1:{}", p.port);
        match p.kind.as_str() {
            "sim" => {
                if let Some(v) = get_json(http, &format!("{base}/_sim/stats")).await {
                    published = v["published"]
                        .as_object()
                        .map(|m| m.values().filter_map(serde_json::Value::as_u64).sum());
                }
            }
            "gatherer" => {
                let routed = get_text(http, &format!("{base}/metrics")).await.map(|m| {
                    metric_values(&m, "router_messages_total")
                        .iter()
                        .sum::<f64>()
                });
                routed_all &= routed.is_some_and(|n| n > 0.0);
            }
            "dedup" => {
                if let Some(m) = get_text(http, &format!("{base}/metrics")).await {
                    let v = metric_values(&m, "dedup_sync_lag_seconds");
                    if !v.is_empty() {
                        lag = Some(v.into_iter().fold(0.0, f64::max));
                    }
                }
            }
            _ => {}
        }
    }
    let now = (TimestampUs::now(), Instant::now());
    let open = running && r.window_start.is_some();
    if running
        && r.window_start.is_none()
        && routed_all
        && let Some(p) = published
    {
        r.window_start = Some((now.0, now.1, p));
    }
    let in_window = running && r.window_start.is_some();
    for p in &procs {
        if let Some(pid) = p.pid
            && let Some(t) = proc_ticks(pid)
        {
            r.cpu.observe(&p.name, pid, t, in_window);
        }
    }
    if let Some(pg) = pg {
        let rows = pg
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1",
                &[&db_name],
            )
            .await
            .unwrap_or_default();
        for row in rows {
            if let Ok(pid) = row.try_get::<_, i32>(0)
                && let Ok(pid) = u32::try_from(pid)
                && let Some(t) = proc_ticks(pid)
            {
                r.cpu.observe("postgres", pid, t, in_window);
            }
        }
    }
    if open {
        if let Some(p) = published {
            r.window_end = Some((now.0, now.1, p));
        }
        if let Some(l) = lag {
            r.lags.push(l);
        }
    }
}

async fn get_text(http: &reqwest::Client, url: &str) -> Option<String> {
    http.get(url).send().await.ok()?.text().await.ok()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

/// A PostgreSQL snapshot (`pg_current_snapshot()`): every transaction below `xmin` has
/// ended, none from `xmax` on has, and between them those in `xip` were still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub xmin: u64,
    pub xmax: u64,
    pub xip: BTreeSet<u64>,
}

impl Snapshot {
    /// `"xmin:xmax:xip,xip,…"`.
    pub fn parse(s: &str) -> Option<Snapshot> {
        let mut it = s.trim().splitn(3, ':');
        let xmin = it.next()?.parse().ok()?;
        let xmax = it.next()?.parse().ok()?;
        let xip = match it.next() {
            Some("") | None => BTreeSet::new(),
            Some(list) => list
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?,
        };
        Some(Snapshot { xmin, xmax, xip })
    }

    /// True when transaction `xid` (full 64-bit id) had ended when this was taken.
    pub fn ended(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.xip.contains(&xid))
    }

    /// The 64-bit id of a row's 32-bit `xmin`, in this snapshot's epoch (a run is far shorter
    /// than the 2³² transactions of one epoch).
    pub fn widen(&self, xid32: u32) -> u64 {
        let epoch = self.xmax & !0xFFFF_FFFF;
        let x = epoch | u64::from(xid32);
        if x > self.xmax && x >= 1 << 32 {
            x - (1 << 32)
        } else {
            x
        }
    }
}

/// For each `(xmin32, exchange_ts µs)`, milliseconds from its exchange time to the first
/// snapshot (`(taken at µs, snapshot)`, in time order) in which its transaction had ended.
pub fn commit_latencies(rows: &[(u32, i64)], timeline: &[(i64, Snapshot)]) -> Vec<f64> {
    let Some((_, last)) = timeline.last() else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|&(x32, ts)| {
            let xid = last.widen(x32);
            // Snapshots' xmax only grows: start at the first one that could show it ended.
            let from = timeline.partition_point(|(_, s)| s.xmax <= xid);
            timeline[from..]
                .iter()
                .find(|(_, s)| s.ended(xid))
                .map(|(t, _)| (t - ts) as f64 / 1_000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_text_parses_and_answers_which_transactions_ended() -> Result<(), String> {
        let s = Snapshot::parse("100:105:101,103").ok_or("parse")?;
        assert!(s.ended(99) && s.ended(100) && s.ended(102) && s.ended(104));
        assert!(!s.ended(101) && !s.ended(103) && !s.ended(105));
        assert_eq!(Snapshot::parse("7:7:").map(|s| s.xip.len()), Some(0));
        assert!(Snapshot::parse("x:1:").is_none());
        Ok(())
    }

    #[test]
    fn latency_is_the_first_snapshot_after_the_commit() -> Result<(), String> {
        let snap = |t: &str| Snapshot::parse(t).ok_or("parse");
        let timeline = vec![
            (1_000, snap("10:12:10,11")?),
            (2_000, snap("11:13:11")?),
            (3_000, snap("13:13:")?),
        ];
        let rows = vec![(10, 500), (11, 500), (12, 0), (20, 0)];
        assert_eq!(commit_latencies(&rows, &timeline), vec![1.5, 2.5, 2.0]);
        Ok(())
    }

    #[test]
    fn cpu_counts_only_the_window_and_every_pid_of_a_name() {
        let mut c = CpuBook::default();
        c.observe("g", 1, 50, false);
        c.observe("g", 1, 60, true);
        c.observe("g", 1, 90, true);
        c.observe("g", 2, 7, true); // restarted inside the window
        assert_eq!(c.window_ms().get("g"), Some(&370.0));
    }

    #[test]
    fn proc_stat_of_this_process_reads() {
        assert!(proc_ticks(std::process::id()).is_some());
        let m = "a_total{x=\"1\"} 2\na_total{x=\"2\"} 3\na_totalx 9\na_total 1\n";
        assert_eq!(metric_values(m, "a_total"), vec![2.0, 3.0, 1.0]);
    }
}
