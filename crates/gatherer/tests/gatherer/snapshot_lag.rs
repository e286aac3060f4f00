//! Books stay right when the exchange runs behind (issue 21: under load, `verify` found book
//! check points wrong, a quiet market's snapshot holding a level the exchange no longer had).
//!
//! Under load the exchange's send queue runs behind, while a snapshot shows the book as it is
//! when asked for, folding in the changes still queued (the simulator's `send_lag` makes this
//! deterministic instead of depending on the machine's speed). A quiet market's snapshot used to
//! be stamped with its receive time converted by the clock estimate, which subtracts the
//! smallest latency of the *queued* messages: the stamp fell before changes the book already
//! contained, and a second gatherer, which had received those changes as deltas, made the
//! rebuilt book apply them twice. Two gatherers here, merged as production merges them (one row
//! per identity), rebuilt by the production rule (`kd_core::book::MarketHistory`).

use crate::common;

use common::{TestResult, all_rows, gatherer_config, wait_until};
use kd_core::book::{Book, MarketHistory};
use kd_core::records::Identity;
use kd_core::{OrderbookDelta, OrderbookSnapshot, Record, Table, TimestampUs};
use kd_sim::{SimConfig, TruthLine, read_truth};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MARKETS: usize = 40;

async fn start_gatherer(
    id: &str,
    store: &Path,
    sim: &kd_sim::SimHandle,
) -> Result<kd_gatherer::GathererHandle, Box<dyn std::error::Error + Send + Sync>> {
    let mut config = gatherer_config(store, &sim.rest_base(), &sim.ws_url());
    config.gatherer_id = id.into();
    config.connections = 1;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let health = gatherer.health().clone();
    let subscribed = wait_until(Duration::from_secs(30), || {
        health.markets_subscribed.load(Ordering::Relaxed) >= MARKETS * 9 / 10
    })
    .await;
    let count = health.markets_subscribed.load(Ordering::Relaxed);
    assert!(subscribed, "{id} subscribed only {count} markets");
    Ok(gatherer)
}

/// Waits until a gatherer has committed nothing for a second.
async fn settle(gatherer: &kd_gatherer::GathererHandle) {
    let mut heads = gatherer.heads();
    while let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(1_000), heads.changed()).await
    {
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_are_right_when_the_exchange_sends_behind() -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let truth_path = dir.path().join("truth.jsonl");
    let sim = kd_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets: MARKETS,
            hot_markets: MARKETS,
            // About 2 messages a second per market: many markets are quiet for the moments
            // after their snapshot, and most had a change in the lag before it.
            rate: 80,
            burst_factor: 1,
            create_every: Duration::ZERO,
            truth: Some(truth_path.clone()),
            checkpoint_every: Duration::from_millis(500),
            send_lag: Duration::from_millis(400),
            ..SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    let (store_a, store_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = start_gatherer("g-a", &store_a, &sim).await?;
    // The second gatherer subscribes while the first receives every change as a delta: the
    // changes its snapshots fold in are then stored (by the first) as deltas too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = start_gatherer("g-b", &store_b, &sim).await?;
    let b_subscribed = TimestampUs::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    sim.stop_publishing().await;
    settle(&a).await;
    settle(&b).await;
    sim.flush_truth().await;
    a.stop().await?;
    b.stop().await?;
    sim.shutdown().await?;

    // Production's merge: one row per identity, whichever gatherer stored it.
    let mut seen: HashSet<Identity> = HashSet::new();
    let mut snapshots: HashMap<String, Vec<OrderbookSnapshot>> = HashMap::new();
    let mut deltas: HashMap<String, Vec<OrderbookDelta>> = HashMap::new();
    for store in [&store_a, &store_b] {
        for table in [Table::Snapshots, Table::Deltas] {
            for row in all_rows(store, table)? {
                if !seen.insert(row.record.identity()) {
                    continue;
                }
                match row.record {
                    Record::Snapshot(s) => snapshots.entry(s.ticker.clone()).or_default().push(s),
                    Record::Delta(d) => deltas.entry(d.ticker.clone()).or_default().push(d),
                    _ => {}
                }
            }
        }
    }
    let tickers: HashSet<String> = snapshots.keys().chain(deltas.keys()).cloned().collect();
    let histories: HashMap<String, MarketHistory> = tickers
        .into_iter()
        .map(|t| {
            let h = MarketHistory::new(
                snapshots.remove(&t).unwrap_or_default(),
                deltas.remove(&t).unwrap_or_default(),
            );
            (t, h)
        })
        .collect();

    // Check points from when the second gatherer's snapshots are stored (the stream must be
    // past them) to the end; no fault loses anything, so every one must be exact.
    let from = TimestampUs::from_micros(b_subscribed.micros() + 2_000_000);
    let (mut checked, mut wrong) = (0, Vec::new());
    for line in read_truth(&truth_path)? {
        let TruthLine::Book {
            ticker,
            ts,
            yes,
            no,
        } = line?
        else {
            continue;
        };
        if ts < from {
            continue;
        }
        let Some(rebuilt) = histories.get(&ticker).and_then(|h| h.at(ts)) else {
            continue;
        };
        checked += 1;
        let expected = Book::from_levels(&yes, &no);
        if rebuilt.book != expected {
            wrong.push(format!(
                "{ticker} at {ts:?} (snapshot at {:?}): {}",
                rebuilt.snapshot_ts,
                rebuilt.book.diff(&expected)
            ));
        }
    }
    println!(
        "book check points compared: {checked}, wrong: {}",
        wrong.len()
    );
    assert!(
        checked >= MARKETS,
        "only {checked} book check points compared"
    );
    wrong.truncate(8);
    assert!(
        wrong.is_empty(),
        "rebuilt books differ from the exchange's: {wrong:#?}"
    );
    Ok(())
}
