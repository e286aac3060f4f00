//! End to end: the simulator, three real gatherers and the deduplicator — production holds every
//! delivered trade exactly once and deltas and tickers equal to the ground truth, also when each
//! gatherer misses different messages (`ws-drop`); and `kill -9` of a deduplicator process in
//! the middle of its work loses and duplicates nothing.
//!
//! The kill test re-executes this test binary as the child (`KD_DEDUP_CHILD` holds its
//! configuration), so the killed process runs exactly `kd_dedup::run`, as `kalshi-data dedup`
//! does.

use crate::common::cluster::*;
use crate::common::*;
use kd_core::records::Identity;
use kd_core::{Record, Table, TimestampUs};
use kd_dedup::config::{DedupConfig, GathererEndpoint};
use kd_dedup::store::{self, Store};
use kd_sim::{SimConfig, TruthLine, parse_fault, read_truth};
use kd_testkit::pg::TestDb;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "KD_DEDUP_CHILD";
/// The child's test, by its path in this binary (`--exact` needs the module path).
const CHILD_TEST: &str = "e2e::child_dedup";
/// How often a waiting test polls (production row counts, cursors).
const POLL: Duration = Duration::from_millis(100);

/// Every cursor in production equals its gatherer's head.
async fn caught_up(store: &Store, gatherers: &[kd_gatherer::GathererHandle]) -> bool {
    let Ok(cursors) = store.cursors().await else {
        return false;
    };
    gatherers.iter().enumerate().all(|(g, h)| {
        let heads = *h.heads().borrow();
        Table::ALL
            .iter()
            .all(|t| cursors.get(&(format!("g{g}"), *t)).copied().unwrap_or(0) == heads.get(*t))
    })
}

struct Scale {
    markets: usize,
    rate: u32,
    run: Duration,
}

const SMALL: Scale = Scale {
    markets: 60,
    rate: 1_500,
    run: Duration::from_secs(6),
};

async fn sim_scenario(production: &str, faults: &[&str], scale: Scale) -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let truth_path = dir.path().join("truth.jsonl");
    let markets = scale.markets;
    let sim = kd_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets,
            rate: scale.rate,
            truth: Some(truth_path.clone()),
            create_every: Duration::ZERO,
            hot_markets: markets,
            market_limit_per_sub: 100,
            faults: faults
                .iter()
                .map(|f| parse_fault(f))
                .collect::<Result<Vec<_>, _>>()?,
            ..SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    let mut gatherers = Vec::new();
    let mut endpoints = Vec::new();
    for g in 0..3 {
        let mut cfg = gatherer_config(&format!("g{g}"), &dir.path().join(format!("g{g}")));
        cfg.rest_url = sim.rest_base();
        cfg.ws_url = sim.ws_url();
        cfg.connections = 2;
        cfg.markets_per_subscription = 64;
        let h = kd_gatherer::start(cfg, CancellationToken::new()).await?;
        endpoints.push(GathererEndpoint {
            id: format!("g{g}"),
            url: format!("http://{}", h.addr()),
            ..Default::default()
        });
        gatherers.push(h);
    }
    let dedup = kd_dedup::start(
        DedupConfig {
            production: kd_core::config::Secret::new(production),
            gatherers: endpoints,
            listen: "127.0.0.1:0".parse()?,
            long_poll_ms: 200,
            gatherer_retry_ms: 100,
            gatherer_retry_max_ms: 1_000,
            rest_url: sim.rest_base(),
            ..DedupConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    for h in &gatherers {
        let health = h.health().clone();
        let ok = kd_testkit::wait::until(Duration::from_secs(30), POLL, async || {
            health.markets_subscribed.load(Ordering::Relaxed) >= markets * 9 / 10
        })
        .await;
        assert!(ok, "a gatherer never subscribed");
    }
    tokio::time::sleep(scale.run).await;
    sim.stop_publishing().await;
    // Let the last messages and repairs land in every gatherer, then in production.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.flush_truth().await;
    let store = dedup.store().clone();
    assert!(
        kd_testkit::wait::until(Duration::from_secs(60), POLL, async || caught_up(
            &store, &gatherers
        )
        .await)
        .await,
        "production never caught up with the gatherers"
    );
    // Metadata came from the simulator's REST.
    assert!(!store.markets().await?.is_empty(), "no markets synced");

    let from = TimestampUs::from_micros(0);
    let to = TimestampUs::from_micros(i64::MAX / 2);
    let mut stored: std::collections::HashMap<Table, HashSet<Identity>> = Default::default();
    for t in [Table::Trades, Table::Deltas, Table::Tickers] {
        let rows = store.read_window(t, from, to).await?;
        let ids: HashSet<Identity> = rows.iter().map(Record::identity).collect();
        assert_eq!(ids.len(), rows.len(), "{t}: an identity stored twice");
        stored.insert(t, ids);
    }
    let mut delivered: std::collections::HashMap<Table, HashSet<Identity>> = Default::default();
    let mut published_trades = HashSet::new();
    for line in read_truth(&truth_path)? {
        if let TruthLine::Published {
            record,
            delivered: d,
        } = line?
        {
            let t = record.table();
            if t == Table::Trades {
                published_trades.insert(record.identity());
            }
            if d && matches!(t, Table::Trades | Table::Deltas | Table::Tickers) {
                delivered.entry(t).or_default().insert(record.identity());
            }
        }
    }
    let empty = HashSet::new();
    let trades = &stored[&Table::Trades];
    let delivered_trades = delivered.get(&Table::Trades).unwrap_or(&empty);
    assert!(!delivered_trades.is_empty(), "no trade delivered");
    let missing: Vec<_> = delivered_trades.difference(trades).take(3).collect();
    assert!(
        missing.is_empty(),
        "delivered trades missing from production: {missing:?}"
    );
    // Trades repaired over REST may include ones no WebSocket copy reached: still published.
    let invented: Vec<_> = trades.difference(&published_trades).take(3).collect();
    assert!(invented.is_empty(), "trades never published: {invented:?}");
    // Deltas as a multiset of (ticker, time, side, price, delta): `occurrence` numbers what a
    // gatherer saw, so when no gatherer saw the first of two identical changes in one
    // microsecond (sent before it subscribed), the second is numbered 0 rather than 1 — the
    // same change, differently labelled.
    let delta_counts = |ids: &HashSet<Identity>| {
        let mut m: std::collections::HashMap<(String, i64, kd_core::Side, i64, i64), u32> =
            Default::default();
        for id in ids {
            if let Identity::Delta {
                ticker,
                exchange_ts,
                side,
                price,
                delta,
                ..
            } = id
            {
                *m.entry((ticker.clone(), *exchange_ts, *side, *price, *delta))
                    .or_default() += 1;
            }
        }
        m
    };
    let want_deltas = delta_counts(delivered.get(&Table::Deltas).unwrap_or(&empty));
    let have_deltas = delta_counts(&stored[&Table::Deltas]);
    assert!(!want_deltas.is_empty(), "no delta delivered");
    let differ: Vec<_> = want_deltas
        .iter()
        .filter(|(k, n)| have_deltas.get(*k) != Some(*n))
        .chain(
            have_deltas
                .iter()
                .filter(|(k, _)| !want_deltas.contains_key(*k)),
        )
        .take(3)
        .collect();
    assert!(
        differ.is_empty(),
        "deltas differ from the ground truth: {differ:?}"
    );
    let t = Table::Tickers;
    let want = delivered.get(&t).unwrap_or(&empty);
    let have = &stored[&t];
    assert!(!want.is_empty(), "no {t} delivered");
    let missing: Vec<_> = want.difference(have).take(3).collect();
    let extra: Vec<_> = have.difference(want).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{t}: missing {missing:?}, extra {extra:?}"
    );
    println!(
        "production: {} trades, {} deltas, {} tickers — equal to the ground truth",
        trades.len(),
        stored[&Table::Deltas].len(),
        stored[&Table::Tickers].len()
    );
    // Exchange time → production commit, per row (the summary's quantiles).
    for line in kd_core::telemetry::render_metrics().lines() {
        if line.starts_with("dedup_commit_latency_seconds") {
            println!("{line}");
        }
    }
    dedup.stop().await?;
    for h in gatherers {
        h.stop().await?;
    }
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_three_gatherers_postgres_with_drops() -> TestResult {
    let db = TestDb::create("e2e_sim").await?;
    sim_scenario(&db.url, &["ws-drop:0.02"], SMALL).await?;
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_three_gatherers_sqlite_with_drops() -> TestResult {
    let dir = tempfile::tempdir()?;
    sim_scenario(
        &format!("sqlite://{}", dir.path().join("p.db").display()),
        &["ws-drop:0.02"],
        SMALL,
    )
    .await
}

/// The latency figure of issue 6: 5,000 messages/s for 30 s through three gatherers into
/// PostgreSQL; prints the exchange → production quantiles.
/// `cargo test --release -p kd-dedup --test it -- --ignored --nocapture latency`
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn latency_at_5000_messages_per_second() -> TestResult {
    let db = TestDb::create("e2e_latency").await?;
    let scale = Scale {
        markets: 500,
        rate: 5_000,
        run: Duration::from_secs(30),
    };
    sim_scenario(&db.url, &[], scale).await?;
    db.drop_db().await?;
    Ok(())
}

/// Runs a deduplicator from the configuration in the environment (only in the child process).
#[test]
fn child_dedup() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(json) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let config: DedupConfig = serde_json::from_str(&json)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(kd_dedup::run(config, CancellationToken::new()))?;
    Ok(())
}

fn spawn_child(config: &DedupConfig) -> Result<Child, Box<dyn std::error::Error + Send + Sync>> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, serde_json::to_string(config)?)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?)
}

async fn kill_9_scenario(production: &str) -> TestResult {
    let cluster = Cluster::start(3).await?;
    let published = stream(40_000, BASE_US);
    let mut everything = published.clone();
    for g in 0..3 {
        let subset: Vec<Record> = published
            .iter()
            .enumerate()
            .filter(|(i, _)| sees(g, *i))
            .map(|(_, r)| r.clone())
            .collect();
        cluster.feed(g, &subset).await?;
        let gaps = gaps_of(g, 5, BASE_US);
        cluster.feed(g, &gaps).await?;
        everything.extend(gaps);
    }
    let expected = expected_counts(&everything);
    let total: u64 = expected.values().sum();
    let mut config = cluster.dedup_config(production);
    config.batch_size = 2_000;
    config.max_transaction_rows = 6_000;
    let reader = store::open(production).await?;
    reader.migrate().await?;
    // Kill -9 twice while rows are being written, then let a third process finish.
    for round in 1..=2_u64 {
        let mut child = spawn_child(&config)?;
        let ok = kd_testkit::wait::until(Duration::from_secs(60), POLL, async || {
            let mut n = 0;
            for t in Table::ALL {
                n += reader.count(t).await.unwrap_or(0);
            }
            n >= round * total / 3
        })
        .await;
        child.kill()?; // SIGKILL
        let _ = child.wait();
        assert!(
            ok,
            "round {round}: the child wrote too little before the deadline"
        );
    }
    let mut child = spawn_child(&config)?;
    let counts = wait_for_counts(&reader, &expected, Duration::from_secs(90)).await?;
    child.kill()?;
    let _ = child.wait();
    assert_eq!(counts, expected);
    assert_production_equals(&reader, &everything).await?;
    // Cursors are consistent: never beyond a gatherer's head.
    let cursors = reader.cursors().await?;
    for (g, h) in cluster.gatherers.iter().enumerate() {
        let heads = *h.heads().borrow();
        for t in Table::ALL {
            let c = cursors.get(&(format!("g{g}"), t)).copied().unwrap_or(0);
            assert!(c <= heads.get(t), "cursor beyond head for g{g}/{t}");
        }
    }
    cluster.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_dedup_process_postgres() -> TestResult {
    let db = TestDb::create("e2e_kill9").await?;
    kill_9_scenario(&db.url).await?;
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_dedup_process_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    kill_9_scenario(&format!("sqlite://{}", dir.path().join("p.db").display())).await
}
