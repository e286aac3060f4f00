//! `kalshi-data audit` against the simulator, compared with `verify`'s ground truth (issue 19):
//! - a clean run (ended by Ctrl-C): no possible loss, no book mismatch, exit 0;
//! - every gatherer frozen 12 s then killed (`up` restarts them; Ctrl-C once each restarted
//!   one has recorded its downtime): a possible-loss window
//!   covering the freeze, every record absent from production (by the truth) inside a reported
//!   window of its market, exit 1; its `--html` page loaded in headless Chromium renders with
//!   no console error, and a screenshot is kept under `target/test-artifacts/audit-{clean,frozen}.png`.

use crate::reliability_support::*;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const READY: Duration = Duration::from_secs(90);
const EXIT: Duration = Duration::from_secs(360);

/// Runs `audit --json` (and `--html` when given); returns its exit code and document.
fn audit(production: &str, html: Option<&Path>) -> Res<(i32, serde_json::Value, String)> {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "--json", "--production", production]);
    if let Some(h) = html {
        cmd.arg("--html").arg(h);
    }
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "audit --json: {e}\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), doc, text))
}

/// Waits until every gatherer is subscribed and has stored 2,500 more deltas (about 10 s at
/// the default rate: a few snapshots per market to check the books against).
fn capture_a_while(up: &Up) -> Res<()> {
    up.wait_ready(READY)?;
    for g in GATHERERS {
        up.wait_subscribed(g, READY)?;
    }
    capture(up, 2_500)
}

/// Waits until every gatherer has stored `deltas` more deltas than now.
fn capture(up: &Up, deltas: u64) -> Res<()> {
    let heads: Vec<u64> = GATHERERS
        .iter()
        .map(|g| up.deltas_head(g).unwrap_or(0))
        .collect();
    for (g, head) in GATHERERS.iter().zip(heads) {
        up.wait_deltas_above(g, head + deltas, READY)?;
    }
    Ok(())
}

/// Whether the gatherer store in `dir` holds a `downtime` gap that began before `before_us`.
fn downtime_recorded(dir: &Path, before_us: i64) -> bool {
    let Ok(pool) = kd_gatherer::store::ReadPool::new(dir) else {
        return false;
    };
    let mut after = 0;
    while let Ok(page) = pool.pull(kd_core::Table::Gaps, after, 1_000) {
        let Some(last) = page.last() else { break };
        after = last.seq;
        if page.iter().any(|row| {
            matches!(&row.record, kd_core::Record::Gap(g)
                if g.reason == "downtime" && g.start.micros() <= before_us)
        }) {
            return true;
        }
    }
    false
}

fn us(v: &serde_json::Value) -> i64 {
    v.as_str()
        .and_then(|s| kd_core::TimestampUs::parse_rfc3339(s).ok())
        .map_or(i64::MIN, kd_core::TimestampUs::micros)
}

#[test]
fn audit_of_a_clean_run_finds_nothing() -> Res<()> {
    let tmp = tempfile::Builder::new()
        .prefix("kd-audit-clean-")
        .tempdir()?;
    // Ended by Ctrl-C once every gatherer has captured a while, not by a fixed duration: under
    // the suite's load the start-up alone can take most of one.
    let o = UpOpts {
        duration: 3_600,
        ..UpOpts::default()
    };
    let mut up = start_up(&tmp.path().join("data"), &o)?;
    capture_a_while(&up)?;
    up.signal_up("INT")?;
    up.wait_exit(EXIT)?;
    verify(&up.dir, &up.production)?.assert_ok()?;
    let html = tmp.path().join("audit.html");
    let (code, doc, text) = audit(&up.production, Some(&html))?;
    eprintln!(
        "audit clean: verdict={} continuity={} redundancy={}",
        doc["verdict"], doc["book_continuity"], doc["redundancy"]
    );
    assert_eq!(
        doc["possible_loss"].as_array().map(Vec::len),
        Some(0),
        "{text}"
    );
    assert_eq!(doc["book_continuity"]["mismatched"], 0, "{text}");
    assert!(
        doc["book_continuity"]["checked"].as_u64().unwrap_or(0) > 0,
        "{text}"
    );
    assert_eq!(doc["verdict"], "OK", "{text}");
    assert_eq!(code, 0, "{text}");
    html_renders(&html, "audit-clean")
}

#[test]
fn audit_reports_the_window_no_gatherer_covered() -> Res<()> {
    let tmp = tempfile::Builder::new()
        .prefix("kd-audit-frozen-")
        .tempdir()?;
    // Ended by Ctrl-C once every restarted gatherer has recorded its downtime (a fixed
    // duration could end while they were still frozen, before any gap said so).
    let o = UpOpts {
        duration: 3_600,
        ..UpOpts::default()
    };
    let mut up = start_up(&tmp.path().join("data"), &o)?;
    up.wait_ready(READY)?;
    for g in GATHERERS {
        up.wait_subscribed(g, READY)?;
    }
    // Some capture on either side of the outage, so the page shows it between covered time.
    capture(&up, 500)?;
    let pids: Vec<u32> = GATHERERS.iter().filter_map(|g| up.pid(g)).collect();
    assert_eq!(pids.len(), GATHERERS.len(), "a gatherer without a pid");
    let outage = freeze_then_kill_all(&up, Duration::from_secs(12))?;
    for (g, old) in GATHERERS.iter().zip(pids) {
        up.wait_restarted(g, old, READY)?;
        wait_for(READY, &format!("{g} to record its downtime"), || {
            downtime_recorded(&up.dir.join(g), outage.killed_us).then_some(())
        })?;
    }
    capture(&up, 500)?;
    up.signal_up("INT")?;
    up.wait_exit(EXIT)?;
    let v = verify(&up.dir, &up.production)?;
    let html = tmp.path().join("audit.html");
    let (code, doc, text) = audit(&up.production, Some(&html))?;
    let windows = doc["possible_loss"].as_array().cloned().unwrap_or_default();
    eprintln!(
        "audit frozen: verdict={} windows={} first={} | verify: {}",
        doc["verdict"],
        windows.len(),
        windows.first().map_or(String::new(), ToString::to_string),
        v.last
    );
    assert_eq!(code, 1, "{text}");
    // A window covering the freeze (a margin for the exchange-clock estimate).
    let slack = 500_000;
    assert!(
        windows
            .iter()
            .any(|w| us(&w["start"]) <= outage.stopped_us + slack
                && us(&w["end"]) >= outage.killed_us - slack),
        "no possible-loss window covers the freeze [{}, {}]:\n{text}",
        outage.stopped_us,
        outage.killed_us
    );
    // Every record the truth has and production lacks lies inside a window of its market.
    let mut by_ticker: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for w in &windows {
        by_ticker
            .entry(w["ticker"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push((us(&w["start"]), us(&w["end"])));
    }
    let present = production_identities(&up.production)?;
    let truth = truth(&up.dir)?;
    let first_delivered = truth
        .iter()
        .filter(|(_, d)| *d)
        // Send times: a lifecycle record carries its event's time, often before the run.
        .map(|(r, _)| sent_at(r))
        .min()
        .unwrap_or(0);
    let (mut absent, mut outside) = (0, Vec::new());
    let mut seen = HashSet::new();
    for (record, delivered) in truth {
        let (ticker, ts) = match &record {
            kd_core::Record::Trade(t) => (t.ticker.clone(), t.exchange_ts.micros()),
            kd_core::Record::Delta(d) => (d.ticker.clone(), d.exchange_ts.micros()),
            kd_core::Record::Ticker(t) => (t.ticker.clone(), t.exchange_ts.micros()),
            // Lifecycle rows are matched within a tolerance, not by identity (see verify).
            _ => continue,
        };
        let id = record.identity();
        if !seen.insert(id.clone()) || present.contains(&id) {
            continue;
        }
        // What verify expects: a trade once anyone had a trade subscription, anything else
        // delivered or sent after the subscribe allowance.
        let expected = match &record {
            kd_core::Record::Trade(_) => ts >= first_delivered,
            _ => delivered || ts >= first_delivered + 2_000_000,
        };
        if !expected {
            continue;
        }
        absent += 1;
        let inside = by_ticker
            .get(&ticker)
            .is_some_and(|ws| ws.iter().any(|(s, e)| *s <= ts && ts <= *e));
        if !inside {
            outside.push((record.table(), ticker, ts));
        }
    }
    eprintln!(
        "audit frozen: {absent} records absent from production, {} outside every window",
        outside.len()
    );
    assert!(absent > 0, "the freeze lost nothing? verify:\n{}", v.text);
    assert!(
        outside.is_empty(),
        "absent records outside every possible-loss window: {:?}",
        &outside[..outside.len().min(10)]
    );
    html_renders(&html, "audit-frozen")
}

/// Where a test keeps what a person should look at afterwards (screenshots, pages).
pub fn artifacts() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
}

/// Loads `url` in headless Chromium: the rendered DOM and the page's console lines.
///
/// Chromium's `--enable-logging=stderr` log writes every console message as `INFO:CONSOLE`,
/// whatever its level (an uncaught `ReferenceError` included), so the level cannot be read
/// from it: a line of the page is a failure. The audit page has no script, so it logs none.
fn load(url: &str, extra: &[String]) -> Res<(String, Vec<String>)> {
    let profile = tempfile::tempdir()?;
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("chromium failed ({}):\n{log}", out.status).into());
    }
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), console))
}

/// Loads the page in headless Chromium: the DOM has the heat map and the tables, the page
/// logs no console message (checked to catch one: a copy with a broken script must be
/// flagged), and its screenshot, kept under `target/test-artifacts/`, is not blank (decoded
/// by `png_check.py`: many colours, a fair share of non-background pixels).
pub fn html_renders(page: &Path, name: &str) -> Res<()> {
    let text = std::fs::read_to_string(page)?;
    // Self-contained: nothing fetched from anywhere.
    for bad in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
        assert!(!text.contains(bad), "external resource `{bad}` in the page");
    }
    let url = format!("file://{}", page.display());
    let (rendered, console) = load(&url, &["--dump-dom".to_string()])?;
    for id in [
        "id=\"heatmap\"",
        "id=\"possible-loss\"",
        "id=\"mismatches\"",
        "id=\"verdict\"",
    ] {
        assert!(rendered.contains(id), "rendered page lacks {id}");
    }
    assert!(console.is_empty(), "console messages: {console:?}");
    // The detector detects: the same page with a script that throws is flagged.
    let broken = page.with_extension("broken.html");
    std::fs::write(
        &broken,
        text.replacen(
            "</body>",
            "<script>undefinedFunctionOfTheTest();</script></body>",
            1,
        ),
    )?;
    let (_, caught) = load(
        &format!("file://{}", broken.display()),
        &["--dump-dom".to_string()],
    )?;
    assert!(
        caught
            .iter()
            .any(|l| l.contains("undefinedFunctionOfTheTest")),
        "a page whose script throws was not flagged: {caught:?}"
    );

    let keep = artifacts();
    std::fs::create_dir_all(&keep)?;
    let shot = keep.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let (_, console) = load(
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000".to_string(),
        ],
    )?;
    assert!(console.is_empty(), "console messages: {console:?}");
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/png_check.py"
        ))
        .arg(&shot)
        .output()?;
    let verdict = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "screenshot {}: {}",
        shot.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let figure = |key: &str| -> f64 {
        verdict
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        figure("colors=") >= 8.0 && figure("non_background=") >= 0.02,
        "the screenshot looks blank: {verdict} ({})",
        shot.display()
    );
    std::fs::copy(page, keep.join(format!("{name}.html")))?;
    eprintln!("audit html: screenshot {} ({verdict})", shot.display());
    Ok(())
}
