//! Today's REST books (issue 16 item 1): the simulator serves REST order books from an edge
//! cache up to 2 s old (`--rest-book-cache-ms 2000`, as WIRE.md says Kalshi's edge does) and
//! the gatherers poll them every minute. Stored REST snapshots are stamped at receipt, after
//! the instant they show; the rebuild must not take them as a base. `verify` (books included,
//! with check points after the first REST snapshots) says OK, and `kalshi-data book` shows no
//! level that "would have gone negative", every REST snapshot agreeing with the rebuilt book.

use kd_testkit::process;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
/// Long enough for one poll cycle after the first minute and check points (every 10 s) after it.
const DURATION_SECS: &str = "80";

fn run(cmd: &mut Command) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// `books=OK/EXPECTED` of verify's last line.
fn books_figure(line: &str) -> Option<(u64, u64)> {
    let figure = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("books="))?;
    let (ok, expected) = figure.split_once('/')?;
    Some((ok.parse().ok()?, expected.parse().ok()?))
}

#[test]
fn stale_rest_books_leave_every_rebuilt_book_right() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let log = dir.with_extension("up.log");
    let mut up = process::spawn_logged(
        Command::new(BIN)
            .args(["up", "--plain", "--duration", DURATION_SECS])
            .args(["--markets", "20", "--rate", "300"])
            .args(["--sim-arg=--rest-book-cache-ms", "--sim-arg=2000"])
            .args(["--gatherer-setting", "snapshot_poll_interval_mins = 1"])
            .arg("--data-dir")
            .arg(&dir),
        &log,
    )?;
    let status = process::wait_exit(&mut up, Duration::from_secs(300))?;
    let up_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "up failed: {status}\n{up_log}");

    // The scenario happened: REST snapshots were stored, and the truth has check points after
    // the first of them.
    let db = rusqlite::Connection::open(dir.join("production.db"))?;
    let (rest, first_rest): (i64, Option<i64>) = db.query_row(
        "SELECT COUNT(*), MIN(exchange_ts) FROM orderbook_snapshots WHERE source = 'rest'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let first_rest = first_rest.ok_or("no REST snapshot was stored")?;
    let truth = dir.join("truth.jsonl");
    let points: Vec<serde_json::Value> = std::fs::read_to_string(&truth)?
        .lines()
        .filter(|l| l.contains("\"kind\":\"book\""))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let after: Vec<&serde_json::Value> = points
        .iter()
        .filter(|p| p["ts"].as_i64().is_some_and(|ts| ts > first_rest))
        .collect();
    println!(
        "{rest} REST snapshots stored; {} of {} check points after the first",
        after.len(),
        points.len()
    );
    assert!(!after.is_empty(), "no book check point after {first_rest}");

    let production = format!("sqlite://{}", dir.join("production.db").display());
    let (ok, text) = run(Command::new(BIN)
        .args(["verify", "--truth"])
        .arg(&truth)
        .args(["--production", &production]))?;
    println!("{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(ok && last.starts_with("verify: OK"), "{text}");
    let (books_ok, books_expected) = books_figure(last).ok_or("no books= figure")?;
    assert!(
        books_ok == books_expected && books_expected >= after.len() as u64,
        "{last}"
    );

    // `book` on a few markets that have REST snapshots, at the last check point after them.
    let mut tickers = db.prepare(
        "SELECT DISTINCT ticker FROM orderbook_snapshots WHERE source = 'rest' ORDER BY ticker LIMIT 5",
    )?;
    let tickers: Vec<String> = tickers
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let last_point = after.iter().filter_map(|p| p["ts"].as_i64()).max();
    let at = last_point.ok_or("no check point time")?.to_string();
    for ticker in &tickers {
        let (ok, text) = run(Command::new(BIN)
            .args(["book", "--production", &production])
            .args(["--ticker", ticker, "--at", &at]))?;
        println!("{text}");
        assert!(ok, "{text}");
        assert!(text.contains("from ws snapshot"), "{text}");
        assert!(!text.contains("would have gone negative"), "{text}");
        assert!(text.contains(" 0 disagreed"), "{text}");
        assert!(!text.contains("REST snapshots: 0 agreed"), "{text}");
    }
    assert!(!tickers.is_empty());
    Ok(())
}
