//! The connection manager: a pool of authenticated WebSocket connections.
//!
//! - [`subscriptions`]: one connection's subscription state machine (pure: events in,
//!   commands out), with its unit and property tests.
//! - [`session`]: one connection's task, a thin actor around it (socket, router, reconnect).
//! - `ended`: the close-code table deciding how to reconnect; `gauge`: the subscribed count.
//! - this file: the pool, and the spreading of markets over it (least loaded first).
//!
//! Kalshi's vocabulary (channels, commands, error codes, `connect`) is `kd_kalshi::ws`.
//!
//! Channels: `orderbook_delta` needs market tickers, so markets are spread over the pool;
//! `trade`, `ticker`, `market_lifecycle_v2` and `multivariate_market_lifecycle` are subscribed
//! for all markets, each on one connection (round-robin), so every trade and ticker of every
//! market is received once.

mod ended;
mod gauge;
pub mod session;
pub mod subscriptions;

use crate::health::Health;
use crate::metrics as m;
use crate::registry::{MarketChange, Ticker};
use crate::router::{Router, RouterShared};
use kd_core::TimestampUs;
use kd_core::backoff::BackoffPolicy;
use kd_kalshi::auth::Signer;
use kd_kalshi::ws::Channel;
use session::Session;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Channels subscribed for all markets. Both lifecycle channels: since March 2026 a combo
/// (multivariate) market's lifecycle is sent only on `multivariate_market_lifecycle`.
pub const GLOBAL_CHANNELS: [Channel; 4] = [
    Channel::MarketLifecycleV2,
    Channel::Trade,
    Channel::Ticker,
    Channel::MultivariateMarketLifecycle,
];

/// Orders from the manager to one connection.
#[derive(Debug)]
pub enum ConnCommand {
    /// Collect these markets (with the time their lifecycle message arrived, when known).
    Add(Vec<(Ticker, Option<TimestampUs>)>),
    /// Stop collecting these markets.
    Remove(Vec<Ticker>),
}

/// A connection's fixed settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub id: usize,
    pub url: String,
    pub signer: Option<Arc<Signer>>,
    /// Channels subscribed for all markets on this connection.
    pub global_channels: Vec<Channel>,
    pub per_sub_limit: usize,
    pub silence: Duration,
    pub policy: BackoffPolicy,
}

/// Why a connection task stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "connection {id}: WebSocket handshake refused with HTTP {status}; check key_id and private_key_path"
    )]
    AuthRefused { id: usize, status: u16 },
}

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub url: String,
    pub signer: Option<Arc<Signer>>,
    pub connections: usize,
    pub per_sub_limit: usize,
    pub silence: Duration,
    pub policy: BackoffPolicy,
    /// Diagnostic: markets whose order book is never subscribed (`ignore_markets`).
    pub ignore_markets: Vec<String>,
}

/// The pool: its connections' command queues and which market lives where.
pub struct ConnectionManager {
    slots: Vec<mpsc::UnboundedSender<ConnCommand>>,
    /// `ignore_markets`: never handed to a connection.
    ignored: std::collections::HashSet<String>,
    load: Vec<usize>,
    /// Which connection each market lives on (a `u32` keeps the entry at 24 bytes).
    assigned: HashMap<Ticker, u32>,
    tasks: JoinSet<Result<(), SessionError>>,
}

impl ConnectionManager {
    /// Starts every connection of the pool.
    pub fn start(
        settings: PoolSettings,
        shared: RouterShared,
        health: Arc<Health>,
        shutdown: &CancellationToken,
    ) -> Self {
        let n = settings.connections.max(1);
        health.connections_total.store(n, Ordering::Relaxed);
        metrics::gauge!(m::CONNECTION_CONFIGURED).set(n as f64);
        let mut slots = Vec::with_capacity(n);
        let mut tasks = JoinSet::new();
        for id in 0..n {
            let global_channels = GLOBAL_CHANNELS
                .iter()
                .enumerate()
                .filter(|(i, _)| i % n == id)
                .map(|(_, c)| c.clone())
                .collect();
            let (tx, rx) = mpsc::unbounded_channel();
            let session = Session::new(
                SessionSettings {
                    id,
                    url: settings.url.clone(),
                    signer: settings.signer.clone(),
                    global_channels,
                    per_sub_limit: settings.per_sub_limit,
                    silence: settings.silence,
                    policy: settings.policy,
                },
                Router::new(shared.clone(), id),
                rx,
                health.clone(),
            );
            tasks.spawn(session.run(shutdown.clone()));
            slots.push(tx);
        }
        if !settings.ignore_markets.is_empty() {
            tracing::warn!(markets = ?settings.ignore_markets, "diagnostic ignore_markets set: these order books are never subscribed");
        }
        ConnectionManager {
            slots,
            ignored: settings.ignore_markets.into_iter().collect(),
            load: vec![0; n],
            assigned: HashMap::new(),
            tasks,
        }
    }

    /// Applies registry changes until the registry stops or shutdown; then waits for every
    /// connection to finish. A connection refused for credentials stops the whole pool.
    pub async fn run(
        mut self,
        mut changes: mpsc::UnboundedReceiver<MarketChange>,
        shutdown: CancellationToken,
    ) -> Result<(), SessionError> {
        let mut failure = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                change = changes.recv() => match change {
                    Some(change) => self.apply(change),
                    None => {
                        shutdown.cancelled().await;
                        break;
                    }
                },
                done = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Some(Ok(Err(e))) = done {
                        failure = Some(e);
                        shutdown.cancel();
                        break;
                    }
                }
            }
        }
        self.slots.clear();
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(Err(e)) = done {
                failure.get_or_insert(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn apply(&mut self, change: MarketChange) {
        match change {
            MarketChange::Subscribe {
                tickers,
                noticed_at,
            } => {
                let mut per_slot: Vec<Vec<(Ticker, Option<TimestampUs>)>> =
                    vec![Vec::new(); self.slots.len()];
                for ticker in tickers {
                    if self.assigned.contains_key(&ticker) || self.ignored.contains(&*ticker) {
                        continue;
                    }
                    let slot = least_loaded(&self.load);
                    self.load[slot] += 1;
                    self.assigned.insert(ticker.clone(), slot as u32);
                    per_slot[slot].push((ticker, noticed_at));
                }
                for (slot, markets) in per_slot.into_iter().enumerate() {
                    if !markets.is_empty() {
                        let _ = self.slots[slot].send(ConnCommand::Add(markets));
                    }
                }
            }
            MarketChange::Drop { tickers } => {
                let mut per_slot: Vec<Vec<Ticker>> = vec![Vec::new(); self.slots.len()];
                for ticker in tickers {
                    if let Some(slot) = self.assigned.remove(&ticker) {
                        let slot = slot as usize;
                        self.load[slot] = self.load[slot].saturating_sub(1);
                        per_slot[slot].push(ticker);
                    }
                }
                for (slot, markets) in per_slot.into_iter().enumerate() {
                    if !markets.is_empty() {
                        let _ = self.slots[slot].send(ConnCommand::Remove(markets));
                    }
                }
            }
        }
    }
}

/// The connection with the fewest markets (lowest index on ties).
fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|(i, l)| (**l, *i))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::least_loaded;

    #[test]
    fn spreads_to_the_least_loaded() {
        assert_eq!(least_loaded(&[3, 1, 2]), 1);
        assert_eq!(least_loaded(&[2, 2, 2]), 0);
        assert_eq!(least_loaded(&[]), 0);
    }
}
