//! Shared machinery of the reliability scenarios: `kalshi-data up` as a child process (through
//! `kd_testkit::up`, which reads its `up.json` and probes `/health` and `/metrics`), what each
//! gatherer captured, `verify` run and parsed, and one line of figures per scenario.
//!
//! Everything is synchronous (std threads and sockets): a scenario is a script of real
//! processes, and the probes are plain HTTP/1.0 GETs on loopback.

#![allow(dead_code)] // each scenario uses part of this module

pub mod mangle;

pub use kd_testkit::process::signal;
pub use kd_testkit::up::{GATHERERS, LagMonitor, Up, UpOpts};
pub use kd_testkit::wait::wait_for;
pub use kd_testkit::{http, prom, tmpfs};

use kd_core::Record;
use kd_core::records::Identity;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Microseconds since the Unix epoch: the simulator stamps exchange time from this clock.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `kalshi-data up` of this build on `dir` (see [`Up::start`]).
pub fn start_up(dir: &Path, o: &UpOpts) -> Res<Up> {
    Ok(Up::start(Path::new(BIN), dir, o)?)
}

/// An outage of every gatherer: when it began, and each gatherer's delta head before it.
pub struct Outage {
    /// Exchange-clock microseconds when the gatherers were frozen.
    pub stopped_us: i64,
    /// When they were killed (after the freeze).
    pub killed_us: i64,
    pub killed: std::time::Instant,
    /// Each gatherer's stored-delta head just before the freeze, in [`GATHERERS`] order.
    pub heads: Vec<u64>,
}

/// Freezes every gatherer (SIGSTOP) for `frozen` — a fixed outage by design — then kills them
/// (SIGKILL); `up` restarts them.
pub fn freeze_then_kill_all(up: &Up, frozen: Duration) -> Res<Outage> {
    let heads: Vec<u64> = GATHERERS
        .iter()
        .map(|g| up.deltas_head(g).unwrap_or(0))
        .collect();
    let stopped_us = now_us();
    let pids: Vec<u32> = GATHERERS
        .iter()
        .map(|g| up.signal(g, "STOP"))
        .collect::<kd_testkit::Result<_>>()?;
    std::thread::sleep(frozen);
    let killed_us = now_us();
    for pid in &pids {
        signal(*pid, "KILL")?;
    }
    Ok(Outage {
        stopped_us,
        killed_us,
        killed: std::time::Instant::now(),
        heads,
    })
}

/// Rows stored by each gatherer of `up` (every data table, not gap records).
pub fn captured(up: &Up) -> Vec<(String, u64)> {
    GATHERERS
        .iter()
        .map(|g| {
            let path = up.dir.join(g).join("store.sqlite");
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

/// When the exchange sent a record of the truth: a lifecycle record's own time is the event's
/// (a `created` carries the market's future open time); the truth keeps the send time in
/// `received_at`.
pub fn sent_at(record: &kd_core::Record) -> i64 {
    match record {
        kd_core::Record::Lifecycle(l) => l.received_at.micros(),
        other => other.exchange_ts().micros(),
    }
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
    production_identities_of(url, false)
}

/// Identities of every row in production, gap records included.
pub fn production_identities_with_gaps(url: &str) -> Res<HashSet<Identity>> {
    production_identities_of(url, true)
}

fn production_identities_of(url: &str, gaps: bool) -> Res<HashSet<Identity>> {
    let data = runtime()?.block_on(kd_ops::production::load(
        url,
        &kd_core::Table::ALL,
        kd_core::TimestampUs::from_micros(0),
        kd_core::TimestampUs::from_micros(i64::MAX - 2),
    ))?;
    let gap_records = gaps
        .then(|| data.gaps.iter().cloned().map(kd_core::Record::Gap))
        .into_iter()
        .flatten();
    Ok(data
        .records()
        .chain(gap_records)
        .map(|r| r.identity())
        .collect())
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
            captured: captured(up),
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
