//! `kalshi-data backfill` against the real simulator and a real PostgreSQL database: a
//! market's full history (`--ticker`, through paging and injected 429s), and every market of an
//! event (`--event`) or a series (`--series`), ends up in production equal to the simulator's
//! ground truth; a second run (through the binary) adds nothing. The same holds when the whole
//! range is older than the historical cutoff (served only by `/historical/trades`), and for
//! combo (multivariate) markets: `--combos`, a combo event.

use indicatif::ProgressBar;
use kd_backfill::{BackfillPlan, Target};
use kd_core::backoff::BackoffPolicy;
use kd_core::records::{Record, Trade};
use kd_core::{Table, TimestampUs};
use kd_kalshi::rest::{RestClient, RestConfig};
use kd_sim::{SimConfig, TruthLine};
use kd_testkit::pg::TestDb;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What must match between the exchange and production (not how or when we received it).
fn essence(t: &Trade) -> (String, i64, String, String, String, Option<String>, bool) {
    (
        t.ticker.clone(),
        t.exchange_ts.micros(),
        format!("{:?}", t.yes_price),
        format!("{:?}", t.no_price),
        format!("{:?}", t.count),
        t.taker_side.map(|s| format!("{s:?}")),
        t.is_block_trade,
    )
}

type Essence = (String, i64, String, String, String, Option<String>, bool);

/// Every trade the simulator published, by ticker, then by trade_id.
fn truth_trades(
    path: &std::path::Path,
) -> Result<BTreeMap<String, BTreeMap<String, Essence>>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out: BTreeMap<String, BTreeMap<String, Essence>> = BTreeMap::new();
    for line in kd_sim::read_truth(path)? {
        if let TruthLine::Published {
            record: Record::Trade(t),
            ..
        } = line?
        {
            out.entry(t.ticker.clone())
                .or_default()
                .insert(t.trade_id.clone(), essence(&t));
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_a_market_equals_the_truth_and_a_second_run_adds_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    // Let the exchange trade until one market has a few pages of history, then freeze it.
    let (sim, truth) = frozen_exchange(dir.path(), 600, &shutdown).await?;
    let (ticker, expected) = truth
        .iter()
        .max_by_key(|(_, trades)| trades.len())
        .map(|(t, trades)| (t.clone(), trades.clone()))
        .ok_or("no trade in the ground truth")?;
    println!(
        "backfilling {ticker}: {} trades in the ground truth",
        expected.len()
    );
    assert!(expected.len() > 40, "want several pages of 20");

    let db = TestDb::create("backfill").await?;
    let store = kd_dedup::open(&db.url).await?;
    store.migrate().await?;
    let now = TimestampUs::now();
    let from = TimestampUs::from_micros(now.micros() - 3 * 3_600_000_000);
    let to = TimestampUs::from_micros(now.micros() + 60_000_000);
    let rest = RestClient::new(RestConfig::new(sim.rest_base()), None)?;

    // Rate limiting that honours 429: a third of the trade pages are refused.
    sim.add_fault(kd_sim::parse_fault("http:429:/markets/trades:0.3")?);
    let plan = BackfillPlan {
        target: Target::Ticker(ticker.clone()),
        from,
        to,
        chunk: Duration::from_secs(1800),
        requests_per_sec: 0,
        page_limit: 20,
        rest_backoff: BackoffPolicy::new(Duration::from_millis(10), Duration::from_millis(100)),
    };
    let first =
        kd_backfill::backfill(&plan, &rest, &store, &ProgressBar::hidden(), &shutdown).await?;
    println!("first run: {first}");
    sim.clear_faults();

    let stored: BTreeMap<String, Essence> = store
        .read_window(Table::Trades, from, to)
        .await?
        .into_iter()
        .filter_map(|r| match r {
            Record::Trade(t) if t.ticker == ticker => Some((t.trade_id.clone(), essence(&t))),
            _ => None,
        })
        .collect();
    assert_eq!(
        stored.len(),
        expected.len(),
        "trade count differs from the ground truth"
    );
    assert_eq!(stored, expected, "production differs from the ground truth");
    assert_eq!(first.inserted, expected.len() as u64);
    assert_eq!(first.parse_errors, 0);
    assert!(
        first.requests > first.chunks_fetched,
        "paging and 429 retries mean more requests than chunks"
    );

    // Second run, through the binary: completed chunks are skipped, nothing is inserted.
    let out = Command::new(env!("CARGO_BIN_EXE_kalshi-data"))
        .args([
            "backfill",
            "--production",
            &db.url,
            "--rest-url",
            &sim.rest_base(),
            "--ticker",
            &ticker,
        ])
        .args(["--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
        .args(["--chunk-secs", "1800", "--rate", "0", "--page-limit", "20"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "second run: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "second run failed");
    assert!(
        stdout.contains(" 0 inserted"),
        "second run inserted trades: {stdout}"
    );
    assert!(stdout.contains("already complete"), "{stdout}");
    assert_eq!(store.count(Table::Trades).await?, expected.len() as u64);

    shutdown.cancel();
    sim.join().await?;
    drop(store);
    db.drop_db().await?;
    Ok(())
}

/// A simulator with 2 series, 5 events and 20 markets (market `m` in event `m % 5`, event `e`
/// in series `e % 2`: tickers `SIM<s>-E<e>-M<m>`), traded until `trades` trades, then frozen.
async fn frozen_exchange(
    dir: &std::path::Path,
    trades: u64,
    shutdown: &CancellationToken,
) -> Result<
    (
        kd_sim::SimHandle,
        BTreeMap<String, BTreeMap<String, Essence>>,
    ),
    Box<dyn std::error::Error + Send + Sync>,
> {
    frozen_exchange_with(dir, trades, shutdown, |c| c).await
}

/// [`frozen_exchange`] with a change to the simulator's configuration.
async fn frozen_exchange_with(
    dir: &std::path::Path,
    trades: u64,
    shutdown: &CancellationToken,
    tweak: impl FnOnce(SimConfig) -> SimConfig,
) -> Result<
    (
        kd_sim::SimHandle,
        BTreeMap<String, BTreeMap<String, Essence>>,
    ),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let truth_path = dir.join("truth.jsonl");
    let sim = kd_sim::start(
        tweak(SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets: 20,
            series: 2,
            events: 5,
            hot_markets: 20,
            rate: 2_000,
            create_every: Duration::ZERO,
            truth: Some(truth_path.clone()),
            truth_hold: Duration::from_millis(200),
            ..SimConfig::default()
        }),
        shutdown.clone(),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.stats().await.trades < trades {
        assert!(
            Instant::now() < deadline,
            "simulator produced too few trades"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.stop_publishing().await;
    sim.flush_truth().await;
    let truth = truth_trades(&truth_path)?;
    Ok((sim, truth))
}

/// `kalshi-data backfill FLAG VALUE` through the binary (its output printed): (success, stdout).
fn backfill_binary(
    db_url: &str,
    rest_url: &str,
    target: &[&str],
    from: TimestampUs,
    to: TimestampUs,
) -> Result<(bool, String), std::io::Error> {
    let out = Command::new(env!("CARGO_BIN_EXE_kalshi-data"))
        .args(["backfill", "--production", db_url, "--rest-url", rest_url])
        .args(target)
        .args(["--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
        .args(["--chunk-secs", "1800", "--rate", "0", "--page-limit", "20"])
        .output()?;
    println!(
        "{}: {}{}",
        target.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// `--event E` / `--series S` through the binary: production holds exactly the ground truth's
/// trades of every market whose ticker starts with `prefix` (and nothing else); a second run
/// fetches nothing new and inserts 0 rows.
async fn backfill_of_a_group(flag: &str, group: &str, prefix: &str) -> TestResult {
    backfill_of_a_group_in(&[flag, group], prefix, false).await
}

/// [`backfill_of_a_group`] for `target` (flag and value, or a flag alone), on an exchange with
/// combo markets; `historical`: the backfill starts only once the historical cutoff has passed
/// every trade, so none is on `/markets/trades` any more.
async fn backfill_of_a_group_in(target: &[&str], prefix: &str, historical: bool) -> TestResult {
    let (flag, group) = (target[0], target.get(1).copied().unwrap_or(""));
    let dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    let lag = Duration::from_secs(if historical { 2 } else { 3_600 });
    let (sim, truth) = frozen_exchange_with(dir.path(), 600, &shutdown, |c| SimConfig {
        combo_markets: 6,
        hot_markets: 26,
        historical_cutoff_lag: lag,
        ..c
    })
    .await?;
    if historical {
        all_older_than_the_cutoff(&sim).await?;
    }
    let expected: BTreeMap<String, BTreeMap<String, Essence>> = truth
        .into_iter()
        .filter(|(ticker, _)| ticker.starts_with(prefix))
        .collect();
    let total: usize = expected.values().map(BTreeMap::len).sum();
    println!(
        "backfilling {flag} {group}: {total} trades over {} markets in the ground truth",
        expected.len()
    );
    assert!(expected.len() >= 2, "want several markets: {expected:?}");
    assert!(total > 40, "want several pages of 20");

    let db = TestDb::create("backfill_group").await?;
    let store = kd_dedup::open(&db.url).await?;
    store.migrate().await?;
    let now = TimestampUs::now();
    let from = TimestampUs::from_micros(now.micros() - 3 * 3_600_000_000);
    let to = TimestampUs::from_micros(now.micros() + 60_000_000);

    let (ok, stdout) = backfill_binary(&db.url, &sim.rest_base(), target, from, to)?;
    assert!(ok, "first run failed");
    assert!(stdout.contains(&format!(" {total} inserted")), "{stdout}");
    let mut stored: BTreeMap<String, BTreeMap<String, Essence>> = BTreeMap::new();
    for r in store.read_window(Table::Trades, from, to).await? {
        if let Record::Trade(t) = r {
            stored
                .entry(t.ticker.clone())
                .or_default()
                .insert(t.trade_id.clone(), essence(&t));
        }
    }
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "markets in production differ from the ground truth's markets of {group}"
    );
    for (ticker, trades) in &expected {
        assert_eq!(
            stored.get(ticker),
            Some(trades),
            "{ticker}: production differs from the ground truth"
        );
    }
    assert_eq!(store.count(Table::Trades).await?, total as u64);

    let (ok, stdout) = backfill_binary(&db.url, &sim.rest_base(), target, from, to)?;
    assert!(ok, "second run failed");
    assert!(
        stdout.contains(" 0 inserted"),
        "second run inserted trades: {stdout}"
    );
    assert!(stdout.contains("already complete"), "{stdout}");
    assert_eq!(store.count(Table::Trades).await?, total as u64);

    shutdown.cancel();
    sim.join().await?;
    drop(store);
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_an_event_equals_the_truth_and_a_second_run_adds_nothing() -> TestResult {
    // Event SIM1-E3 holds markets 3, 8, 13, 18.
    backfill_of_a_group("--event", "SIM1-E3", "SIM1-E3-M").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_a_series_equals_the_truth_and_a_second_run_adds_nothing() -> TestResult {
    // Series SIM0 holds events 0, 2, 4: the twelve markets m with m % 5 in {0, 2, 4}.
    backfill_of_a_group("--series", "SIM0", "SIM0-E").await
}

/// Waits until the simulator's historical cutoff has passed its last trade, and checks that
/// `/markets/trades` then has none: every trade is only on `/historical/trades`.
async fn all_older_than_the_cutoff(sim: &kd_sim::SimHandle) -> TestResult {
    let rest = RestClient::new(RestConfig::new(sim.rest_base()), None)?;
    let frozen_at = TimestampUs::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rest.historical_cutoff().await?.trades_created()? <= frozen_at {
        assert!(
            Instant::now() < deadline,
            "the historical cutoff does not advance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = rest
        .all_trades_of(kd_kalshi::rest::TradesTier::Live, None, None, None)
        .await?;
    assert!(live.is_empty(), "{} trades still live", live.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_a_series_older_than_the_cutoff_equals_the_truth() -> TestResult {
    backfill_of_a_group_in(&["--series", "SIM0"], "SIM0-E", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_every_combo_market_older_than_the_cutoff_equals_the_truth() -> TestResult {
    backfill_of_a_group_in(&["--combos"], "KXMVESIM-", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_a_combo_event_and_series_equals_the_truth() -> TestResult {
    backfill_of_a_group_in(&["--event", "KXMVESIM-E0"], "KXMVESIM-E0-", false).await?;
    backfill_of_a_group_in(&["--series", "KXMVESIM"], "KXMVESIM-", true).await
}
