//! The collecting side wired together: registry → connection manager → connections, each with
//! its router → writer queue.

use crate::clock::Clock;
use crate::config::GathererConfig;
use crate::connection::SessionError;
use crate::connection::{ConnectionManager, PoolSettings};
use crate::health::Health;
use crate::poller;
use crate::registry::{Registry, RegistryError};
use crate::repair::{Downtime, RecentTrades, Repair};
use crate::router::RouterShared;
use crate::writer::WriterInput;
use kd_kalshi::auth::{AuthError, Signer};
use kd_kalshi::rest::{RestClient, RestConfig, RestError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Largest frame the router accepts; bigger ones are counted as `oversized` and skipped.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// Why collection stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("private key: {0}")]
    Key(#[from] AuthError),
    #[error("REST client: {0}")]
    Rest(#[from] RestError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Connection(#[from] SessionError),
}

/// Loads the signer the configuration names (refusing a key file others can read).
pub fn signer(config: &GathererConfig) -> Result<Option<Signer>, AuthError> {
    match &config.private_key_path {
        Some(path) => Ok(Some(Signer::from_file(config.key_id.expose(), path)?)),
        None => Ok(None),
    }
}

/// Collects until `shutdown`. Returns after every record sender it held is dropped.
///
/// `downtime` (from a previous run's store) is recorded as a gap and its trades backfilled over
/// REST once the gatherer knows its clock's offset from the exchange.
pub async fn run(
    config: &GathererConfig,
    input: WriterInput,
    health: Arc<Health>,
    clock: Arc<Clock>,
    downtime: Option<Downtime>,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let signer = signer(config)?;
    let mut rest_config = RestConfig::new(config.rest_url.clone());
    rest_config.maintenance = config.maintenance();
    let rest = RestClient::new(rest_config, signer.clone())?;
    let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
    let (gaps_tx, gaps_rx) = mpsc::unbounded_channel();
    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    let recent = Arc::new(RecentTrades::default());
    let repair = Repair {
        rest: rest.clone(),
        records: input.records.clone(),
        recent: recent.clone(),
        notices: gaps_rx,
        policy: config.repair_backoff(),
        clock: clock.clone(),
        control: input.control.clone(),
        gatherer: config.gatherer_id.clone(),
        health: health.clone(),
    };
    let poller_records = input.records.clone();
    let shared = RouterShared {
        gatherer: config.gatherer_id.clone(),
        records: input.records,
        control: input.control,
        health: health.clone(),
        lifecycle: lifecycle_tx,
        gaps: gaps_tx,
        recent,
        clock: clock.clone(),
        backpressure: Duration::from_millis(config.router_backpressure_ms),
        max_frame_bytes: MAX_FRAME_BYTES,
        no_price_scale: config.no_price_scale,
    };
    // Stop everything when one part halts (bad credentials), not only on the operator's signal.
    let stop = shutdown.child_token();
    let manager = ConnectionManager::start(
        PoolSettings {
            url: config.ws_url.clone(),
            signer: signer.map(Arc::new),
            connections: config.connections,
            per_sub_limit: config.markets_per_subscription,
            silence: Duration::from_secs(config.silence_timeout_secs),
            policy: config.connection_backoff(),
            ignore_markets: config.ignore_markets.clone(),
        },
        shared,
        health.clone(),
        &stop,
    );
    let mut registry = Registry::new(
        rest.clone(),
        Duration::from_secs(config.reconcile_interval_secs),
        lifecycle_rx,
        changes_tx,
        health,
    );
    registry.policy = config.registry_backoff();
    let repair_task = tokio::spawn(repair.run(downtime, stop.clone()));
    let poller_task = (config.snapshot_poll_interval_mins > 0).then(|| {
        let interval = Duration::from_secs(config.snapshot_poll_interval_mins * 60);
        tokio::spawn(poller::run(
            rest,
            registry.list.clone(),
            poller_records,
            clock,
            interval,
            config.poller_backoff(),
            stop.clone(),
        ))
    });
    let registry_stop = stop.clone();
    let registry_task = tokio::spawn(async move {
        let result = registry.run(registry_stop.clone()).await;
        if result.is_err() {
            registry_stop.cancel();
        }
        result
    });
    let connections = manager.run(changes_rx, stop.clone()).await;
    stop.cancel();
    let registry = registry_task.await;
    if let Err(e) = repair_task.await {
        tracing::error!(error = %e, "repair task failed");
    }
    if let Some(task) = poller_task
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "snapshot poller failed");
    }
    connections?;
    match registry {
        Ok(r) => r?,
        Err(e) => tracing::error!(error = %e, "registry task failed"),
    }
    Ok(())
}
