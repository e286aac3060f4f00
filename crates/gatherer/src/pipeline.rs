//! The collecting side wired together: registry → connection manager → connections, each with
//! its router → writer queue.

use crate::config::GathererConfig;
use crate::connection::session::SessionError;
use crate::connection::{ConnectionManager, PoolSettings};
use crate::health::Health;
use crate::registry::{Registry, RegistryError};
use crate::router::RouterShared;
use crate::writer::WriterInput;
use kd_core::backoff::BackoffPolicy;
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
pub async fn run(
    config: &GathererConfig,
    input: WriterInput,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let signer = signer(config)?;
    let rest = RestClient::new(RestConfig::new(config.rest_url.clone()), signer.clone())?;
    let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
    let (gaps_tx, mut gaps_rx) = mpsc::unbounded_channel();
    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    let shared = RouterShared {
        gatherer: config.gatherer_id.clone(),
        records: input.records,
        control: input.control,
        health: health.clone(),
        lifecycle: lifecycle_tx,
        gaps: gaps_tx,
        backpressure: Duration::from_millis(config.router_backpressure_ms),
        max_frame_bytes: MAX_FRAME_BYTES,
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
            policy: BackoffPolicy::CONNECTION,
        },
        shared,
        health.clone(),
        &stop,
    );
    let registry = Registry::new(
        rest,
        Duration::from_secs(config.reconcile_interval_secs),
        lifecycle_rx,
        changes_tx,
        health,
    );
    // Gap notices are recorded by the router; repair consumes them (drained here until then).
    let drain = tokio::spawn(async move { while gaps_rx.recv().await.is_some() {} });
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
    drain.abort();
    connections?;
    match registry {
        Ok(r) => r?,
        Err(e) => tracing::error!(error = %e, "registry task failed"),
    }
    Ok(())
}
