//! One gatherer: captures every market's order-book changes, trades, tickers and lifecycle
//! changes from Kalshi and keeps them in a durable local store until the deduplicator has
//! pulled and acknowledged them (DESIGN §3).
//!
//! # Layout
//! - [`config`]: what the operator writes (`GathererConfig`), validated with the key named.
//! - [`store`]: SQLite in WAL mode, one append-only table per record type, local sequences.
//! - [`writer`]: the single writer thread: bounded queue in, batched commits out (`mod.rs`:
//!   inputs and control; `commit_loop`: batching, retried commits, retention).
//! - [`pull_api`]: `GET /v1/pull/{table}`, `POST /v1/ack/{table}`, `/health`, `/ready`, `/metrics`.
//! - [`server`]: binds and serves those routes (TLS beyond loopback).
//! - [`health`]: the shared liveness figures behind `/health`.
//! - [`clock`]: the gatherer's wall clock and its measured offset from the exchange's.
//! - [`metrics`]: every metric name the gatherer exports.
//! - [`events`]: typed internal events (`emit()`): each writes its log line and its metrics.
//! - [`registry`]: the market list (REST sync, lifecycle, reconciliation): what to subscribe.
//! - [`connection`]: the WebSocket pool. [`connection::subscriptions`] is each connection's
//!   pure subscription state machine (events in, `kd_kalshi::ws::Command`s out, every error
//!   handled by its `ErrorCode`); [`connection::session`] the thin actor around it (socket,
//!   router, reconnect by the close-code table).
//! - [`repair`]: trade backfill over REST after gaps and downtime (books re-snapshot on their
//!   connection).
//! - [`poller`]: REST order books of every active market every N minutes.
//! - [`router`]: parse once (receive time on both clocks), route records to the writer
//!   (backpressure). Stages with their own state: [`router::gaps`] (sequence and gap tracking,
//!   typed [`router::gaps::GapRepair`]), drop windows, the snapshot hold, unknown-label capping.
//! - [`sequence`]: per-subscription sequence tracking and gap notices.
//! - [`pipeline`]: the collecting side (registry, connections, router) wired together.
//! - [`cli`]: the `kalshi-data gatherer` arguments.

pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod events;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod poller;
pub mod pull_api;
pub mod registry;
pub mod repair;
pub mod router;
pub mod sequence;
pub mod server;
pub mod store;
pub mod writer;

pub use config::GathererConfig;

use crate::health::Health;
use crate::store::{Heads, ReadPool, StoreError, WriteConn};
use crate::writer::{Writer, WriterControl, WriterSettings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a gatherer could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GathererError {
    #[error(transparent)]
    Config(#[from] kd_core::config::ConfigError),
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] kd_core::dir_lock::LockError),
    #[error("HTTP server: {0}")]
    Server(#[from] server::ServerError),
    #[error("HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot start the writer thread: {0}")]
    WriterThread(#[source] std::io::Error),
    #[error("collection halted: {0}")]
    Pipeline(#[from] pipeline::PipelineError),
    #[error("a gatherer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A running gatherer.
#[derive(Debug)]
pub struct GathererHandle {
    addr: SocketAddr,
    health: Arc<Health>,
    heads: watch::Receiver<Heads>,
    control: WriterControl,
    /// Weak, so holding the handle never keeps the writer from finishing.
    records: tokio::sync::mpsc::WeakSender<kd_core::Record>,
    shutdown: CancellationToken,
    /// Cancelled to close the exchange feed while the store and the pull API keep serving.
    feed: CancellationToken,
    task: JoinHandle<Result<(), GathererError>>,
}

impl GathererHandle {
    /// Where the pull API, `/health`, `/ready` and `/metrics` listen.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live health figures.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The last committed sequence number of each table, updated after every commit.
    pub fn heads(&self) -> watch::Receiver<Heads> {
        self.heads.clone()
    }

    /// The writer's control side (acks, retention, state) — for tests and tools.
    pub fn control(&self) -> &WriterControl {
        &self.control
    }

    /// A sender into the writer queue, as the router uses it (tests, benchmarks). `None` once
    /// the gatherer is stopping. Drop it before stopping, or the writer waits for it.
    pub fn test_sender(&self) -> Option<tokio::sync::mpsc::Sender<kd_core::Record>> {
        self.records.upgrade()
    }

    /// Closes the exchange feed and keeps serving: the WebSockets close cleanly, the REST
    /// poller and the repair stop, everything received is committed, and the pull API keeps
    /// answering pulls and acknowledgements until [`GathererHandle::shutdown`]. The store's
    /// coverage ends at its last row, as after any stop (the next start records the downtime).
    pub fn stop_feed(&self) {
        self.feed.cancel();
    }

    /// Asks the gatherer to stop (it flushes everything received first).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits for the gatherer to stop.
    pub async fn wait(self) -> Result<(), GathererError> {
        self.task.await?
    }

    /// Stops the gatherer and waits until everything received is committed.
    pub async fn stop(self) -> Result<(), GathererError> {
        self.shutdown();
        self.wait().await
    }
}

/// After a previous run: what the downtime repair needs (see [`repair::Downtime`]).
///
/// The window starts at the latest exchange time among the stored trades, deltas and tickers
/// rather than at their receive time: a receive time is on the previous run's clock, which
/// cannot be converted to the exchange's before this run has measured its offset, and the
/// exchange time of the last message received lies before its receipt (the window only widens).
async fn downtime(pool: &Arc<ReadPool>) -> Result<Option<repair::Downtime>, GathererError> {
    let reader = pool.clone();
    let last = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let mut last_made = None;
        let mut last_trade = None;
        for table in [
            kd_core::Table::Trades,
            kd_core::Table::Deltas,
            kd_core::Table::Tickers,
        ] {
            if let Some(row) = reader.last(table)? {
                let at = row.record.exchange_ts();
                last_made = Some(last_made.map_or(at, |l: kd_core::TimestampUs| l.max(at)));
                if table == kd_core::Table::Trades {
                    last_trade = Some(at);
                }
            }
        }
        Ok((last_made, last_trade))
    })
    .await??;
    let (Some(since), last_trade) = last else {
        return Ok(None);
    };
    Ok(Some(repair::Downtime {
        since,
        trades_since: last_trade.unwrap_or(since),
    }))
}

/// Runs a gatherer until `shutdown` is cancelled; everything received is committed before
/// this returns.
pub async fn run(config: GathererConfig, shutdown: CancellationToken) -> Result<(), GathererError> {
    run_with_feed(config, shutdown, CancellationToken::new()).await
}

/// [`run`], and cancelling `feed` closes the exchange feed first while the pull API keeps
/// serving (see [`GathererHandle::stop_feed`]).
pub async fn run_with_feed(
    config: GathererConfig,
    shutdown: CancellationToken,
    feed: CancellationToken,
) -> Result<(), GathererError> {
    let handle = start(config, shutdown).await?;
    tracing::info!(addr = %handle.addr(), "gatherer serving pull API, /health, /ready, /metrics");
    let own = handle.feed.clone();
    let relay = tokio::spawn(async move {
        tokio::select! {
            () = feed.cancelled() => own.cancel(),
            () = own.cancelled() => {}
        }
    });
    let result = handle.wait().await;
    relay.abort();
    result
}

/// Starts a gatherer and returns once its store is open and its HTTP server is bound
/// (`listen` with port 0 picks a free port: see [`GathererHandle::addr`]).
pub async fn start(
    config: GathererConfig,
    shutdown: CancellationToken,
) -> Result<GathererHandle, GathererError> {
    config.validate()?;
    let shutdown = shutdown.child_token();
    let feed = shutdown.child_token();
    let health = Arc::new(Health::default());
    let clock = Arc::new(clock::Clock::new(config.clock_offset_ms));
    if config.clock_offset_ms != 0 {
        tracing::warn!(
            clock_offset_ms = config.clock_offset_ms,
            "fault injection: this gatherer's clock is shifted (clock_offset_ms)"
        );
    }

    // Before the store is opened: a second gatherer on the same store must not write into it.
    let lock = kd_core::dir_lock::lock_dir(
        &config.data_dir,
        &format!("gatherer {}", config.gatherer_id),
    )?;
    let data_dir = config.data_dir.clone();
    let gatherer_id = config.gatherer_id.clone();
    let (conn, store_id) =
        tokio::task::spawn_blocking(move || -> Result<(WriteConn, String), StoreError> {
            let mut conn = WriteConn::open(&data_dir)?;
            conn.claim_gatherer_id(&gatherer_id)?;
            let store_id = conn.store_id()?;
            Ok((conn, store_id))
        })
        .await??;
    tracing::info!(store_id = %store_id, "local store opened");
    let pool = Arc::new(ReadPool::new(&config.data_dir)?);
    let settings = WriterSettings {
        data_dir: config.data_dir.clone(),
        batch_rows: config.writer_batch_rows,
        flush_interval: Duration::from_millis(config.writer_flush_interval_ms),
        retention: Duration::from_secs(config.retention_secs),
        retention_interval: Duration::from_secs(config.retention_interval_secs),
        clock: clock.clone(),
    };
    let writer = Writer::spawn(conn, settings, config.writer_queue_records, health.clone())
        .map_err(GathererError::WriterThread)?;
    let (input, heads, writer_join) = writer.into_parts();
    let downtime = downtime(&pool).await?;

    let tls = match (&config.tls_cert_path, &config.tls_key_path) {
        (Some(cert), Some(key)) => Some(
            server::load_tls(&server::TlsPaths {
                cert: cert.clone(),
                key: key.clone(),
            })
            .await?,
        ),
        _ => None,
    };
    let bound = server::bind(config.listen)?;
    let addr = bound.addr;
    let api = pull_api::router(pull_api::ApiState {
        gatherer: config.gatherer_id.clone(),
        store_id,
        pool,
        heads: heads.clone(),
        control: input.control.clone(),
        health: health.clone(),
        clock: clock.clone(),
        token: (!config.token.is_empty()).then(|| config.token.expose().to_string()),
        shutdown: shutdown.clone(),
        pulls: Arc::new(tokio::sync::Semaphore::new(pull_api::MAX_CONCURRENT_PULLS)),
    });
    // The server outlives collection so the deduplicator can pull while we drain; it stops
    // after the writer has committed everything.
    let server_stop = CancellationToken::new();
    let server_task = tokio::spawn(server::serve(bound, api, tls, server_stop.clone()));

    // systemd: READY now (store open, API bound), WATCHDOG while the writer's loop turns
    // (it goes round at least every flush interval, and at least every 5 s while a commit
    // is retried); a writer stuck longer than WatchdogSec gets the process restarted.
    let beat_health = health.clone();
    kd_core::sd_notify::spawn(
        move || {
            let beat = beat_health
                .writer_beat_us
                .load(std::sync::atomic::Ordering::Relaxed);
            let age = kd_core::TimestampUs::now().micros().saturating_sub(beat);
            let limit = kd_core::sd_notify::watchdog_interval().map_or(i64::MAX, |d| {
                i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
            });
            age < limit
        },
        shutdown.clone(),
    );
    let control = input.control.clone();
    let records = input.records.downgrade();
    let task_health = health.clone();
    let task_shutdown = shutdown.clone();
    let task_feed = feed.clone();
    // Held while the feed is closed and the API still serves: the writer stops once every
    // record sender is gone, and acknowledgements go through it.
    let keep_writer = input.records.clone();
    let task = tokio::spawn(async move {
        let collected =
            pipeline::run(&config, input, task_health, clock, downtime, task_feed).await;
        if collected.is_ok() && !task_shutdown.is_cancelled() {
            tracing::info!(
                "exchange feed closed (WebSockets closed, REST poller and repair stopped); \
                 everything received goes to the store; still serving pulls until stopped"
            );
            task_shutdown.cancelled().await;
        }
        drop(keep_writer);
        // Every record sender is gone once the pipeline returns: the writer drains and stops.
        let joined = tokio::task::spawn_blocking(move || writer_join.join()).await;
        server_stop.cancel();
        let served = server_task.await;
        collected?;
        joined?;
        served?.map_err(GathererError::Serve)?;
        // Released only once the writer has stopped touching the store.
        drop(lock);
        Ok(())
    });
    Ok(GathererHandle {
        addr,
        health,
        heads,
        control,
        records,
        shutdown,
        feed,
        task,
    })
}
