//! The deduplicator against three real gatherers (HTTP pull API, SQLite local stores):
//! exactly-once into production on both backends, when each gatherer missed different
//! records, across abrupt restarts and production outages.

use crate::common::cluster::*;
use crate::common::*;
use kd_core::{Record, Table};
use kd_dedup::store::{self, Store};
use kd_testkit::pg::TestDb;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Feeds gatherer g the records it "sees", plus its own gap records.
async fn feed_all(
    cluster: &Cluster,
    published: &[Record],
    gap_base: i64,
) -> Result<Vec<Record>, Box<dyn std::error::Error + Send + Sync>> {
    let mut everything = published.to_vec();
    for g in 0..cluster.gatherers.len() {
        let subset: Vec<Record> = published
            .iter()
            .enumerate()
            .filter(|(i, _)| sees(g, *i))
            .map(|(_, r)| r.clone())
            .collect();
        cluster.feed(g, &subset).await?;
        let gaps = gaps_of(g, 5, gap_base);
        cluster.feed(g, &gaps).await?;
        everything.extend(gaps);
    }
    Ok(everything)
}

async fn check_cursors(store: &Store, cluster: &Cluster) -> TestResult {
    let cursors = store.cursors().await?;
    for (g, handle) in cluster.gatherers.iter().enumerate() {
        let heads = *handle.heads().borrow();
        for t in Table::ALL {
            let c = cursors.get(&(format!("g{g}"), t)).copied().unwrap_or(0);
            assert_eq!(c, heads.get(t), "cursor of g{g}/{t} vs the gatherer's head");
        }
    }
    Ok(())
}

async fn three_gatherers_each_record_once(production: &str) -> TestResult {
    let cluster = Cluster::start(3).await?;
    let published = stream(3_000, BASE_US);
    let everything = feed_all(&cluster, &published, BASE_US).await?;
    let dedup = kd_dedup::start(cluster.dedup_config(production), CancellationToken::new()).await?;
    let expected = expected_counts(&everything);
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(60)).await?;
    assert_eq!(counts, expected);
    assert_production_equals(dedup.store(), &everything).await?;
    // Cursors reach the heads; acks reach the gatherers (after the commit).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ok = check_cursors(dedup.store(), &cluster).await.is_ok();
        if ok || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check_cursors(dedup.store(), &cluster).await?;

    let base = format!("http://{}", dedup.addr());
    let health: serde_json::Value = reqwest::get(format!("{base}/health")).await?.json().await?;
    assert_eq!(health["production"]["connected"], true, "{health}");
    assert_eq!(health["gatherers"].as_array().map(|a| a.len()), Some(3));
    assert_eq!(health["gatherers"][0]["state"], "up", "{health}");
    assert!(
        health["gatherers"][1]["tables"]["deltas"]["committed"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(reqwest::get(format!("{base}/ready")).await?.status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    for name in [
        "dedup_records_polled_total",
        "dedup_records_written_total",
        "dedup_duplicates_total",
        "dedup_sync_lag_seconds",
        "dedup_gatherer_health",
        "dedup_rds_connected",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    if production.starts_with("postgres") {
        // Sampled as soon as production is ready: the deduplicator's own pool is counted.
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        };
        let in_use = value("dedup_pg_connections").ok_or("dedup_pg_connections missing")?;
        let max = value("dedup_pg_max_connections").ok_or("dedup_pg_max_connections missing")?;
        assert!(in_use >= 1.0 && in_use <= max, "{in_use} of {max}");
    }
    dedup.stop().await?;
    cluster.stop().await
}

async fn abrupt_restarts_lose_nothing(production: &str) -> TestResult {
    let cluster = Cluster::start(3).await?;
    let published = stream(12_000, BASE_US);
    let everything = feed_all(&cluster, &published, BASE_US).await?;
    let expected = expected_counts(&everything);
    let total: u64 = expected.values().sum();
    // Kill the deduplicator three times while it is writing, then let one finish.
    for round in 0..3 {
        let dedup =
            kd_dedup::start(cluster.dedup_config(production), CancellationToken::new()).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut n = 0;
            for t in Table::ALL {
                n += dedup.store().count(t).await.unwrap_or(0);
            }
            // Abort once this round has written its share: a transaction may well be in flight.
            if n >= (round + 1) * total / 5 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        dedup.abort().await;
    }
    let dedup = kd_dedup::start(cluster.dedup_config(production), CancellationToken::new()).await?;
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(60)).await?;
    assert_eq!(counts, expected);
    assert_production_equals(dedup.store(), &everything).await?;
    dedup.stop().await?;
    cluster.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_three_gatherers_each_record_once() -> TestResult {
    let db = TestDb::create("sync_once").await?;
    three_gatherers_each_record_once(&db.url).await?;
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_three_gatherers_each_record_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    three_gatherers_each_record_once(&format!("sqlite://{}", dir.path().join("p.db").display()))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_abrupt_restarts_lose_nothing() -> TestResult {
    let db = TestDb::create("sync_abort").await?;
    abrupt_restarts_lose_nothing(&db.url).await?;
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_abrupt_restarts_lose_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    abrupt_restarts_lose_nothing(&format!("sqlite://{}", dir.path().join("p.db").display())).await
}

/// PostgreSQL made unavailable (connections refused, open ones terminated) while gatherers
/// keep receiving; the deduplicator retries, then catches up completely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_retried_and_caught_up() -> TestResult {
    let db = TestDb::create("sync_outage").await?;
    let cluster = Cluster::start(3).await?;
    let first = stream(2_000, BASE_US);
    let mut everything = feed_all(&cluster, &first, BASE_US).await?;
    let dedup = kd_dedup::start(cluster.dedup_config(&db.url), CancellationToken::new()).await?;
    wait_for_counts(
        dedup.store(),
        &expected_counts(&everything),
        Duration::from_secs(60),
    )
    .await?;

    db.make_unavailable().await?;
    let second = stream(2_000, BASE_US + 86_400_000_000);
    everything.extend(feed_all(&cluster, &second, BASE_US + 86_400_000_000 + 1).await?);
    // Production is seen as down while the gatherers buffer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dedup.health().report().production.connected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outage never noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(dedup.health().report().status, "down");
    db.make_available().await?;

    let expected = expected_counts(&everything);
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(90)).await?;
    assert_eq!(counts, expected);
    assert_production_equals(dedup.store(), &everything).await?;
    assert!(dedup.health().report().production.connected);
    dedup.stop().await?;
    cluster.stop().await?;
    db.drop_db().await?;
    Ok(())
}

/// The SQLite variant: another process holds the write lock longer than the busy timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_production_is_retried_and_caught_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("p.db");
    let url = format!("sqlite://{}", path.display());
    let cluster = Cluster::start(3).await?;
    let first = stream(1_000, BASE_US);
    let mut everything = feed_all(&cluster, &first, BASE_US).await?;
    let dedup = kd_dedup::start(cluster.dedup_config(&url), CancellationToken::new()).await?;
    wait_for_counts(
        dedup.store(),
        &expected_counts(&everything),
        Duration::from_secs(60),
    )
    .await?;

    // Hold an exclusive lock for 12 s (the store waits 10 s, then fails and retries).
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let lock_path = path.clone();
    let locker = std::thread::spawn(move || -> Result<(), rusqlite::Error> {
        let conn = rusqlite::Connection::open(&lock_path)?;
        conn.execute_batch("BEGIN EXCLUSIVE")?;
        let _ = locked_tx.send(());
        std::thread::sleep(Duration::from_secs(12));
        conn.execute_batch("COMMIT")
    });
    locked_rx.await?;
    let second = stream(1_000, BASE_US + 86_400_000_000);
    everything.extend(feed_all(&cluster, &second, BASE_US + 86_400_000_000 + 1).await?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dedup.health().report().production.connected {
        assert!(tokio::time::Instant::now() < deadline, "lock never noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tokio::task::spawn_blocking(move || locker.join()).await?;
    let expected = expected_counts(&everything);
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(90)).await?;
    assert_eq!(counts, expected);
    assert_production_equals(dedup.store(), &everything).await?;
    dedup.stop().await?;
    cluster.stop().await
}

/// A gatherer that is down is skipped; the others carry on; it is picked up when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gatherer_is_skipped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let cluster = Cluster::start(2).await?;
    let published = records(Table::Trades, 500, BASE_US);
    cluster.feed(0, &published).await?;
    let mut config = cluster.dedup_config(&url);
    // A third gatherer nobody listens on.
    let dead_addr = kd_testkit::ports::unused_addr()?;
    config.gatherers.push(kd_dedup::GathererEndpoint {
        id: "gone".into(),
        url: format!("http://{dead_addr}"),
        ..Default::default()
    });
    let dedup = kd_dedup::start(config, CancellationToken::new()).await?;
    let mut expected = std::collections::HashMap::new();
    expected.insert(Table::Trades, 500);
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(30)).await?;
    assert_eq!(counts.get(&Table::Trades), Some(&500));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = dedup.health().report();
        if report.gatherers[2].state == "down" {
            assert_eq!(report.status, "degraded");
            assert_eq!(report.gatherers[0].state, "up");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead gatherer not reported down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dedup.stop().await?;
    cluster.stop().await?;
    let _ = store::open(&url).await?;
    Ok(())
}
