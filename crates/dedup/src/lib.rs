//! The deduplicator: merges every gatherer's copy of the feed into one production store, each
//! record exactly once (DESIGN §4).
//!
//! # Layout
//! - [`config`]: what the operator writes (`DedupConfig`), validated with the key named.
//! - [`store`]: the production store, re-exported from `kd-production` (which owns the
//!   schema, migrations, both backends, reads and writes), so `kd_dedup::store::…` paths keep
//!   working.
//! - [`pull_client`]: the gatherer pull API, client side; [`pull_tls`]: its per-gatherer CA and
//!   client certificate, and the cause of a failed request in words.
//! - [`merge`]: batches of several gatherers → unique records + cursor moves (pure).
//! - `sync`: pullers and writers per table; retries; acknowledgements after commit; a new
//!   gatherer store id starts that gatherer's cursors over.
//! - `quarantine`: rows that must not block their table (unreadable, not storable, refused),
//!   isolated and filed in production's `quarantine`.
//! - [`progress`]: how far production is complete per gatherer (`sync_progress`), proved from
//!   complete pull answers once their rows are committed; the exporter waits for it.
//! - [`metadata`]: series/events/markets from Kalshi REST, upserted latest-wins.
//! - [`health`]: the state behind `/health` and the gauges; [`server`]: the HTTP routes.
//! - [`events`]: every observable event as a type whose `emit()` logs and counts it together,
//!   and the typed `kind` of each counted failure.
//! - [`metrics`]: every metric name.
//! - [`cli`]: `kalshi-data dedup` and `kalshi-data migrate`.

pub mod cli;
pub mod config;
pub mod events;
pub mod health;
pub mod merge;
pub mod metadata;
pub mod metrics;
pub mod progress;
pub mod pull_client;
pub mod pull_tls;
pub mod server;
pub use kd_production as store;
mod quarantine;
mod sync;

pub use config::{DedupConfig, GathererEndpoint};
pub use kd_production::{ConnectionUsage, CursorUpdate, InsertOutcome, Store, StoreError, open};

use crate::events::{
    ConnectionSampleFailed, ConnectionsSampled, InternalEvent, PartitionsFailed, PingFailed,
    PrepareFailed,
};
use crate::health::Health;
use crate::pull_client::PullClient;
use kd_core::backoff::{Backoff, BackoffPolicy};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// Why the deduplicator could not start.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error(transparent)]
    Config(#[from] kd_core::config::ConfigError),
    #[error("production store: {0}")]
    Store(#[from] StoreError),
    #[error("gatherer client: {0}")]
    Client(#[from] pull_client::PullError),
    #[error("Kalshi REST client: {0}")]
    Rest(#[from] kd_kalshi::rest::RestError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the deduplicator task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A running deduplicator.
#[derive(Debug)]
pub struct DedupHandle {
    addr: SocketAddr,
    health: Arc<Health>,
    store: Store,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl DedupHandle {
    /// Where `/health`, `/ready` and `/metrics` listen.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live health figures.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The production store it writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Asks it to stop (an in-flight transaction is abandoned: it rolls back and replays).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every task has stopped.
    pub async fn wait(self) -> Result<(), DedupError> {
        Ok(self.task.await?)
    }

    /// Stops and waits.
    pub async fn stop(self) -> Result<(), DedupError> {
        self.shutdown();
        self.wait().await
    }

    /// Kills every task at its next await point, like a crash (tests). Whatever was not
    /// committed is replayed by the next start.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Runs the deduplicator until `shutdown` is cancelled.
pub async fn run(config: DedupConfig, shutdown: CancellationToken) -> Result<(), DedupError> {
    let handle = start(config, shutdown.clone()).await?;
    tracing::info!(addr = %handle.addr(), "deduplicator serving /health, /ready, /metrics");
    // systemd: ready once serving; the watchdog pings from this runtime while it turns.
    kd_core::sd_notify::spawn(|| true, shutdown);
    handle.wait().await
}

/// Starts the deduplicator: validates the configuration, binds the HTTP server (port 0 picks
/// one: see [`DedupHandle::addr`]) and returns; connecting to production (retried forever),
/// migrating and syncing happen in the background.
pub async fn start(
    config: DedupConfig,
    shutdown: CancellationToken,
) -> Result<DedupHandle, DedupError> {
    config.validate()?;
    let _ = kd_core::telemetry::metrics_handle();
    events::QuarantineCounted.emit();
    let shutdown = shutdown.child_token();
    let store = kd_production::open(config.production.expose()).await?;
    let slack = Duration::from_millis(config.pull_timeout_ms);
    let clients = config
        .gatherers
        .iter()
        .map(|g| PullClient::new(g.clone(), slack))
        .collect::<Result<Vec<_>, _>>()?;
    let rest = if config.rest_url.is_empty() {
        None
    } else {
        Some(kd_kalshi::rest::RestClient::new(
            kd_kalshi::rest::RestConfig::new(config.rest_url.clone()),
            None,
        )?)
    };
    let ids: Vec<(String, String)> = config
        .gatherers
        .iter()
        .map(|g| (g.id.clone(), g.url.clone()))
        .collect();
    let health = Arc::new(Health::new(&ids, store.backend()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DedupError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DedupError::Bind {
        addr: config.listen,
        source,
    })?;

    let mut tasks = JoinSet::new();
    let app = server::router(Arc::clone(&health));
    let server_stop = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });

    let config = Arc::new(config);
    let task_store = store.clone();
    let task_health = Arc::clone(&health);
    let task_shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        main_loop(
            config,
            task_store,
            task_health,
            clients,
            rest,
            tasks,
            task_shutdown,
        )
        .await;
    });
    Ok(DedupHandle {
        addr,
        health,
        store,
        shutdown,
        task,
    })
}

/// Connects (retrying forever), migrates, loads cursors, then runs every task until shutdown.
/// Owning the JoinSet here means aborting this task aborts them all.
async fn main_loop(
    config: Arc<DedupConfig>,
    store: Store,
    health: Arc<Health>,
    clients: Vec<PullClient>,
    rest: Option<kd_kalshi::rest::RestClient>,
    mut tasks: JoinSet<()>,
    shutdown: CancellationToken,
) {
    let prepared = retry_production(&health, &shutdown, "prepare production", || async {
        if config.migrate_on_start {
            store.migrate().await?;
        } else if store.schema_version().await? == 0 {
            return Err(StoreError::SchemaMissing(
                "run `kalshi-data migrate` or set migrate_on_start",
            ));
        }
        store
            .ensure_partitions_ahead(config.partitions_ahead_days)
            .await?;
        let cursors = store.cursors().await?;
        let stores = store.cursor_stores().await?;
        health.quarantine_loaded(&store.quarantine_counts().await?);
        Ok((cursors, stores))
    })
    .await;
    if let Some((cursors, stores)) = prepared {
        health.set_ready();
        let ctx = Arc::new(sync::SyncContext {
            store: store.clone(),
            health: Arc::clone(&health),
            clients,
            config: Arc::clone(&config),
            progress: Arc::default(),
        });
        sync::spawn(ctx, &cursors, &stores, &mut tasks, &shutdown);
        tasks.spawn(housekeeping(
            store.clone(),
            Arc::clone(&health),
            config.partitions_ahead_days,
            shutdown.clone(),
        ));
        if matches!(store, Store::Postgres(_)) {
            tasks.spawn(connection_gauges(store.clone(), shutdown.clone()));
        }
        if let Some(rest) = rest {
            tasks.spawn(metadata::run(
                rest,
                store.clone(),
                Arc::clone(&health),
                Duration::from_secs(config.metadata_interval_secs),
                shutdown.clone(),
            ));
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done
            && e.is_panic()
        {
            tracing::error!(error = %e, "a deduplicator task panicked; stopping");
            shutdown.cancel();
        }
    }
}

/// Calls `f` until it succeeds (DATABASE backoff, forever); `None` on shutdown.
async fn retry_production<T, F, Fut>(
    health: &Health,
    shutdown: &CancellationToken,
    what: &str,
    mut f: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(BackoffPolicy::DATABASE);
    loop {
        let result = tokio::select! {
            r = f() => r,
            _ = shutdown.cancelled() => return None,
        };
        match result {
            Ok(v) => {
                health.production_ok();
                return Some(v);
            }
            Err(e) => {
                health.production_failed(e.to_string());
                let delay = backoff.next_delay();
                PrepareFailed {
                    what,
                    error: &e,
                    retry_in: delay,
                }
                .emit();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

/// How often the production server's connection figures are sampled.
const CONNECTION_SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// Samples connections in use and `max_connections` on the production PostgreSQL server into
/// the `dedup_pg_*` gauges (ProductionConnectionsHigh). A failed sample is counted and the
/// gauges keep their last value; the next sample comes at the next tick either way.
async fn connection_gauges(store: Store, shutdown: CancellationToken) {
    loop {
        match store.connection_usage().await {
            Ok(Some(usage)) => ConnectionsSampled {
                in_use: usage.in_use,
                max: usage.max,
            }
            .emit(),
            Ok(None) => return,
            Err(e) => ConnectionSampleFailed { error: &e }.emit(),
        }
        tokio::select! {
            _ = tokio::time::sleep(CONNECTION_SAMPLE_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Keeps partitions created ahead (hourly) and production connectivity known while idle.
async fn housekeeping(
    store: Store,
    health: Arc<Health>,
    days_ahead: u32,
    shutdown: CancellationToken,
) {
    let mut tick = 0_u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = shutdown.cancelled() => return,
        }
        tick += 1;
        match store.ping().await {
            Ok(()) => health.production_ok(),
            Err(e) => {
                PingFailed { error: &e }.emit();
                health.production_failed(e.to_string());
                continue;
            }
        }
        if tick.is_multiple_of(360)
            && let Err(e) = store.ensure_partitions_ahead(days_ahead).await
        {
            PartitionsFailed { error: &e }.emit();
        }
    }
}
