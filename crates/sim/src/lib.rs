//! The Kalshi exchange simulator: a faithful Kalshi on loopback, with faults on demand and a
//! ground-truth log (DESIGN §8).
//!
//! # Layout
//! - [`config`]: [`SimConfig`] and [`AuthMode`], [`SimError`].
//! - [`universe`]: series/events/markets derived from indices (names cost nothing until asked).
//! - [`market`], [`book`]: compact per-market state; order books only for hot markets.
//! - [`engine`]: the exchange — order flow, trades, tickers, market life, combo markets, the
//!   REST edge cache — pure state.
//! - [`messages`]: WebSocket `msg` bodies and the records a correct gatherer makes of them.
//! - [`publish`]: published items, serialised once and shared by all subscribers.
//! - `runner`: the publisher thread and the fault driver; `ws` + `commands`: the WebSocket
//!   endpoint and one connection's subscriptions; `rest` + [`objects`]: REST; `control`:
//!   `/_sim/*`.
//! - [`faults`]: the fault spec language and the active set.
//! - [`truth`]: the ground-truth log and its reader.
//! - [`cli`]: `kalshi-data sim` arguments.

#![recursion_limit = "256"]

pub mod book;
pub mod cli;
mod commands;
pub mod config;
mod control;
pub mod engine;
pub mod faults;
pub mod market;
pub mod messages;
pub mod objects;
mod persist;
pub mod publish;
mod rest;
pub mod rng;
mod runner;
mod shared;
mod stats;
pub mod truth;
pub mod universe;
mod ws;

pub use config::{AuthMode, SimConfig, SimError, YesPriceDefault};
pub use faults::{FaultParseError, FaultSpec, parse_fault};
pub use kd_core::records::Level;
pub use publish::Fate;
pub use stats::SimStats;
pub use truth::{FullLine, TruthError, TruthLine, read_truth, read_truth_full};

use engine::{EngineConfig, Exchange};
use kd_core::{Side, TimestampUs};
use shared::Shared;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    driver: tokio::task::JoinHandle<()>,
    publisher: Option<std::thread::JoinHandle<()>>,
    truth_writer: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    truth_path: Option<std::path::PathBuf>,
    /// The exclusive lock on `--state-dir`, held until the handle is dropped or joined.
    _state_lock: Option<kd_core::dir_lock::DirLock>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Starts the simulator; it runs until `shutdown` is cancelled (then [`SimHandle::join`]).
pub async fn start(config: SimConfig, shutdown: CancellationToken) -> Result<SimHandle, SimError> {
    config.validate()?;
    // Two simulators saving into one state directory would hand out the same trade ids.
    // Locked before the bind, so that a second simulator names the directory, not a port.
    let state_lock = match &config.state_dir {
        Some(dir) => Some(kd_core::dir_lock::lock_dir(dir, "sim")?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(SimError::Serve)?;
    let verifier = match &config.auth {
        AuthMode::NoAuth => None,
        AuthMode::Keys(keys) => {
            let mut v = kd_kalshi::auth::Verifier::new();
            for (id, pem) in keys {
                v.add_pem(id, pem).map_err(|e| SimError::InvalidParameter {
                    param: "auth",
                    reason: format!("key `{id}`: {e}"),
                })?;
            }
            Some(v)
        }
    };
    let ids = match &config.state_dir {
        Some(dir) => Some(persist::IdReservation::open(dir, config.seed)?),
        None => None,
    };
    let engine_cfg = EngineConfig {
        seed: config.seed,
        markets: config.markets as u32,
        life_s: config.market_life.as_secs().max(1) as i64,
        hot_markets: config.hot_markets,
        truth: config.truth.is_some(),
        combo_markets: config.combo_markets as u32,
        rest_cache_us: i64::try_from(config.rest_book_cache.as_micros()).unwrap_or(i64::MAX),
    };
    let uni = universe::Universe::new(config.series, config.events);
    let now_us = TimestampUs::now().micros();
    let saved = match &config.state_dir {
        Some(dir) => persist::load_exchange(dir, config.seed)?,
        None => None,
    };
    // Building a million markets is CPU work: keep it off the async workers.
    let mut exchange = tokio::task::spawn_blocking(move || match saved {
        Some(s) => Exchange::restore(engine_cfg, uni, s),
        None => Exchange::new(engine_cfg, now_us, uni),
    })
    .await
    .map_err(|_| SimError::Task)?;
    let reservation = ids.map(|(r, first)| {
        exchange.next_trade = exchange.next_trade.max(first);
        r
    });

    let (truth_tx, truth_writer) = match &config.truth {
        Some(path) => {
            // Fail early if the file cannot be opened.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| SimError::Truth {
                    path: path.clone(),
                    source,
                })?;
            let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
            let (p, hold) = (path.clone(), config.truth_hold);
            let handle = std::thread::Builder::new()
                .name("sim-truth".into())
                .spawn(move || truth::run_writer(p, rx, hold))
                .map_err(SimError::Serve)?;
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };
    let (tx, _) = broadcast::channel(config.queue_capacity);
    let truth_path = config.truth.clone();
    let shared = Arc::new(Shared {
        exchange: Mutex::new(exchange),
        tx,
        faults: faults::FaultSet::default(),
        stats: stats::Stats::default(),
        conns: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(0),
        publishing: AtomicBool::new(true),
        paused_ack: AtomicBool::new(false),
        truth: Mutex::new(truth_tx.clone()),
        verifier,
        cfg: config,
    });
    let started = TimestampUs::now();
    shared.truth_line(TruthLine::Start {
        ts: started,
        seed: shared.cfg.seed,
    });
    if shared.cfg.truth.is_some() {
        // Every market listed now: the platform could subscribe to it from this start on.
        let lines = {
            let ex = shared.exchange();
            let all = (0..ex.market_count()).map(|m| (m, started.micros(), None));
            runner::listed_lines(&ex, all.collect())
        };
        for line in lines {
            shared.truth_line(line);
        }
    }
    for f in shared.cfg.faults.clone() {
        shared.fault_event("added", &f, None);
        shared.faults.add(f);
    }
    let stop = shutdown.child_token();
    let publisher = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sim-publisher".into())
            .spawn(move || runner::publisher(shared, stop, reservation, truth_tx))
            .map_err(SimError::Serve)?
    };
    let driver = tokio::spawn(runner::fault_driver(shared.clone(), stop.clone()));
    let app = rest::router(shared.clone())
        .merge(control::router(shared.clone()))
        .route(
            ws::WS_PATH,
            axum::routing::get(ws::upgrade).with_state((shared.clone(), stop.clone())),
        );
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };
    tracing::info!(%addr, markets = shared.cfg.markets, rate = shared.cfg.rate, "simulator listening");
    Ok(SimHandle {
        addr,
        shared,
        stop,
        server,
        driver,
        publisher: Some(publisher),
        truth_writer,
        truth_path,
        _state_lock: state_lock,
    })
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/trade-api/v2`
    pub fn rest_base(&self) -> String {
        format!("http://{}{}", self.addr, rest::REST_PREFIX)
    }

    /// `ws://ADDR/trade-api/ws/v2`
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, ws::WS_PATH)
    }

    /// `http://ADDR` (the control endpoints live under `/_sim/`).
    pub fn control_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stats(&self) -> SimStats {
        let shared = self.shared.clone();
        let (markets, trades) = {
            let ex = shared.exchange();
            (u64::from(ex.market_count()), ex.trades.len() as u64)
        };
        shared.stats.snapshot(markets, trades)
    }

    pub fn add_fault(&self, spec: FaultSpec) {
        self.shared.fault_event("added", &spec, None);
        self.shared.faults.add(spec);
    }

    pub fn clear_faults(&self) {
        for f in self.shared.faults.list() {
            self.shared.fault_event("cleared", &f.spec, None);
        }
        self.shared.faults.clear();
    }

    /// The exchange stops producing messages (REST keeps answering); returns once the
    /// publisher has stopped and written its final book check point.
    pub async fn stop_publishing(&self) {
        self.shared.paused_ack.store(false, Ordering::SeqCst);
        self.shared.publishing.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.shared.paused_ack.load(Ordering::SeqCst) && Instant::now() < deadline {
            if self
                .publisher
                .as_ref()
                .is_none_or(std::thread::JoinHandle::is_finished)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Undoes [`SimHandle::stop_publishing`].
    pub fn resume_publishing(&self) {
        self.shared.publishing.store(true, Ordering::SeqCst);
    }

    /// A market's book now: (YES bids, NO bids), ascending by price.
    pub fn book(&self, ticker: &str) -> Option<(Vec<Level>, Vec<Level>)> {
        let mut ex = self.shared.exchange();
        let m = ex.market_index(ticker)?;
        let hot = ex.hot_mut(m)?;
        Some((hot.book.levels(Side::Yes), hot.book.levels(Side::No)))
    }

    /// Tickers of markets that trade now (status `active`), ascending by index.
    pub fn active_markets(&self, limit: usize) -> Vec<String> {
        let ex = self.shared.exchange();
        (0..ex.market_count())
            .filter(|&m| ex.markets[m as usize].status == market::Status::Active)
            .take(limit)
            .map(|m| ex.ticker(m))
            .collect()
    }

    /// Tickers of combo (multivariate) markets that trade now, ascending by index.
    pub fn active_combo_markets(&self, limit: usize) -> Vec<String> {
        let ex = self.shared.exchange();
        (0..ex.market_count())
            .filter(|&m| ex.is_combo(m) && ex.markets[m as usize].status == market::Status::Active)
            .take(limit)
            .map(|m| ex.ticker(m))
            .collect()
    }

    /// Waits until every truth line enqueued so far is written (delivery known or held out).
    pub async fn flush_truth(&self) {
        let Some(tx) = self
            .shared
            .truth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        let (reply_tx, reply_rx) = std::sync::mpsc::sync_channel(1);
        if tx.send(truth::TruthMsg::Flush(reply_tx)).is_err() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || reply_rx.recv_timeout(Duration::from_secs(60)))
            .await;
    }

    /// Path of the ground-truth log, if one is kept.
    pub fn truth_path(&self) -> Option<&std::path::Path> {
        self.truth_path.as_deref()
    }

    /// Waits for shutdown (the token given to [`start`]), then stops everything and closes the
    /// ground-truth log.
    pub async fn join(mut self) -> Result<(), SimError> {
        let served = self.server.await;
        self.stop.cancel();
        let _ = self.driver.await;
        if let Some(p) = self.publisher.take() {
            let _ = tokio::task::spawn_blocking(move || p.join()).await;
        }
        if let Some(dir) = self.shared.cfg.state_dir.clone() {
            let shared = self.shared.clone();
            let saved = tokio::task::spawn_blocking(move || {
                let state = shared.exchange().save();
                persist::save_exchange(&dir, &state)
                    .map_err(|source| SimError::State { path: dir, source })
            })
            .await
            .map_err(|_| SimError::Task)?;
            saved?;
        }
        // Closing our sender ends the writer once the publisher's clone is gone too.
        self.shared
            .truth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = self.truth_writer.take() {
            let res = tokio::task::spawn_blocking(move || w.join())
                .await
                .map_err(|_| SimError::Task)?;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    return Err(SimError::Truth {
                        path: self.truth_path.clone().unwrap_or_default(),
                        source,
                    });
                }
                Err(_) => return Err(SimError::Task),
            }
        }
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SimError::Serve(e)),
            Err(_) => Err(SimError::Task),
        }
    }

    /// Stops the simulator (cancels its own token) and waits for it.
    pub async fn shutdown(self) -> Result<(), SimError> {
        self.stop.cancel();
        self.join().await
    }
}
