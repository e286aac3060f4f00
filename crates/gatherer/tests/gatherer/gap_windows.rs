//! A gatherer's gap records are its own account of what it may have missed: `verify` and users
//! excuse an absent order-book change only inside a gap window of every gatherer. So for each
//! gatherer, every change the exchange delivered to anyone after that gatherer's first snapshot
//! of the market, but that the gatherer did not store, must lie inside one of its gap windows.
//!
//! Two gatherers run against one simulator, so that a change one of them never received is
//! still "delivered" in the ground truth. Faults: messages dropped per connection (sequence
//! gaps, answered by `get_snapshot`, whose snapshot folds in changes the exchange has not sent
//! yet) and connections closed (resubscribed with new snapshots).

use crate::common;

use common::{TestResult, all_rows, gatherer_config, wait_until};
use kd_core::{Gap, OrderbookDelta, Record, Side, Table, TimestampUs};
use kd_sim::{SimConfig, TruthLine, read_truth};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type DeltaKey = (String, i64, bool, i64, i64);

fn delta_key(d: &OrderbookDelta) -> DeltaKey {
    (
        d.ticker.clone(),
        d.exchange_ts.micros(),
        d.side == Side::Yes,
        d.price.units(),
        d.delta.hundredths(),
    )
}

/// What one gatherer stored: deltas as a multiset (occurrence numbers are per gatherer), its
/// first snapshot time per market, and its gaps.
struct Stored {
    name: String,
    deltas: HashMap<DeltaKey, u32>,
    first_snapshot: HashMap<String, TimestampUs>,
    gaps: Vec<Gap>,
}

impl Stored {
    fn load(name: &str, store: &Path) -> Result<Stored, Box<dyn std::error::Error + Send + Sync>> {
        let mut out = Stored {
            name: name.to_string(),
            deltas: HashMap::new(),
            first_snapshot: HashMap::new(),
            gaps: Vec::new(),
        };
        for table in [Table::Deltas, Table::Snapshots, Table::Gaps] {
            for row in all_rows(store, table)? {
                match row.record {
                    Record::Delta(d) => *out.deltas.entry(delta_key(&d)).or_default() += 1,
                    Record::Snapshot(s) => {
                        let first = out
                            .first_snapshot
                            .entry(s.ticker.clone())
                            .or_insert(s.exchange_ts);
                        *first = (*first).min(s.exchange_ts);
                    }
                    Record::Gap(g) => out.gaps.push(g),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    fn take(&mut self, d: &OrderbookDelta) -> bool {
        match self.deltas.get_mut(&delta_key(d)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn covered(&self, d: &OrderbookDelta) -> bool {
        self.gaps.iter().any(|g| {
            g.names(&d.ticker)
                && matches!(g.channel.as_str(), "orderbook_delta" | "" | "*" | "all")
                && g.start <= d.exchange_ts
                && d.exchange_ts <= g.end
        })
    }

    fn reasons(&self) -> HashMap<&str, usize> {
        let mut out = HashMap::new();
        for g in &self.gaps {
            *out.entry(g.reason.as_str()).or_default() += 1;
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_a_gatherer_lacks_lies_inside_its_own_gaps() -> TestResult {
    // Runs a gatherer: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    let dir = tempfile::tempdir()?;
    let truth_path = dir.path().join("truth.jsonl");
    let sim = kd_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets: 150,
            rate: 3_000,
            truth: Some(truth_path.clone()),
            hot_markets: 150,
            market_limit_per_sub: 100,
            faults: ["ws-drop:0.01", "ws-close:1006:3"]
                .iter()
                .map(|f| kd_sim::parse_fault(f))
                .collect::<Result<Vec<_>, _>>()?,
            ..SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    let mut gatherers = Vec::new();
    for name in ["g-a", "g-b"] {
        let store = dir.path().join(name);
        let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
        config.gatherer_id = name.to_string();
        config.markets_per_subscription = 100;
        let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
        gatherers.push((name, store, gatherer));
    }
    for (name, _, gatherer) in &gatherers {
        let health = gatherer.health().clone();
        let subscribed = wait_until(Duration::from_secs(30), || {
            health.markets_subscribed.load(Ordering::Relaxed) >= 135
        })
        .await;
        assert!(subscribed, "{name} did not subscribe its markets");
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    sim.stop_publishing().await;
    for (_, _, gatherer) in &gatherers {
        let mut heads = gatherer.heads();
        while let Ok(Ok(())) =
            tokio::time::timeout(Duration::from_millis(1_000), heads.changed()).await
        {}
    }
    sim.flush_truth().await;
    let mut stored = Vec::new();
    for (name, store, gatherer) in gatherers {
        gatherer.stop().await?;
        stored.push(Stored::load(name, &store)?);
    }
    let stats = sim.stats().await;
    sim.shutdown().await?;

    let mut checked = 0_u64;
    let mut uncovered: Vec<String> = Vec::new();
    for line in read_truth(&truth_path)? {
        let TruthLine::Published {
            record: Record::Delta(d),
            delivered: true,
        } = line?
        else {
            continue;
        };
        for g in &mut stored {
            // Before its first snapshot a gatherer was not subscribed to the market.
            if g.first_snapshot
                .get(&d.ticker)
                .is_none_or(|first| d.exchange_ts <= *first)
            {
                continue;
            }
            checked += 1;
            if !g.take(&d) && !g.covered(&d) && uncovered.len() < 10 {
                let near: Vec<String> = g
                    .gaps
                    .iter()
                    .filter(|gap| {
                        gap.names(&d.ticker)
                            && gap.channel == "orderbook_delta"
                            && gap.start.micros() - 150_000 < d.exchange_ts.micros()
                            && d.exchange_ts.micros() < gap.end.micros() + 150_000
                    })
                    .map(|gap| format!("{} {}..{} {}", gap.reason, gap.start, gap.end, gap.channel))
                    .collect();
                uncovered.push(format!(
                    "{}: {} {} {:?} {} {}; its gaps within 150 ms: {near:?}",
                    g.name,
                    d.ticker,
                    d.exchange_ts,
                    d.side,
                    d.price.units(),
                    d.delta.hundredths()
                ));
            }
        }
    }
    println!("sim stats: {stats:?}");
    for g in &stored {
        println!("{} gaps by reason: {:?}", g.name, g.reasons());
    }
    assert!(checked > 10_000, "too few changes to judge: {checked}");
    assert!(
        stored
            .iter()
            .any(|g| g.reasons().contains_key("snapshot_refresh")),
        "no fresh snapshot was asked for: the scenario did not exercise the case"
    );
    assert!(
        uncovered.is_empty(),
        "changes a gatherer lacks outside its gaps: {uncovered:#?}"
    );
    Ok(())
}
