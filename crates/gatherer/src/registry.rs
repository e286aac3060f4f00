//! The market registry: the one place that decides which markets are subscribed.
//!
//! Start: wait for the exchange to be up (`/exchange/status`), then page through every open
//! market over REST. Live: lifecycle messages of both channels (from the router:
//! `market_lifecycle_v2`, and `multivariate_market_lifecycle` for combo markets, which Kalshi
//! announces only there) add a market as soon as it is `created`/`activated` and drop it when
//! it is `closed`/`determined`/`settled`.
//! Safety net: a full REST reconciliation every `reconcile_interval_secs`. REST calls retry
//! forever (1 s → 5 min); refused credentials halt the gatherer (a human must fix them).

use crate::events::registry::{
    LifecycleApplied, MarketAnnounced, MarketFinished, MarketListSynced, RegistryHalted, RestFailed,
};
use crate::events::{InternalEvent, emit};
use crate::health::Health;
use crate::metrics as m;
use crate::router::LifecycleNote;
use kd_core::TimestampUs;
use kd_core::backoff::BackoffPolicy;
use kd_kalshi::rest::{Action, MarketsQuery, RestClient, RestError};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A market ticker, allocated once and shared by the registry, the connection manager and the
/// connections (a million markets would otherwise hold each ticker several times over).
pub type Ticker = Arc<str>;

/// The ticker `t` as already held in `known`, or newly allocated.
fn intern(known: &HashSet<Ticker>, t: String) -> Ticker {
    known
        .get(t.as_str())
        .cloned()
        .unwrap_or_else(|| Arc::from(t))
}

/// Lifecycle event types after which a market is collected.
const ADD_EVENTS: [&str; 2] = ["created", "activated"];
/// Lifecycle event types after which a market is dropped (nothing more will trade).
const DROP_EVENTS: [&str; 3] = ["closed", "determined", "settled"];

/// What the registry tells the connection manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketChange {
    /// Subscribe these markets; `noticed_at` is the lifecycle message's arrival (for the
    /// subscribe-delay histogram), `None` for markets found over REST.
    Subscribe {
        tickers: Vec<Ticker>,
        noticed_at: Option<TimestampUs>,
    },
    /// Stop collecting these markets.
    Drop { tickers: Vec<Ticker> },
}

/// Why the registry stopped.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("REST credentials refused: {0}")]
    Halted(#[source] RestError),
}

/// The registry's state and inputs.
#[derive(Debug)]
pub struct Registry {
    pub rest: RestClient,
    pub reconcile_interval: Duration,
    pub lifecycle: mpsc::UnboundedReceiver<LifecycleNote>,
    pub changes: mpsc::UnboundedSender<MarketChange>,
    pub health: Arc<Health>,
    /// The active markets, shared with the snapshot poller.
    pub list: crate::poller::MarketList,
    /// Backoff of the REST calls (retried forever); DESIGN §6 by default.
    pub policy: BackoffPolicy,
    known: HashSet<Ticker>,
}

impl Registry {
    pub fn new(
        rest: RestClient,
        reconcile_interval: Duration,
        lifecycle: mpsc::UnboundedReceiver<LifecycleNote>,
        changes: mpsc::UnboundedSender<MarketChange>,
        health: Arc<Health>,
    ) -> Self {
        Registry {
            rest,
            reconcile_interval,
            lifecycle,
            changes,
            health,
            list: crate::poller::MarketList::default(),
            policy: BackoffPolicy::REGISTRY,
            known: HashSet::new(),
        }
    }

    /// Runs until shutdown, or until credentials are refused.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), RegistryError> {
        match self.sync(&shutdown).await {
            Ok(()) => {}
            Err(RestError::Cancelled) => return Ok(()),
            Err(e) => return Err(RegistryError::Halted(e)),
        }
        self.health.registry_synced.store(true, Ordering::Relaxed);
        let mut reconcile =
            tokio::time::interval(self.reconcile_interval.max(Duration::from_secs(1)));
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                note = self.lifecycle.recv() => match note {
                    Some(note) => self.apply(note),
                    None => return Ok(()),
                },
                _ = reconcile.tick() => match self.sync(&shutdown).await {
                    Ok(()) => {}
                    Err(RestError::Cancelled) => return Ok(()),
                    Err(e) => return Err(RegistryError::Halted(e)),
                },
            }
        }
    }

    /// Applies one lifecycle change.
    fn apply(&mut self, note: LifecycleNote) {
        let event = note.info.event_type.as_str();
        let channel = note.info.channel;
        let ticker = note.info.market_ticker.as_str();
        emit(LifecycleApplied {
            channel,
            event_type: event,
            ticker,
        });
        if ADD_EVENTS.contains(&event) {
            if !self.known.contains(ticker) {
                let ticker: Ticker = Arc::from(ticker);
                self.known.insert(ticker.clone());
                emit(MarketAnnounced {
                    channel,
                    event_type: event,
                    ticker: &ticker,
                });
                self.send(MarketChange::Subscribe {
                    tickers: vec![ticker.clone()],
                    noticed_at: Some(note.received_at),
                });
                self.gauge(ListUpdate::Added(ticker));
            }
        } else if DROP_EVENTS.contains(&event)
            && let Some(ticker) = self.known.take(ticker)
        {
            emit(MarketFinished {
                event_type: event,
                ticker: &ticker,
            });
            self.send(MarketChange::Drop {
                tickers: vec![ticker.clone()],
            });
            self.gauge(ListUpdate::Removed(ticker));
        }
    }

    /// Full REST pass: wait for the exchange, list every open market, diff with what we know.
    ///
    /// Pages are read for their tickers only and folded into the new set as they arrive, and a
    /// market already known keeps its interned ticker: at a million markets, holding every REST
    /// object of a full listing at once cost more than a gigabyte.
    async fn sync(&mut self, shutdown: &CancellationToken) -> Result<(), RestError> {
        let rest = &self.rest;
        let policy = self.policy;
        let known = &self.known;
        let changes = &self.changes;
        // New markets are subscribed page by page, while the listing goes on: at a million
        // markets the listing takes ~20 s, and subscribing (a snapshot per market) as long
        // again after it. `early` remembers them across retries of the listing, so a market
        // announced by an attempt that later failed is dropped if the next attempt lacks it.
        let early: std::sync::Mutex<HashSet<Ticker>> = std::sync::Mutex::new(HashSet::new());
        let early_ref = &early;
        let mut listed = rest
            .retry_forever(policy, shutdown, || async {
                rest.wait_for_exchange(shutdown).await?;
                let query = MarketsQuery {
                    status: Some("open".into()),
                    ..MarketsQuery::default()
                };
                let mut listed: HashSet<Ticker> = HashSet::with_capacity(known.len());
                rest.each_market_tickers(&query, |tickers| {
                    let page: Vec<Ticker> = tickers.into_iter().map(|t| intern(known, t)).collect();
                    let fresh: Vec<Ticker> = match early_ref.lock() {
                        Ok(mut early) => page
                            .iter()
                            .filter(|t| !known.contains(*t) && early.insert(Ticker::clone(t)))
                            .cloned()
                            .collect(),
                        // Poisoned only if a thread panicked holding it: subscribe at the end.
                        Err(_) => Vec::new(),
                    };
                    if !fresh.is_empty()
                        && changes
                            .send(MarketChange::Subscribe {
                                tickers: fresh,
                                noticed_at: None,
                            })
                            .is_err()
                    {
                        tracing::debug!("connection manager gone; market change ignored");
                    }
                    listed.extend(page);
                })
                .await
                .inspect_err(|error| RestFailed { error }.emit())?;
                Ok(listed)
            })
            .await
            .inspect_err(|error| {
                if error.action() == Action::Halt {
                    self.health.halted.store(true, Ordering::Relaxed);
                    RegistryHalted { error }.emit();
                }
            })?;
        listed.shrink_to_fit();
        let early = early.into_inner().unwrap_or_else(|p| p.into_inner());
        let added: Vec<Ticker> = listed
            .difference(&self.known)
            .filter(|t| !early.contains(*t))
            .cloned()
            .collect();
        // Known before, or announced by a listing attempt that failed, and not listed now.
        let gone: Vec<Ticker> = self
            .known
            .iter()
            .chain(early.iter())
            .filter(|t| !listed.contains(*t))
            .cloned()
            .collect();
        let added_total = listed.difference(&self.known).count();
        emit(MarketListSynced {
            open: listed.len(),
            added: added_total,
            gone: gone.len(),
        });
        self.known = listed;
        if !added.is_empty() {
            self.send(MarketChange::Subscribe {
                tickers: added,
                noticed_at: None,
            });
        }
        if !gone.is_empty() {
            self.send(MarketChange::Drop { tickers: gone });
        }
        self.gauge(ListUpdate::Rebuild);
        Ok(())
    }

    fn send(&self, change: MarketChange) {
        if self.changes.send(change).is_err() {
            tracing::debug!("connection manager gone; market change ignored");
        }
    }

    /// Publishes the market count; with `list`, also the poller's list (rebuilt in full after
    /// a sync; a lifecycle change edits it in place rather than copying a million entries).
    fn gauge(&self, list: ListUpdate) {
        if let Ok(mut shared) = self.list.write() {
            match list {
                ListUpdate::Rebuild => {
                    *shared = self.known.iter().cloned().collect();
                    shared.shrink_to_fit();
                }
                ListUpdate::Added(t) => shared.push(t),
                ListUpdate::Removed(t) => shared.retain(|s| *s != t),
            }
        }
        metrics::gauge!(m::REGISTRY_MARKETS).set(self.known.len() as f64);
        self.health
            .markets_known
            .store(self.known.len(), Ordering::Relaxed);
    }
}

/// How [`Registry::gauge`] brings the poller's list up to date.
enum ListUpdate {
    Rebuild,
    Added(Ticker),
    Removed(Ticker),
}
