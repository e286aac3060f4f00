//! End to end: `kalshi-data up --duration` twice on one data directory (the second run resumes
//! the same exchange and appends to the same truth), `status --json` during the first run
//! showing 3 healthy gatherers, `verify` against the ground truth at the end, and `book` equal
//! to the simulator's own book at 100 random (market, time) check points of that truth.
//!
//! Each run: simulator, 3 gatherers, deduplicator and exporter as separate processes on
//! loopback, SQLite production and a folder archive under a temp dir.

use kd_testkit::process;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");

fn up(dir: &Path, run: u32) -> kd_testkit::Result<std::process::Child> {
    process::spawn_logged(
        Command::new(BIN)
            .args([
                "up",
                "--duration",
                "20",
                "--markets",
                "50",
                "--rate",
                "500",
                "--plain",
                "--data-dir",
            ])
            .arg(dir),
        &dir.with_extension(format!("up{run}.log")),
    )
}

/// Polls `status --json` until it shows `want` healthy gatherers (or the deadline passes).
fn wait_healthy(dir: &Path, want: usize, limit: Duration) -> Result<serde_json::Value, String> {
    let end = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < end {
        let out = Command::new(BIN)
            .args(["status", "--json", "--data-dir"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&last) {
            let gatherers = doc["gatherers"].as_array().cloned().unwrap_or_default();
            let healthy = gatherers
                .iter()
                .filter(|g| g["healthy"] == true && g["pid"].is_u64())
                .count();
            if gatherers.len() == want && healthy == want {
                return Ok(doc);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "status never showed {want} healthy gatherers; last: {last}"
    ))
}

fn log_of(dir: &Path, run: u32) -> String {
    std::fs::read_to_string(dir.with_extension(format!("up{run}.log"))).unwrap_or_default()
}

#[test]
fn up_twice_resumes_and_verifies() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");

    let mut first = up(&dir, 1)?;
    let doc = wait_healthy(&dir, 3, Duration::from_secs(60));
    let status = process::wait_exit(&mut first, Duration::from_secs(240))?;
    let doc = doc.map_err(|e| format!("{e}\n{}", log_of(&dir, 1)))?;
    assert_eq!(doc["gatherers"].as_array().map(Vec::len), Some(3), "{doc}");
    assert!(
        status.success(),
        "first up failed: {status}\n{}",
        log_of(&dir, 1)
    );
    let truth = dir.join("truth.jsonl");
    let lines_after_first = std::fs::read_to_string(&truth)?.lines().count();

    let mut second = up(&dir, 2)?;
    let status = process::wait_exit(&mut second, Duration::from_secs(240))?;
    assert!(
        status.success(),
        "second up failed: {status}\n{}",
        log_of(&dir, 2)
    );
    let lines_after_second = std::fs::read_to_string(&truth)?.lines().count();
    assert!(
        lines_after_second > lines_after_first,
        "the second run appended nothing to the truth"
    );
    assert!(log_of(&dir, 2).contains("drained"), "{}", log_of(&dir, 2));

    let out = Command::new(BIN)
        .args(["verify", "--truth"])
        .arg(&truth)
        .arg("--production")
        .arg(format!("sqlite://{}", dir.join("production.db").display()))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verify: OK trades="),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    book_equals_truth_at_random_check_points(&dir, &truth, 100)?;
    Ok(())
}

/// Levels of one side as (price units, size hundredths), sorted by price.
type Levels = Vec<(i64, i64)>;

fn truth_levels(side: &serde_json::Value) -> Levels {
    let mut v: Levels = side
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["price"].as_i64()?, l["size"].as_i64()?)))
        .filter(|&(_, size)| size != 0)
        .collect();
    v.sort_unstable();
    v
}

fn book_levels(side: &serde_json::Value) -> Result<Levels, Box<dyn std::error::Error>> {
    let mut v = Levels::new();
    for l in side.as_array().into_iter().flatten() {
        let price = kd_core::Price::parse_dollars(l["price"].as_str().unwrap_or_default())?;
        let size = kd_core::Count::parse_fp(l["size"].as_str().unwrap_or_default())?;
        v.push((price.units(), size.hundredths()));
    }
    v.sort_unstable();
    Ok(v)
}

/// `kalshi-data book` at `n` check points of the simulator's ground truth, picked at random
/// (a fixed-seed generator, so a failure reproduces), each equal to the book the simulator
/// held at that instant.
fn book_equals_truth_at_random_check_points(
    dir: &Path,
    truth: &Path,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let books: Vec<serde_json::Value> = std::fs::read_to_string(truth)?
        .lines()
        .filter(|l| l.contains("\"kind\":\"book\""))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(
        books.len() >= n,
        "only {} check points in the truth",
        books.len()
    );
    let production = format!("sqlite://{}", dir.join("production.db").display());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        // xorshift64: uniform enough to spread the picks over markets and time.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let want = &books[(state % books.len() as u64) as usize];
        let ticker = want["ticker"].as_str().unwrap_or_default();
        let at = want["ts"].as_i64().unwrap_or_default().to_string();
        let out = Command::new(BIN)
            .args([
                "book",
                "--json",
                "--depth",
                "100000",
                "--production",
                &production,
            ])
            .args(["--ticker", ticker, "--at", &at])
            .output()?;
        assert!(
            out.status.success(),
            "book {ticker} at {at}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        for side in ["yes", "no"] {
            assert_eq!(
                book_levels(&got[side])?,
                truth_levels(&want[side]),
                "pick {i}: {side} side of {ticker} at {at}"
            );
        }
    }
    println!("book: {n}/{n} random check points equal the simulator's book");
    Ok(())
}

fn verify(dir: &Path) -> std::io::Result<(bool, String)> {
    verify_from(dir, None)
}

fn verify_from(dir: &Path, from: Option<i64>) -> std::io::Result<(bool, String)> {
    let mut cmd = Command::new(BIN);
    if let Some(from) = from {
        cmd.args(["verify", "--from", &from.to_string()]);
    } else {
        cmd.arg("verify");
    }
    let out = cmd
        .arg("--truth")
        .arg(dir.join("truth.jsonl"))
        .arg("--production")
        .arg(format!("sqlite://{}", dir.join("production.db").display()))
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// A checker that cannot fail proves nothing: damage a real production database (from a
/// real run of the whole platform) and `verify` must fail, naming the damaged records.
#[test]
fn verify_names_rows_deleted_from_or_duplicated_in_production()
-> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let mut run = Command::new(BIN)
        .args([
            "up",
            "--duration",
            "8",
            "--markets",
            "20",
            "--rate",
            "300",
            "--plain",
            "--data-dir",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.with_extension("log"))?)
        .spawn()?;
    let status = process::wait_exit(&mut run, Duration::from_secs(180))?;
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    assert!(status.success(), "{log}");
    let (_, baseline) = verify(&dir)?;
    let db = rusqlite::Connection::open(dir.join("production.db"))?;

    // A trade verify counted as present: delete it. The window starts at its time so it is
    // the first trade checked, named even if other problems exist.
    let (trade_id, trade_ts): (String, i64) = db.query_row(
        "SELECT trade_id, exchange_ts FROM trades ORDER BY exchange_ts LIMIT 1 OFFSET 5",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert!(
        !baseline.contains(&trade_id),
        "baseline already names {trade_id}:\n{baseline}"
    );
    db.execute("DELETE FROM trades WHERE trade_id = ?1", [&trade_id])?;
    let (ok, text) = verify_from(&dir, Some(trade_ts))?;
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("trades missing: trade {trade_id}")),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .starts_with("verify: FAIL trades="),
        "{text}"
    );

    // Duplicate a delta. Production's UNIQUE constraint forbids it, so rebuild the table
    // without it first (a store that lost its constraint is exactly what verify must catch).
    db.execute_batch(
        "CREATE TABLE deltas_copy AS SELECT * FROM orderbook_deltas;
         DROP TABLE orderbook_deltas;
         ALTER TABLE deltas_copy RENAME TO orderbook_deltas;
         INSERT INTO orderbook_deltas SELECT * FROM orderbook_deltas WHERE rowid = 7;",
    )?;
    let (ticker, ts): (String, i64) = db.query_row(
        "SELECT ticker, exchange_ts FROM orderbook_deltas WHERE rowid = 7",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let ts = kd_core::TimestampUs::from_micros(ts);
    let (ok, text) = verify(&dir)?;
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("deltas duplicated: delta {ticker} {ts}")),
        "{text}"
    );
    assert!(text.contains(" ×2"), "{text}");
    Ok(())
}
