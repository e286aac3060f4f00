//! Real gatherers (in process, real HTTP, real SQLite stores) fed directly through their
//! writer queues, and a deduplicator configuration pointing at them.
#![allow(dead_code)]

use super::*;
use kd_core::Record;
use kd_dedup::config::{DedupConfig, GathererEndpoint};
use kd_dedup::store::Store;
use kd_gatherer::{GathererHandle, config::GathererConfig};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub gatherers: Vec<GathererHandle>,
    pub dirs: Vec<tempfile::TempDir>,
    pub shutdown: CancellationToken,
}

pub fn gatherer_config(id: &str, dir: &std::path::Path) -> GathererConfig {
    GathererConfig {
        gatherer_id: id.into(),
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or(GathererConfig::default().listen),
        // Nothing to collect from: the pipeline idles, records come through `test_sender`.
        rest_url: "http://127.0.0.1:9/trade-api/v2".into(),
        ws_url: "ws://127.0.0.1:9/trade-api/ws/v2".into(),
        ..GathererConfig::default()
    }
}

impl Cluster {
    pub async fn start(n: usize) -> Result<Cluster, Box<dyn std::error::Error + Send + Sync>> {
        let shutdown = CancellationToken::new();
        let mut gatherers = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir()?;
            let cfg = gatherer_config(&format!("g{i}"), dir.path());
            gatherers.push(kd_gatherer::start(cfg, shutdown.clone()).await?);
            dirs.push(dir);
        }
        Ok(Cluster {
            gatherers,
            dirs,
            shutdown,
        })
    }

    pub fn dedup_config(&self, production: &str) -> DedupConfig {
        DedupConfig {
            production: kd_core::config::Secret::new(production),
            gatherers: self
                .gatherers
                .iter()
                .enumerate()
                .map(|(i, g)| GathererEndpoint {
                    id: format!("g{i}"),
                    url: format!("http://{}", g.addr()),
                    ..Default::default()
                })
                .collect(),
            batch_size: 700,
            max_transaction_rows: 2_000,
            long_poll_ms: 200,
            gatherer_retry_ms: 100,
            gatherer_retry_max_ms: 1_000,
            listen: "127.0.0.1:0"
                .parse()
                .unwrap_or(DedupConfig::default().listen),
            ..DedupConfig::default()
        }
    }

    /// Sends `records` to gatherer `g`.
    pub async fn feed(&self, g: usize, records: &[Record]) -> TestResult {
        let sender = self.gatherers[g].test_sender().ok_or("gatherer stopping")?;
        for r in records {
            sender.send(r.clone()).await?;
        }
        Ok(())
    }

    pub async fn stop(self) -> TestResult {
        self.shutdown.cancel();
        for g in self.gatherers {
            g.wait().await?;
        }
        Ok(())
    }
}

/// A mixed stream: every table, `n` records of the busiest.
pub fn stream(n: i64, start: i64) -> Vec<Record> {
    let mut all = Vec::new();
    for (table, share) in [
        (Table::Deltas, 1),
        (Table::Trades, 3),
        (Table::Tickers, 4),
        (Table::Snapshots, 20),
        (Table::Lifecycle, 20),
    ] {
        all.extend(records(table, n / share, start));
    }
    all.sort_by_key(|r| r.exchange_ts());
    all
}

/// Which records gatherer `g` of 3 sees: each misses a different fifth, every record is seen
/// by at least one.
pub fn sees(g: usize, i: usize) -> bool {
    !(i + g).is_multiple_of(5)
}

/// The gap records gatherer `g` reports (its own observations; all are kept).
pub fn gaps_of(g: usize, n: i64, start: i64) -> Vec<Record> {
    records(Table::Gaps, n, start)
        .into_iter()
        .map(|r| match r {
            Record::Gap(mut gap) => {
                gap.gatherer = format!("g{g}");
                Record::Gap(gap)
            }
            other => other,
        })
        .collect()
}

/// Expected rows per table of a set of records (unique identities).
pub fn expected_counts(records: &[Record]) -> HashMap<Table, u64> {
    let mut seen = HashSet::new();
    let mut counts = HashMap::new();
    for r in records {
        if seen.insert(r.identity()) {
            *counts.entry(r.table()).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits until production holds `expected` rows in every table (deadline), returning the
/// final counts.
pub async fn wait_for_counts(
    store: &Store,
    expected: &HashMap<Table, u64>,
    timeout: Duration,
) -> Result<HashMap<Table, u64>, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut counts = HashMap::new();
        for t in Table::ALL {
            counts.insert(t, store.count(t).await.unwrap_or(0));
        }
        let done = Table::ALL
            .iter()
            .all(|t| counts.get(t).copied().unwrap_or(0) == expected.get(t).copied().unwrap_or(0));
        if done || tokio::time::Instant::now() >= deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Production equals `records` exactly (as sets, per table), and no trade_id twice.
pub async fn assert_production_equals(store: &Store, records: &[Record]) -> TestResult {
    let from = kd_core::TimestampUs::from_micros(i64::MIN / 2);
    let to = kd_core::TimestampUs::from_micros(i64::MAX / 2);
    for table in Table::ALL {
        let mut seen = HashSet::new();
        let expected: Vec<Record> = records
            .iter()
            .filter(|r| r.table() == table && seen.insert(r.identity()))
            .cloned()
            .collect();
        let stored = store.read_window(table, from, to).await?;
        assert_eq!(stored.len(), expected.len(), "{table}: row count");
        if table == Table::Trades {
            let ids: HashSet<String> = stored
                .iter()
                .filter_map(|r| match r {
                    Record::Trade(t) => Some(t.trade_id.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(ids.len(), stored.len(), "a trade_id stored twice");
        }
        assert!(
            sorted(stored) == sorted(expected),
            "{table}: production differs from the published records"
        );
    }
    Ok(())
}
