//! Today's lifecycle, end to end: `kalshi-data up` (simulator, 3 gatherers, deduplicator,
//! exporter) with one exchange behaviour of issue 16 switched on, then `verify` against the
//! ground truth must print `verify: OK` (books included), plus what `verify` cannot see alone:
//!
//! - repeated toggles: several markets paused and resumed twice within ~10 s; production holds
//!   every one of those changes (two toggles in a minute are two rows, three gatherers' copies one);
//! - combo markets created while running, announced only on `multivariate_market_lifecycle`:
//!   each is subscribed within 2 s of its `created` message (its first WebSocket snapshot in
//!   production vs the truth's listing time) and no delta of it later than that reached nobody;
//! - `event_fee_update`: every one stored, as a lifecycle record of its event.

use crate::reliability_support::BIN;
use kd_testkit::process;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// How long after its `created` message a combo market must be subscribed (issue 16).
const SUBSCRIBE_WITHIN_US: i64 = 2_000_000;

/// `up --duration 25 --markets 40` with `sim_args` passed through, then `verify`; returns the
/// data directory (inside `tmp`) and verify's output.
fn up_and_verify(tmp: &Path, name: &str, sim_args: &[&str]) -> Res<(PathBuf, String)> {
    let dir = tmp.join(name);
    let log = dir.with_extension("up.log");
    let mut cmd = Command::new(BIN);
    cmd.args(["up", "--plain", "--duration", "25", "--markets", "40"])
        .args(["--rate", "400", "--data-dir"])
        .arg(&dir);
    for a in sim_args {
        cmd.arg(format!("--sim-arg={a}"));
    }
    let mut child = process::spawn_logged(&mut cmd, &log)?;
    let status = process::wait_exit(&mut child, Duration::from_secs(240))?;
    let up_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "up failed: {status}\n{up_log}");
    let out = Command::new(BIN)
        .args(["verify", "--truth"])
        .arg(dir.join("truth.jsonl"))
        .arg("--production")
        .arg(production_url(&dir))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{name}:\n{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verify: OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("books"), "the book check did not run: {text}");
    Ok((dir, text))
}

fn production_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("production.db").display())
}

fn truth_lines(dir: &Path) -> Res<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(dir.join("truth.jsonl"))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Production's lifecycle rows as (subject, kind, event_type, exchange_ts).
fn lifecycle_rows(dir: &Path) -> Res<Vec<(String, String, String, i64)>> {
    let db = rusqlite::Connection::open(dir.join("production.db"))?;
    let mut stmt = db.prepare(
        "SELECT subject, kind, event_type, exchange_ts FROM lifecycle ORDER BY exchange_ts",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The record of a truth `published` line when it is of `table` (`lifecycle`, `delta`, …).
fn record_of<'a>(line: &'a serde_json::Value, table: &str) -> Option<&'a serde_json::Value> {
    (line["kind"] == "published" && line["record"]["table"] == table)
        .then(|| &line["record"]["record"])
}

/// The truth's lifecycle records (sent while anyone could hear: `delivered`), as
/// (subject, kind, event_type, send time).
fn truth_lifecycle(lines: &[serde_json::Value]) -> Vec<(String, String, String, i64)> {
    lines
        .iter()
        .filter(|l| l["delivered"] == true)
        .filter_map(|l| {
            let r = record_of(l, "lifecycle")?;
            Some((
                r["subject"].as_str()?.to_string(),
                r["kind"].as_str()?.to_string(),
                r["event_type"].as_str()?.to_string(),
                r["received_at"].as_i64()?,
            ))
        })
        .collect()
}

#[test]
fn repeated_toggles_within_a_minute_are_each_stored() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let (dir, _) = up_and_verify(tmp.path(), "toggles", &["--lifecycle-toggles", "12"])?;
    // Pause/resume changes per market, in the truth and in production.
    let is_toggle = |e: &str| e == "activated" || e == "deactivated";
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for (subject, _, e, _) in truth_lifecycle(&truth_lines(&dir)?) {
        if is_toggle(&e) {
            *sent.entry(subject).or_default() += 1;
        }
    }
    let mut stored: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (subject, _, e, ts) in lifecycle_rows(&dir)? {
        if is_toggle(&e) {
            stored.entry(subject).or_default().push(ts);
        }
    }
    // The burst the issue describes: four changes of one market within one minute.
    let bursts = stored
        .values()
        .filter(|ts| ts.windows(4).any(|w| w[3] - w[0] < 60_000_000))
        .count();
    let counts: BTreeMap<&String, usize> = stored.iter().map(|(k, v)| (k, v.len())).collect();
    assert!(
        bursts >= 2,
        "no market toggled 4 times in a minute: {counts:?}"
    );
    for (subject, n) in &sent {
        assert_eq!(
            counts.get(subject).copied().unwrap_or(0),
            *n,
            "{subject}: truth sent {n} pause/resume changes"
        );
    }
    println!(
        "toggles: {} markets with 4 changes in a minute; {} pause/resume changes sent, {} rows",
        bursts,
        sent.values().sum::<usize>(),
        counts.values().sum::<usize>()
    );
    Ok(())
}

#[test]
fn combo_markets_created_while_running_are_subscribed_within_2s() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let (dir, _) = up_and_verify(
        tmp.path(),
        "combo",
        &["--combo-markets", "4", "--combo-create-every", "3s"],
    )?;
    let lines = truth_lines(&dir)?;
    // Combo markets announced on multivariate_market_lifecycle while running.
    let announced: HashMap<String, i64> = lines
        .iter()
        .filter(|l| {
            l["kind"] == "market"
                && l["combo"] == true
                && l["announced"] == "multivariate_market_lifecycle"
        })
        .filter_map(|l| Some((l["ticker"].as_str()?.to_string(), l["listed_at"].as_i64()?)))
        .collect();
    assert!(
        announced.len() >= 4,
        "only {} combo markets created while running",
        announced.len()
    );
    let db = rusqlite::Connection::open(dir.join("production.db"))?;
    let mut first_snapshot = db.prepare(
        "SELECT min(exchange_ts) FROM orderbook_snapshots WHERE ticker = ?1 AND source = 'ws'",
    )?;
    let mut worst = 0i64;
    for (ticker, listed_at) in &announced {
        let first: Option<i64> = first_snapshot.query_row([ticker], |r| r.get(0))?;
        let Some(first) = first else {
            panic!("{ticker} (listed at {listed_at}) never subscribed");
        };
        let delay = first - listed_at;
        worst = worst.max(delay);
        assert!(
            delay <= SUBSCRIBE_WITHIN_US,
            "{ticker} subscribed {delay} µs after its created message"
        );
    }
    // Deltas of those markets that reached no subscriber after the allowance: none.
    let mut late_unseen = 0;
    let mut early_unseen = 0;
    for l in &lines {
        let Some(d) = record_of(l, "delta") else {
            continue;
        };
        let (Some(t), Some(ts)) = (d["ticker"].as_str(), d["exchange_ts"].as_i64()) else {
            continue;
        };
        if let Some(listed_at) = announced.get(t)
            && l["delivered"] == false
        {
            if ts > listed_at + SUBSCRIBE_WITHIN_US {
                late_unseen += 1;
            } else {
                early_unseen += 1;
            }
        }
    }
    assert_eq!(late_unseen, 0, "deltas of combo markets sent to nobody");
    // Their lifecycle is stored under its own kind.
    let mve_rows = lifecycle_rows(&dir)?
        .into_iter()
        .filter(|r| r.1 == "multivariate_market_lifecycle" && announced.contains_key(&r.0))
        .count();
    assert!(
        mve_rows >= announced.len(),
        "{mve_rows} multivariate lifecycle rows"
    );
    println!(
        "combo: {} combo markets created while running, slowest subscribed {:.3} s after its \
         created message; {early_unseen} deltas inside the 2 s allowance reached nobody, 0 after; \
         {mve_rows} multivariate lifecycle rows",
        announced.len(),
        worst as f64 / 1e6
    );
    Ok(())
}

#[test]
fn event_fee_updates_are_stored() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let (dir, _) = up_and_verify(tmp.path(), "fees", &["--fee-update-every", "2s"])?;
    let sent = truth_lifecycle(&truth_lines(&dir)?)
        .into_iter()
        .filter(|r| r.1 == "event_fee_update")
        .count();
    let stored = lifecycle_rows(&dir)?
        .into_iter()
        .filter(|r| r.1 == "event_fee_update" && r.2 == "event_fee_update")
        .count();
    assert!(sent >= 5, "only {sent} fee updates sent");
    assert_eq!(stored, sent, "fee updates stored vs sent");
    println!("fees: {sent} event_fee_update messages sent, {stored} rows");
    Ok(())
}
