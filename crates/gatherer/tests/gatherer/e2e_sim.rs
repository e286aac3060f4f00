//! End to end against the real simulator: the store holds every trade, delta, ticker and
//! lifecycle change the simulator delivered, and books rebuilt from the store equal the
//! simulator's at its check points.
//!
//! The default run is small (200 markets, 2,000 msgs/s, ~8 s). The full-size run of issue 4
//! (5,000 markets, 5,000 msgs/s, 60 s) is `#[ignore]`d:
//! `cargo test -p kd-gatherer --release --test gatherer -- --ignored --nocapture e2e_sim::`

use crate::common;

use common::{Book, TestResult, all_rows, gatherer_config, wait_until};
use kd_core::records::Identity;
use kd_core::{Record, Table, TimestampUs};
use kd_sim::{SimConfig, TruthLine, read_truth};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Scale {
    markets: usize,
    rate: u32,
    run: Duration,
    /// Simulator faults active for the whole run (`ws-drop:0.02` …).
    faults: &'static [&'static str],
}

async fn scenario(scale: Scale) -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    // KD_KEEP_TEST_DIR=1 keeps the store and truth for inspection after a failure.
    let kept = std::env::var_os("KD_KEEP_TEST_DIR").is_some();
    if kept {
        println!("test dir: {}", dir.path().display());
    }
    let truth_path = dir.path().join("truth.jsonl");
    let sim = kd_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets: scale.markets,
            rate: scale.rate,
            truth: Some(truth_path.clone()),
            checkpoint_every: Duration::from_secs(2),
            create_every: Duration::from_millis(500),
            hot_markets: scale.markets,
            market_limit_per_sub: 100,
            faults: scale
                .faults
                .iter()
                .map(|f| kd_sim::parse_fault(f))
                .collect::<Result<Vec<_>, _>>()?,
            ..SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    let store = dir.path().join("store");
    let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
    config.markets_per_subscription = 100;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let health = gatherer.health().clone();
    let subscribed = wait_until(Duration::from_secs(30), || {
        health.markets_subscribed.load(Ordering::Relaxed) >= scale.markets * 9 / 10
    })
    .await;
    assert!(
        subscribed,
        "subscribed only {}",
        health.markets_subscribed.load(Ordering::Relaxed)
    );
    // Trades the exchange made before this are not the gatherer's to recover.
    let subscribed_at = TimestampUs::now();
    tokio::time::sleep(scale.run).await;

    // Stop the exchange, let the last messages land, then stop the gatherer (it commits all).
    sim.stop_publishing().await;
    let stopped_at = TimestampUs::now();
    let mut heads = gatherer.heads();
    // Wait until nothing has been committed for a second.
    while let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(1_000), heads.changed()).await
    {
    }
    sim.flush_truth().await;
    gatherer.stop().await?;
    let stats = sim.stats().await;
    sim.shutdown().await?;

    // What the store holds.
    let mut stored: HashSet<Identity> = HashSet::new();
    let mut stored_lifecycle: Vec<kd_core::records::Lifecycle> = Vec::new();
    let mut rows_by_market: HashMap<String, Vec<(u64, Record)>> = HashMap::new();
    let mut counts = HashMap::new();
    for table in [
        Table::Trades,
        Table::Deltas,
        Table::Tickers,
        Table::Lifecycle,
        Table::Snapshots,
    ] {
        let rows = all_rows(&store, table)?;
        counts.insert(table.name(), rows.len());
        for row in rows {
            stored.insert(row.record.identity());
            if let Record::Lifecycle(l) = &row.record {
                stored_lifecycle.push(l.clone());
            }
            if let Record::Delta(d) = &row.record {
                rows_by_market
                    .entry(d.ticker.clone())
                    .or_default()
                    .push((row.seq, row.record));
            } else if let Record::Snapshot(s) = &row.record {
                rows_by_market
                    .entry(s.ticker.clone())
                    .or_default()
                    .push((row.seq, row.record));
            }
        }
    }
    let subscribe_delays = new_market_subscribe_delays(&store, subscribed_at, stopped_at)?;
    // The rule `kalshi-data book` applies to production (DESIGN §1): exchange-time order, a
    // snapshot at the instant the router stamped on it; deltas of one instant in store order.
    for rows in rows_by_market.values_mut() {
        rows.sort_by_key(|(seq, r)| (r.exchange_ts(), matches!(r, Record::Delta(_)), *seq));
    }

    // Compare with the ground truth. Every trade must be stored, even one no subscriber was
    // sent (REST backfill); other messages when delivered. A book check point counts when no
    // delta of that market after the snapshot it starts from is missing (after a gap, books are
    // right again from the next snapshot).
    let truth: Vec<TruthLine> = read_truth(&truth_path)?.collect::<Result<_, _>>()?;
    let mut missing_deltas: HashMap<String, Vec<TimestampUs>> = HashMap::new();
    for line in &truth {
        if let TruthLine::Published {
            record: Record::Delta(d),
            ..
        } = line
            && !stored.contains(&Record::Delta(d.clone()).identity())
        {
            missing_deltas
                .entry(d.ticker.clone())
                .or_default()
                .push(d.exchange_ts);
        }
    }
    let mut stored_deltas: HashMap<(String, i64, bool, i64, i64), u32> = HashMap::new();
    for rows in rows_by_market.values() {
        for (_, r) in rows {
            if let Record::Delta(d) = r {
                *stored_deltas.entry(delta_key(d)).or_default() += 1;
            }
        }
    }
    let mut skipped_books = 0;
    let mut delivered = 0_u64;
    let mut missing: HashMap<&'static str, u64> = HashMap::new();
    let mut examples = Vec::new();
    let mut checked_books = 0;
    let mut wrong_books = Vec::new();
    for line in truth {
        match line {
            TruthLine::Published {
                record,
                delivered: was_delivered,
            } => {
                let recoverable =
                    matches!(record, Record::Trade(_)) && record.exchange_ts() >= subscribed_at;
                if !was_delivered && !recoverable {
                    continue;
                }
                delivered += 1;
                let present = match &record {
                    // Occurrence numbers count what this gatherer saw: after a lost identical
                    // delta they shift, so deltas are matched without them (as a multiset).
                    Record::Delta(d) => take_delta(&mut stored_deltas, d),
                    // Lifecycle messages carry no time: the gatherer files each at its receipt
                    // on the exchange's clock, the truth keeps the send instant in
                    // `received_at`; one stored row per message, within the tolerance of
                    // `kd_core::identity::lifecycle`.
                    Record::Lifecycle(l) => take_lifecycle(&mut stored_lifecycle, l),
                    other => stored.contains(&other.identity()),
                };
                if !present {
                    *missing.entry(record.table().name()).or_default() += 1;
                    if examples.len() < 5 {
                        let before_stop_ms =
                            (stopped_at.micros() - record.exchange_ts().micros()) / 1000;
                        examples.push(format!("{before_stop_ms} ms before the stop: {record:?}"));
                    }
                }
            }
            TruthLine::Book {
                ticker,
                ts,
                yes,
                no,
            } => {
                if let Some((book, since)) = rebuild(rows_by_market.get(&ticker), ts) {
                    let lost = missing_deltas
                        .get(&ticker)
                        .is_some_and(|v| v.iter().any(|&t| t > since && t <= ts));
                    if lost {
                        skipped_books += 1;
                        continue;
                    }
                    checked_books += 1;
                    let expected = Book::from_levels(&yes, &no);
                    if book != expected && wrong_books.len() < 5 {
                        wrong_books.push(format!(
                            "{ticker} at {ts:?}: store {book:?} vs exchange {expected:?}"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    println!("sim stats: {stats:?}");
    println!("store rows: {counts:?}; delivered data messages in truth: {delivered}");
    println!("book check points compared: {checked_books}, skipped after a gap: {skipped_books}");
    println!("metrics:\n{}", interesting_metrics());
    if kept {
        let _ = dir.keep();
    }
    let slowest = subscribe_delays.iter().max().copied();
    println!(
        "markets created during the run: {}, lifecycle `created` → first order-book message: \
         max {:?}, all: {subscribe_delays:?}",
        subscribe_delays.len(),
        slowest
    );
    // Under dropped messages the market's first messages may themselves be lost, so the 2 s
    // promise is checked on the fault-free runs (the lossy runs print their figures).
    if scale.faults.is_empty() {
        assert!(
            !subscribe_delays.is_empty(),
            "no market was created during the run"
        );
        assert!(
            slowest.is_some_and(|d| d < Duration::from_secs(2)),
            "a market created during the run was not subscribed within 2 s: {subscribe_delays:?}"
        );
    }
    assert!(delivered > 0, "the simulator delivered nothing");
    assert!(
        missing.is_empty(),
        "missing from the store: {missing:?}, e.g. {examples:#?}"
    );
    assert!(checked_books > 0, "no book check point could be compared");
    assert!(wrong_books.is_empty(), "books differ: {wrong_books:#?}");
    Ok(())
}

/// For each market whose `created` lifecycle message the gatherer received while the exchange
/// ran (and at least 3 s before it stopped): the time from receiving that message to receiving
/// the market's first order-book message (its subscription's snapshot, or a delta), i.e. to its
/// subscription taking effect. Both stamps are the gatherer's own receive times. A market with
/// no order-book message at all counts as 1 hour.
fn new_market_subscribe_delays(
    store: &std::path::Path,
    from: TimestampUs,
    stopped: TimestampUs,
) -> Result<Vec<Duration>, Box<dyn std::error::Error + Send + Sync>> {
    let mut created: HashMap<String, TimestampUs> = HashMap::new();
    for row in all_rows(store, Table::Lifecycle)? {
        if let Record::Lifecycle(l) = row.record
            && l.event_type == "created"
            && l.kind == "market_lifecycle_v2"
            && l.received_at >= from
            && l.received_at.micros() + 3_000_000 <= stopped.micros()
        {
            created.entry(l.subject).or_insert(l.received_at);
        }
    }
    let mut first_book_message: HashMap<String, TimestampUs> = HashMap::new();
    let mut seen = |ticker: String, at: TimestampUs| {
        if created.get(&ticker).is_some_and(|&c| at >= c) {
            let first = first_book_message.entry(ticker).or_insert(at);
            *first = (*first).min(at);
        }
    };
    for row in all_rows(store, Table::Snapshots)? {
        if let Record::Snapshot(s) = row.record
            && s.source == kd_core::records::SnapshotSource::Ws
        {
            seen(s.ticker, s.received_at);
        }
    }
    for row in all_rows(store, Table::Deltas)? {
        if let Record::Delta(d) = row.record {
            seen(d.ticker, d.received_at);
        }
    }
    let mut delays: Vec<Duration> = created
        .iter()
        .map(|(ticker, at)| match first_book_message.get(ticker) {
            Some(first) => Duration::from_micros((first.micros() - at.micros()).max(0) as u64),
            None => Duration::from_secs(3_600),
        })
        .collect();
    delays.sort();
    Ok(delays)
}

/// The book of a market at exchange time `ts` from the stored rows (sorted by exchange time):
/// the last snapshot with `exchange_ts <= ts`, plus the deltas after it with `exchange_ts <= ts`
/// — the rule of `kalshi-data book`. `None` when the store has no snapshot of the market from
/// before `ts` (not subscribed then). Also returns the snapshot's time.
fn rebuild(rows: Option<&Vec<(u64, Record)>>, ts: TimestampUs) -> Option<(Book, TimestampUs)> {
    let mut book: Option<(Book, TimestampUs)> = None;
    for (_, record) in rows? {
        if record.exchange_ts() > ts {
            break;
        }
        match record {
            Record::Snapshot(s) => {
                let mut b = Book::default();
                b.apply(record);
                book = Some((b, s.exchange_ts));
            }
            Record::Delta(_) => {
                if let Some((b, _)) = book.as_mut() {
                    b.apply(record);
                }
            }
            _ => {}
        }
    }
    book
}

fn delta_key(d: &kd_core::OrderbookDelta) -> (String, i64, bool, i64, i64) {
    (
        d.ticker.clone(),
        d.exchange_ts.micros(),
        d.side == kd_core::Side::Yes,
        d.price.units(),
        d.delta.hundredths(),
    )
}

fn take_lifecycle(
    stored: &mut Vec<kd_core::records::Lifecycle>,
    l: &kd_core::records::Lifecycle,
) -> bool {
    let tolerance = kd_core::identity::lifecycle::LIFECYCLE_MATCH_US.unsigned_abs();
    let found = stored.iter().position(|s| {
        s.subject == l.subject
            && s.event_type == l.event_type
            && s.payload_hash() == l.payload_hash()
            && s.exchange_ts.micros().abs_diff(l.received_at.micros()) <= tolerance
    });
    found.map(|i| stored.swap_remove(i)).is_some()
}

fn take_delta(
    stored: &mut HashMap<(String, i64, bool, i64, i64), u32>,
    d: &kd_core::OrderbookDelta,
) -> bool {
    match stored.get_mut(&delta_key(d)) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

fn interesting_metrics() -> String {
    kd_core::telemetry::render_metrics()
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && (l.starts_with("registry_subscribe_delay")
                    || l.starts_with("router_")
                    || l.starts_with("sequence_")
                    || l.starts_with("writer_dropped")
                    || l.starts_with("connection_reconnects")
                    || l.starts_with("connection_subscribe_errors")
                    || l.starts_with("repair_"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_matches_the_simulator_ground_truth() -> TestResult {
    // Runs a gatherer: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    scenario(Scale {
        markets: 200,
        rate: 2_000,
        run: Duration::from_secs(8),
        faults: &[],
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full size (60 s); run with --ignored --release"]
async fn store_matches_the_simulator_ground_truth_full_size() -> TestResult {
    // Runs a gatherer: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    scenario(Scale {
        markets: 5_000,
        rate: 5_000,
        run: Duration::from_secs(60),
        faults: &[],
    })
    .await
}

/// Issue 5: 2 % of data messages dropped per connection, and some dropped for everyone: every
/// trade still ends in the store (REST backfill), books are right after each re-snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_messages_are_repaired() -> TestResult {
    // Runs a gatherer: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    scenario(Scale {
        markets: 200,
        rate: 2_000,
        run: Duration::from_secs(8),
        faults: &["ws-drop:0.02", "ws-drop-all:0.005"],
    })
    .await
}

/// The 60 s version of [`dropped_messages_are_repaired`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full size (60 s); run with --ignored --release"]
async fn dropped_messages_are_repaired_full_size() -> TestResult {
    // Runs a gatherer: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    scenario(Scale {
        markets: 5_000,
        rate: 5_000,
        run: Duration::from_secs(60),
        faults: &["ws-drop:0.02", "ws-drop-all:0.005"],
    })
    .await
}
