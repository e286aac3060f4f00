//! The registry subscribes new markets page by page while it lists them over REST (issue 21:
//! at a million markets the listing alone takes ~20 s; subscribing only after it doubled the
//! time until every market was collected). Against the simulator's real REST API: every page
//! of new markets reaches the connection manager as its own change, and each market once.

use crate::common::small_sim;
use kd_gatherer::health::Health;
use kd_gatherer::registry::{MarketChange, Registry};
use kd_kalshi::rest::{RestClient, RestConfig};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[tokio::test]
async fn new_markets_are_subscribed_page_by_page() -> TestResult {
    // 2,500 markets: three pages of Kalshi's largest page (1,000).
    let sim = small_sim(2_500, 10, None).await?;
    let rest = RestClient::new(RestConfig::new(sim.rest_base()), None)?;
    let (_lifecycle_tx, lifecycle) = mpsc::unbounded_channel();
    let (changes_tx, mut changes) = mpsc::unbounded_channel();
    let health = Arc::new(Health::default());
    let registry = Registry::new(
        rest,
        Duration::from_secs(3_600),
        lifecycle,
        changes_tx,
        health.clone(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(registry.run(shutdown.clone()));

    let mut batches: Vec<usize> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !health.registry_synced.load(Ordering::Relaxed) || !changes.is_empty() {
        let change = tokio::time::timeout_at(deadline, changes.recv()).await;
        let Ok(Some(change)) = change else {
            if health.registry_synced.load(Ordering::Relaxed) {
                break;
            }
            return Err("the registry neither synced nor sent a change within 60 s".into());
        };
        match change {
            MarketChange::Subscribe { tickers, .. } => {
                for t in &tickers {
                    assert!(seen.insert(t.to_string()), "{t} announced twice");
                }
                batches.push(tickers.len());
            }
            MarketChange::Drop { tickers } => panic!("nothing closed, yet dropped {tickers:?}"),
        }
    }
    shutdown.cancel();
    task.await??;

    let open = health.markets_known.load(Ordering::Relaxed);
    assert!(
        open > 1_000,
        "listed {open} open markets: more than one page needed"
    );
    assert_eq!(seen.len(), open, "every open market announced once");
    // Before, one change of every market came after the last page.
    assert_eq!(
        batches.len(),
        open.div_ceil(1_000),
        "one change per page of at most 1,000 markets: {batches:?}"
    );
    assert!(batches.iter().all(|n| *n <= 1_000), "{batches:?}");
    Ok(())
}
