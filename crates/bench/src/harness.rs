//! Starting the real components in-process: a simulator, gatherers against it, a deduplicator.

use crate::BenchError;
use kd_core::Table;
use kd_dedup::{DedupConfig, DedupHandle, GathererEndpoint};
use kd_gatherer::{GathererConfig, GathererHandle};
use kd_sim::{SimConfig, SimHandle};
use std::net::SocketAddr;
use std::path::Path;
use tokio_util::sync::CancellationToken;

const LOOPBACK_ANY: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// A simulator on a free loopback port.
pub async fn sim(
    markets: usize,
    rate: u32,
    shutdown: &CancellationToken,
) -> Result<SimHandle, BenchError> {
    let config = SimConfig {
        listen: LOOPBACK_ANY,
        markets,
        rate,
        // Steady load: no rate bursts, no markets created mid-run.
        burst_factor: 1,
        create_every: std::time::Duration::ZERO,
        hot_markets: markets.clamp(1, 5_000),
        ..SimConfig::default()
    };
    kd_sim::start(config, shutdown.clone())
        .await
        .map_err(|e| BenchError::stage("simulator", e))
}

/// The gatherer configuration the bench uses against `sim` (REST poller off: it would add
/// snapshot rows that are not part of the measured stream).
pub fn gatherer_config(sim: &SimHandle, id: &str, dir: &Path) -> GathererConfig {
    GathererConfig {
        gatherer_id: id.into(),
        rest_url: sim.rest_base(),
        ws_url: sim.ws_url(),
        data_dir: dir.to_path_buf(),
        listen: LOOPBACK_ANY,
        snapshot_poll_interval_mins: 0,
        ..GathererConfig::default()
    }
}

/// A gatherer on `sim`, its store in `dir`.
pub async fn gatherer(
    sim: &SimHandle,
    id: &str,
    dir: &Path,
    shutdown: &CancellationToken,
) -> Result<GathererHandle, BenchError> {
    kd_gatherer::start(gatherer_config(sim, id, dir), shutdown.clone())
        .await
        .map_err(|e| BenchError::stage("gatherer", e))
}

/// A deduplicator merging `gatherers` into `production`.
pub async fn dedup(
    production: &str,
    gatherers: &[(&str, &GathererHandle)],
    shutdown: &CancellationToken,
) -> Result<DedupHandle, BenchError> {
    let config = DedupConfig {
        production: kd_core::config::Secret::new(production),
        gatherers: gatherers
            .iter()
            .map(|(id, g)| GathererEndpoint {
                id: (*id).to_string(),
                url: format!("http://{}", g.addr()),
                ..Default::default()
            })
            .collect(),
        listen: LOOPBACK_ANY,
        long_poll_ms: 50,
        ..DedupConfig::default()
    };
    kd_dedup::start(config, shutdown.clone())
        .await
        .map_err(|e| BenchError::stage("deduplicator", e))
}

/// Sum of a gatherer's committed heads over the record tables (gaps excluded).
pub fn committed(g: &GathererHandle) -> u64 {
    let heads = *g.heads().borrow();
    [
        Table::Trades,
        Table::Deltas,
        Table::Snapshots,
        Table::Tickers,
        Table::Lifecycle,
    ]
    .into_iter()
    .map(|t| heads.get(t))
    .sum()
}

/// Rows in production over the tables the corpus fills.
pub async fn production_rows(store: &kd_production::Store) -> Result<u64, BenchError> {
    let mut n = 0;
    for t in [
        Table::Trades,
        Table::Deltas,
        Table::Tickers,
        Table::Snapshots,
    ] {
        n += store
            .count(t)
            .await
            .map_err(|e| BenchError::stage("production count", e))?;
    }
    Ok(n)
}
