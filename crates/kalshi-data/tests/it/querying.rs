//! docs/querying.md, run (issue 19): a short `up` against the simulator with PostgreSQL
//! production, its day exported to a local archive, then every snippet of the page — SQL with
//! `psql --csv` on the test database, Python (DuckDB, pandas/pyarrow, polars) on the archive —
//! each answer compared with production read independently in Rust (`kd_production`), the
//! book with `kalshi-data book --json`. A snippet that fails, answers wrong, or has no check
//! fails the test, by name; so does a check whose snippet is missing from the page.
//!
//! The same run's `audit --html` page is then loaded in headless Chromium (`audit::
//! html_renders`): it renders, logs no console message, and its screenshot is kept under
//! `target/test-artifacts/`.

use crate::querying_page::{Csv, Lang, PAGE, Snippet, micros, scaled, snippets, substitute};
use crate::reliability_support::{BIN, Res, Up, UpOpts};
use kd_core::{Record, Table, TimestampUs};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const QUESTIONS: [&str; 6] = [
    "trades",
    "book",
    "ohlc",
    "series-volume",
    "day-deltas",
    "event-markets",
];
const ENGINES: [&str; 4] = ["sql", "duckdb", "pandas", "polars"];
const DAY_US: i64 = 86_400_000_000;

/// What production holds, read in Rust, and the answers the snippets must give.
struct Expected {
    /// (trade_id, yes, no, count) in (exchange_ts, trade_id) order.
    trades: Vec<(String, i64, i64, i64)>,
    /// (side, price, size) of `kalshi-data book` at T.
    book: BTreeSet<(String, i64, i64)>,
    /// minute start µs → (open, high, low, close, volume, trades).
    ohlc: BTreeMap<i64, [i64; 6]>,
    /// series → (trades, volume, notional) over DAY.
    series: BTreeMap<String, [i64; 3]>,
    /// (ts, side, price, delta) of TICKER during DAY, sorted.
    day_deltas: Vec<(i64, String, i64, i64)>,
    /// Markets of EVENT in production's metadata.
    event_markets: BTreeSet<String>,
    /// Markets of EVENT with records during DAY → (trades, deltas).
    event_activity: BTreeMap<String, (i64, i64)>,
}

/// Whether every tool the snippets and the page check need is here; a loud skip (a failure
/// under CI) names what is missing.
fn tools_present() -> bool {
    let missing: Vec<&str> = [
        ("psql", vec!["--version"]),
        ("chromium", vec!["--version"]),
        (
            "python3",
            vec!["-c", "import duckdb, pandas, polars, pyarrow"],
        ),
    ]
    .into_iter()
    .filter(|(tool, args)| {
        !Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .map(|(tool, args)| if tool == "python3" { args[1] } else { tool })
    .collect();
    if missing.is_empty() {
        return true;
    }
    kd_testkit::ci::skip(
        "querying::every_snippet_of_the_page_answers_like_production",
        &format!("missing {missing:?} (scripts/test-deps installs them)"),
    );
    false
}

#[test]
fn every_snippet_of_the_page_answers_like_production() -> Res<()> {
    let page = std::fs::read_to_string(PAGE)?;
    let all = snippets(&page)?;
    let names: BTreeSet<String> = all.iter().map(|s| s.name.clone()).collect();
    let wanted: BTreeSet<String> = QUESTIONS
        .iter()
        .flat_map(|q| ENGINES.iter().map(move |e| format!("{q}-{e}")))
        .collect();
    let unchecked: Vec<&String> = names.difference(&wanted).collect();
    let missing: Vec<&String> = wanted.difference(&names).collect();
    assert!(
        unchecked.is_empty(),
        "snippets on the page this test has no check for: {unchecked:?}"
    );
    assert!(
        missing.is_empty(),
        "checks whose snippet is missing: {missing:?}"
    );
    assert_eq!(all.len(), names.len(), "a snippet name is used twice");
    if !tools_present() {
        return Ok(());
    }

    let rt = tokio::runtime::Runtime::new()?;
    let db = rt.block_on(kd_testkit::pg::TestDb::create("querying"))?;
    let tmp = tempfile::Builder::new().prefix("kd-querying-").tempdir()?;
    let o = UpOpts {
        markets: 12,
        rate: 200,
        duration: 15,
        production: Some(db.url.clone()),
        ..UpOpts::default()
    };
    let mut up = Up::start(Path::new(BIN), &tmp.path().join("data"), &o)?;
    up.wait_exit(Duration::from_secs(180))?;

    let store = rt.block_on(kd_production::open(&db.url))?;
    let read = |t: Table| {
        rt.block_on(store.read_window(
            t,
            TimestampUs::from_micros(0),
            TimestampUs::from_micros(TimestampUs::now().micros() + DAY_US),
        ))
    };
    let (trades, deltas, snapshots) = (
        read(Table::Trades)?,
        read(Table::Deltas)?,
        read(Table::Snapshots)?,
    );
    let markets = rt.block_on(store.markets())?;

    // The inputs: the busiest market, its event, the day of its first trade, and as T the
    // exchange time of one of its deltas (a boundary: T itself is in the book) well after
    // its first WebSocket snapshot.
    let mut per_market: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &trades {
        if let Record::Trade(t) = r {
            *per_market.entry(&t.ticker).or_default() += 1;
        }
    }
    let ticker = per_market
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(t, _)| t.to_string())
        .ok_or("the run stored no trade")?;
    let event = markets
        .iter()
        .find(|m| m.ticker == ticker)
        .and_then(|m| m.event_ticker.clone())
        .ok_or("the busiest market has no event in production")?;
    let first_ws = snapshots
        .iter()
        .filter_map(|r| match r {
            Record::Snapshot(s)
                if s.ticker == ticker && s.source == kd_core::records::SnapshotSource::Ws =>
            {
                Some(s.exchange_ts.micros())
            }
            _ => None,
        })
        .min()
        .ok_or("no WebSocket snapshot of the busiest market")?;
    let later: Vec<i64> = deltas
        .iter()
        .filter_map(|r| match r {
            Record::Delta(d) if d.ticker == ticker && d.exchange_ts.micros() > first_ws => {
                Some(d.exchange_ts.micros())
            }
            _ => None,
        })
        .collect();
    let t_us = *later
        .get(later.len() / 2)
        .ok_or("no delta after the snapshot")?;
    let t = TimestampUs::from_micros(t_us).to_rfc3339();
    let first_trade = trades
        .iter()
        .find_map(|r| match r {
            Record::Trade(tr) if tr.ticker == ticker => Some(tr.exchange_ts.micros()),
            _ => None,
        })
        .unwrap_or(t_us);
    let day_start = first_trade.div_euclid(DAY_US) * DAY_US;
    let day = TimestampUs::from_micros(day_start).to_rfc3339()[..10].to_string();

    // The archive of every day the run touched, exported by hand (the continuous exporter of
    // `up` waits for windows to close; `--from/--to` exports them and the days' aggregates).
    let archive = tmp.path().join("archive");
    let last_day = TimestampUs::from_micros((TimestampUs::now().micros() / DAY_US + 1) * DAY_US);
    let out = Command::new(BIN)
        .args(["export", "--production", &db.url])
        .arg(format!("--archive=file://{}", archive.display()))
        .args(["--from", &day, "--to", &last_day.to_rfc3339()[..10]])
        .output()?;
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let expected = expect(&ExpectIn {
        trades: &trades,
        deltas: &deltas,
        markets: &markets,
        ticker: &ticker,
        event: &event,
        day_start,
        book: book_cli(&db.url, &ticker, &t)?,
    });
    assert!(
        !expected.book.is_empty() && !expected.day_deltas.is_empty(),
        "nothing to compare"
    );
    eprintln!(
        "querying: TICKER={ticker} EVENT={event} DAY={day} T={t}: {} trades, {} book levels, \
         {} bars, {} series, {} deltas that day, {} markets of the event",
        expected.trades.len(),
        expected.book.len(),
        expected.ohlc.len(),
        expected.series.len(),
        expected.day_deltas.len(),
        expected.event_markets.len()
    );

    let vars: BTreeMap<&str, String> = BTreeMap::from([
        ("ARCHIVE", archive.display().to_string()),
        ("TICKER", ticker.clone()),
        ("T", t.clone()),
        ("DAY", day.clone()),
        ("EVENT", event.clone()),
    ]);
    let mut failures = Vec::new();
    for s in &all {
        let answer = run(s, &db.url, &vars).and_then(|csv| check(s, &csv, &expected));
        match answer {
            Ok(rows) => eprintln!("querying: {} OK ({rows} rows)", s.name),
            Err(e) => failures.push(format!("{}: {e}", s.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} snippets of docs/querying.md failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );

    // Part two: the audit's HTML page of the same run, in a real browser.
    let html = tmp.path().join("audit.html");
    let out = Command::new(BIN)
        .args(["audit", "--production", &db.url, "--html"])
        .arg(&html)
        .output()?;
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && html.exists(),
        "audit --html: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::audit::html_renders(&html, "audit-querying")?;
    drop(store);
    rt.block_on(db.drop_db())?;
    Ok(())
}

/// `kalshi-data book --json` at T: (side, price, size) of every level.
fn book_cli(url: &str, ticker: &str, at: &str) -> Res<BTreeSet<(String, i64, i64)>> {
    let out = Command::new(BIN)
        .args(["book", "--production", url, "--ticker", ticker, "--json"])
        .args(["--depth", "100000", "--at", at])
        .output()?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("book --json: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    assert_eq!(doc["snapshot_source"], "ws", "{doc}");
    assert_eq!(doc["negative_levels"], 0, "{doc}");
    let mut levels = BTreeSet::new();
    for side in ["yes", "no"] {
        for l in doc[side].as_array().into_iter().flatten() {
            levels.insert((
                side.to_string(),
                scaled(l["price"].as_str().unwrap_or_default(), 5)?,
                scaled(l["size"].as_str().unwrap_or_default(), 2)?,
            ));
        }
    }
    Ok(levels)
}

/// Runs one snippet with its inputs rewritten; its CSV answer.
fn run(s: &Snippet, production: &str, vars: &BTreeMap<&str, String>) -> Result<Csv, String> {
    let source = substitute(s, vars)?;
    let mut cmd = match s.lang {
        Lang::Sql => {
            let mut c = Command::new("psql");
            c.arg(production)
                .args(["-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
            c
        }
        Lang::Python => {
            let mut c = Command::new("python3");
            c.arg("-");
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, source.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Csv::parse(&stdout)
}

struct ExpectIn<'a> {
    trades: &'a [Record],
    deltas: &'a [Record],
    markets: &'a [kd_production::MarketRow],
    ticker: &'a str,
    event: &'a str,
    day_start: i64,
    book: BTreeSet<(String, i64, i64)>,
}

/// The answers, from production's records (read by `kd_production`, not by SQL).
fn expect(i: &ExpectIn) -> Expected {
    let in_day = |ts: i64| (i.day_start..i.day_start + DAY_US).contains(&ts);
    let event_of: BTreeMap<&str, &str> = i
        .markets
        .iter()
        .filter_map(|m| Some((m.ticker.as_str(), m.event_ticker.as_deref()?)))
        .collect();
    let mut trades: Vec<_> = i
        .trades
        .iter()
        .filter_map(|r| match r {
            Record::Trade(t) => Some(t),
            _ => None,
        })
        .collect();
    trades.sort_by(|a, b| (a.exchange_ts, &a.trade_id).cmp(&(b.exchange_ts, &b.trade_id)));
    let mut e = Expected {
        trades: Vec::new(),
        book: i.book.clone(),
        ohlc: BTreeMap::new(),
        series: BTreeMap::new(),
        day_deltas: Vec::new(),
        event_markets: event_of
            .iter()
            .filter(|(_, ev)| **ev == i.event)
            .map(|(t, _)| t.to_string())
            .collect(),
        event_activity: BTreeMap::new(),
    };
    for t in trades {
        let (ts, price, count) = (
            t.exchange_ts.micros(),
            t.yes_price.units(),
            t.count.hundredths(),
        );
        if in_day(ts) {
            // The series is the event ticker's part before its first `-` (the sim's events
            // say so too; the archive derives it that way).
            if let Some(ev) = event_of.get(t.ticker.as_str()) {
                let series = ev.split('-').next().unwrap_or(ev).to_string();
                let s = e.series.entry(series).or_default();
                s[0] += 1;
                s[1] += count;
                s[2] += price * count;
            }
            if event_of.get(t.ticker.as_str()) == Some(&i.event) {
                e.event_activity.entry(t.ticker.clone()).or_default().0 += 1;
            }
        }
        if t.ticker != i.ticker {
            continue;
        }
        e.trades
            .push((t.trade_id.clone(), price, t.no_price.units(), count));
        let bar = e
            .ohlc
            .entry(ts - ts.rem_euclid(60_000_000))
            .or_insert([price, price, price, price, 0, 0]);
        bar[1] = bar[1].max(price);
        bar[2] = bar[2].min(price);
        bar[3] = price;
        bar[4] += count;
        bar[5] += 1;
    }
    for r in i.deltas {
        let Record::Delta(d) = r else { continue };
        let ts = d.exchange_ts.micros();
        if !in_day(ts) {
            continue;
        }
        if event_of.get(d.ticker.as_str()) == Some(&i.event) {
            e.event_activity.entry(d.ticker.clone()).or_default().1 += 1;
        }
        if d.ticker == i.ticker {
            e.day_deltas.push((
                ts,
                d.side.as_str().to_string(),
                d.price.units(),
                d.delta.hundredths(),
            ));
        }
    }
    e.day_deltas.sort();
    e
}

/// Compares one snippet's answer with the expected one; the number of rows it returned.
fn check(s: &Snippet, csv: &Csv, e: &Expected) -> Result<usize, String> {
    let col = |name: &str| csv.column(name);
    let ints = |name: &str, scale: usize| -> Result<Vec<i64>, String> {
        col(name)?.into_iter().map(|v| scaled(v, scale)).collect()
    };
    let texts = |name: &str| -> Result<Vec<String>, String> {
        Ok(col(name)?.into_iter().map(str::to_string).collect())
    };
    let question = s.name.rsplit_once('-').map_or("", |(q, _)| q);
    let same = |what: &str, got: String, want: String| {
        if got == want {
            Ok(())
        } else {
            Err(format!("wrong {what}:\n  got  {got}\n  want {want}"))
        }
    };
    match question {
        "trades" => {
            let got: Vec<_> = itertools_zip4(
                texts("trade_id")?,
                ints("yes_dollars", 5)?,
                ints("no_dollars", 5)?,
                ints("contracts", 2)?,
            );
            same("trades", format!("{got:?}"), format!("{:?}", e.trades))?;
        }
        "book" => {
            let got: BTreeSet<_> = texts("side")?
                .into_iter()
                .zip(ints("price_dollars", 5)?)
                .zip(ints("contracts", 2)?)
                .map(|((a, b), c)| (a, b, c))
                .collect();
            same("book", format!("{got:?}"), format!("{:?}", e.book))?;
        }
        "ohlc" => {
            let minutes: Vec<i64> = col("minute")?
                .into_iter()
                .map(micros)
                .collect::<Result<_, _>>()?;
            let fields = [
                ints("open", 5)?,
                ints("high", 5)?,
                ints("low", 5)?,
                ints("close", 5)?,
                ints("contracts", 2)?,
                ints("trades", 0)?,
            ];
            let got: BTreeMap<i64, [i64; 6]> = minutes
                .iter()
                .enumerate()
                .map(|(r, m)| (*m, std::array::from_fn(|f| fields[f][r])))
                .collect();
            same("bars", format!("{got:?}"), format!("{:?}", e.ohlc))?;
        }
        "series-volume" => {
            let (n, v, d) = (
                ints("trades", 0)?,
                ints("contracts", 2)?,
                ints("dollars", 7)?,
            );
            let got: BTreeMap<String, [i64; 3]> = texts("series")?
                .into_iter()
                .enumerate()
                .map(|(r, k)| (k, [n[r], v[r], d[r]]))
                .collect();
            same(
                "series volume",
                format!("{got:?}"),
                format!("{:?}", e.series),
            )?;
        }
        "day-deltas" => {
            let times: Vec<i64> = col("exchange_time")?
                .into_iter()
                .map(micros)
                .collect::<Result<_, _>>()?;
            let mut got: Vec<(i64, String, i64, i64)> = times
                .into_iter()
                .zip(texts("side")?)
                .zip(ints("price_dollars", 5)?)
                .zip(ints("contracts", 2)?)
                .map(|(((t, s), p), c)| (t, s, p, c))
                .collect();
            let in_order = got.windows(2).all(|w| w[0].0 <= w[1].0);
            got.sort();
            same("deltas", format!("{got:?}"), format!("{:?}", e.day_deltas))?;
            if !in_order {
                return Err("deltas not in exchange-time order".into());
            }
        }
        "event-markets" if s.lang == Lang::Sql => {
            let got: BTreeSet<String> = texts("ticker")?.into_iter().collect();
            same(
                "markets",
                format!("{got:?}"),
                format!("{:?}", e.event_markets),
            )?;
        }
        "event-markets" => {
            let (n, d) = (ints("trades", 0)?, ints("deltas", 0)?);
            let got: BTreeMap<String, (i64, i64)> = texts("ticker")?
                .into_iter()
                .enumerate()
                .map(|(r, t)| (t, (n[r], d[r])))
                .collect();
            same(
                "markets with records",
                format!("{got:?}"),
                format!("{:?}", e.event_activity),
            )?;
        }
        other => return Err(format!("no check for question `{other}`")),
    }
    Ok(csv.rows.len())
}

fn itertools_zip4<A, B, C, D>(a: Vec<A>, b: Vec<B>, c: Vec<C>, d: Vec<D>) -> Vec<(A, B, C, D)> {
    a.into_iter()
        .zip(b)
        .zip(c)
        .zip(d)
        .map(|(((a, b), c), d)| (a, b, c, d))
        .collect()
}
