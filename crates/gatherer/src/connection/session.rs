//! One connection of the pool: connect, subscribe, read, reconnect — forever, until shutdown.
//!
//! The task owns its socket, its router and its subscriptions (a WebSocket-client actor).
//! Markets come and go through [`ConnCommand`]s from the manager. `orderbook_delta` markets are
//! batched into subscriptions of at most `per_sub_limit` markets, grown with
//! `update_subscription add_markets`; at most one command is in flight per subscription.

use super::socket::{self, WsStream};
use crate::health::Health;
use crate::metrics as m;
use crate::registry::Ticker;
use crate::router::Router;
use futures::{SinkExt, StreamExt};
use kd_core::TimestampUs;
use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_kalshi::auth::Signer;
use kd_kalshi::parse::{WsEvent, WsFrame as Frame};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

/// At most one `get_snapshot` per subscription in this interval: a burst of gaps on a busy
/// subscription becomes one request (its markets' books are all re-read).
const SNAPSHOT_COOLDOWN: Duration = Duration::from_secs(1);

/// Most `subscribe`/`add_markets` commands awaiting their reply on one connection. Each brings
/// up to `per_sub_limit` snapshots back; sending a whole universe's worth at once (250 commands
/// per connection at 1M markets) makes the exchange answer them all before it sends anything
/// else, and a server that falls behind its own feed that way cuts the connection (1011),
/// which then starts over. A few in flight keep the pipe full without that.
const MAX_SUBSCRIBE_IN_FLIGHT: usize = 4;

/// How often waiting markets are (re)requested when nothing else happens.
const FLUSH_TICK: Duration = Duration::from_millis(250);

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
    /// Channels subscribed for all markets on this connection (`trade`, `ticker`,
    /// `market_lifecycle_v2`).
    pub global_channels: Vec<&'static str>,
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

/// One `orderbook_delta` subscription.
#[derive(Debug, Default)]
struct DeltaSub {
    sid: Option<u64>,
    markets: BTreeSet<Ticker>,
    /// A command for this subscription awaits its reply.
    in_flight: bool,
}

#[derive(Debug)]
enum Pending {
    /// `subscribe` of a new delta subscription (index in `subs`) with these markets.
    DeltaSubscribe { sub: usize, markets: Vec<Ticker> },
    /// `update_subscription add_markets` on a delta subscription.
    AddMarkets { sub: usize, markets: Vec<Ticker> },
    /// `update_subscription delete_markets`.
    DeleteMarkets,
    /// `subscribe` of a global channel.
    Global { channel: &'static str },
}

/// How a session ended.
enum Ended {
    Shutdown,
    /// Reconnect at once (close 1000).
    Immediately(&'static str),
    /// Reconnect after the backoff.
    Backoff(&'static str),
}

/// The connection task.
pub struct Session {
    settings: SessionSettings,
    router: Router,
    commands: mpsc::UnboundedReceiver<ConnCommand>,
    health: Arc<Health>,
    /// Every market assigned to this connection.
    markets: BTreeSet<Ticker>,
    /// Lifecycle arrival times of markets not yet confirmed subscribed.
    noticed: HashMap<Ticker, TimestampUs>,
    per_sub_limit: usize,
    // Per socket:
    subs: Vec<DeltaSub>,
    waiting: BTreeSet<Ticker>,
    pending: HashMap<u64, Pending>,
    global_sids: HashMap<u64, &'static str>,
    /// Global channels to (re)subscribe.
    global_waiting: Vec<&'static str>,
    next_id: u64,
    /// Receive time of this socket's last frame (start of the window lost if it dies).
    last_frame_at: TimestampUs,
    /// This connection's share of `health.markets_subscribed`.
    reported_subscribed: usize,
    /// Snapshot requests waiting for their subscription's cooldown: sid → markets (None: all).
    snapshot_due: HashMap<u64, Option<BTreeSet<String>>>,
    /// When each subscription last had a `get_snapshot`.
    snapshot_sent: HashMap<u64, tokio::time::Instant>,
}

impl Session {
    pub fn new(
        settings: SessionSettings,
        router: Router,
        commands: mpsc::UnboundedReceiver<ConnCommand>,
        health: Arc<Health>,
    ) -> Self {
        let per_sub_limit = settings.per_sub_limit.max(1);
        Session {
            settings,
            router,
            commands,
            health,
            markets: BTreeSet::new(),
            noticed: HashMap::new(),
            per_sub_limit,
            subs: Vec::new(),
            waiting: BTreeSet::new(),
            pending: HashMap::new(),
            global_sids: HashMap::new(),
            global_waiting: Vec::new(),
            next_id: 1,
            last_frame_at: TimestampUs::from_micros(0),
            reported_subscribed: 0,
            snapshot_due: HashMap::new(),
            snapshot_sent: HashMap::new(),
        }
    }

    /// Runs until shutdown (Ok) or refused credentials (Err).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SessionError> {
        let mut backoff = Backoff::new(self.settings.policy);
        let id = self.settings.id;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let connected = tokio::select! {
                c = socket::connect(&self.settings.url, self.settings.signer.as_deref()) => c,
                _ = shutdown.cancelled() => break,
            };
            let ended = match connected {
                Ok(ws) => {
                    tracing::info!(conn = id, markets = self.markets.len(), "connected");
                    self.session(ws, &shutdown, &mut backoff).await
                }
                Err(e) if e.is_auth() => {
                    metrics::counter!(m::CONNECTION_AUTH_FAILURES_TOTAL).increment(1);
                    self.health.halted.store(true, Ordering::Relaxed);
                    tracing::error!(conn = id, error = %e, "credentials refused; connection halted (no retry)");
                    let status = match e {
                        socket::ConnectError::Refused { status } => status,
                        _ => 0,
                    };
                    self.router.finish();
                    return Err(SessionError::AuthRefused { id, status });
                }
                Err(e) => {
                    metrics::counter!(m::CONNECTION_ERRORS_TOTAL, "kind" => "connect").increment(1);
                    tracing::warn!(conn = id, error = %e, "connect failed");
                    Ended::Backoff("connect_failed")
                }
            };
            let delay = match ended {
                Ended::Shutdown => break,
                Ended::Immediately(reason) => {
                    metrics::counter!(m::CONNECTION_RECONNECTS_TOTAL, "reason" => reason)
                        .increment(1);
                    backoff.reset();
                    // At once, but not all at the same instant: when the exchange closes every
                    // connection cleanly, a jitter of 0–25 % of the base spreads the reconnects.
                    self.settings.policy.jitter()
                }
                Ended::Backoff(reason) => {
                    metrics::counter!(m::CONNECTION_RECONNECTS_TOTAL, "reason" => reason)
                        .increment(1);
                    metrics::counter!(m::CONNECTION_RETRIES_TOTAL).increment(1);
                    backoff.next_delay()
                }
            };
            tracing::info!(
                conn = id,
                delay_ms = delay.as_millis() as u64,
                "reconnecting"
            );
            // Commands keep arriving while we wait: apply them to the desired set.
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    _ = shutdown.cancelled() => break,
                    cmd = self.commands.recv() => match cmd {
                        Some(cmd) => self.apply_offline(cmd),
                        None => break,
                    },
                }
            }
        }
        self.router.finish();
        Ok(())
    }

    /// One socket's life: subscribe everything, then read until it ends.
    async fn session(
        &mut self,
        mut ws: WsStream,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Ended {
        self.subs.clear();
        self.pending.clear();
        self.snapshot_due.clear();
        self.snapshot_sent.clear();
        self.global_sids.clear();
        self.waiting = self.markets.clone();
        self.global_waiting = self.settings.global_channels.clone();
        self.last_frame_at = self.router.clock().now();
        self.health.connections_up.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(m::CONNECTION_UP).increment(1.0);
        let mut tick = tokio::time::interval(FLUSH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stable = false;
        // Silence is measured from the last frame, not per wait: the other branches (commands,
        // the flush tick) end a wait long before any silence limit, so a timeout around each
        // read would never fire.
        let mut last_frame = tokio::time::Instant::now();
        let ended = loop {
            if let Err(e) = self.request_snapshots(&mut ws).await {
                tracing::warn!(conn = self.settings.id, error = %e, "send failed");
                break Ended::Backoff("send_failed");
            }
            if let Err(e) = self.flush(&mut ws).await {
                metrics::counter!(m::CONNECTION_ERRORS_TOTAL, "kind" => "send").increment(1);
                tracing::warn!(conn = self.settings.id, error = %e, "send failed");
                break Ended::Backoff("send_failed");
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let _ = ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "shutdown".into() })).await;
                    break Ended::Shutdown;
                }
                _ = tokio::time::sleep_until(last_frame + self.settings.silence) => {
                    metrics::counter!(m::CONNECTION_SILENCE_TIMEOUTS_TOTAL).increment(1);
                    tracing::warn!(conn = self.settings.id, "silent too long; replacing the connection");
                    break Ended::Backoff("silence");
                }
                frame = ws.next() => {
                    let frame = match frame {
                        None => break Ended::Backoff("eof"),
                        Some(Err(e)) => {
                            metrics::counter!(m::CONNECTION_ERRORS_TOTAL, "kind" => "read").increment(1);
                            tracing::warn!(conn = self.settings.id, error = %e, "read failed");
                            break Ended::Backoff("read_error");
                        }
                        Some(Ok(frame)) => frame,
                    };
                    last_frame = tokio::time::Instant::now();
                    metrics::counter!(m::CONNECTION_FRAMES_TOTAL).increment(1);
                    self.last_frame_at = self.router.clock().now();
                    match frame {
                        Message::Text(text) => {
                            metrics::counter!(m::CONNECTION_BYTES_TOTAL).increment(text.len() as u64);
                            let now = self.router.clock().now();
                            if let Some(reply) = self.router.route(Frame::Text(text.as_str()), now).await {
                                self.reply(reply, now);
                            }
                            if let Err(e) = self.request_snapshots(&mut ws).await {
                                tracing::warn!(conn = self.settings.id, error = %e, "send failed");
                                break Ended::Backoff("send_failed");
                            }
                        }
                        Message::Binary(bytes) => {
                            metrics::counter!(m::CONNECTION_BYTES_TOTAL).increment(bytes.len() as u64);
                            let now = self.router.clock().now();
                            if let Some(reply) = self.router.route(Frame::Binary(&bytes), now).await {
                                self.reply(reply, now);
                            }
                        }
                        // Pongs to pings are queued by the library and sent on the next read.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                        Message::Close(frame) => {
                            let code = frame.as_ref().map(|f| u16::from(f.code));
                            tracing::info!(conn = self.settings.id, ?code, "closed by the server");
                            break match code {
                                Some(1000) => Ended::Immediately("close_1000"),
                                Some(1008) => {
                                    // The reconnect's handshake is the credential check: a
                                    // refused one halts (no retry loop), an accepted one goes on.
                                    metrics::counter!(m::CONNECTION_POLICY_CLOSES_TOTAL).increment(1);
                                    tracing::error!(conn = self.settings.id, "closed for policy (1008): check the credentials; reconnecting with backoff (a refused handshake halts)");
                                    Ended::Backoff("close_1008")
                                }
                                Some(1001) => Ended::Backoff("close_1001"),
                                Some(1006) => Ended::Backoff("close_1006"),
                                Some(1011) => Ended::Backoff("close_1011"),
                                _ => Ended::Backoff("close_other"),
                            };
                        }
                    }
                    if !stable && self.pending.is_empty() && self.waiting.is_empty() {
                        // Subscribed to everything: the connection works, forget past failures.
                        stable = true;
                        backoff.reset();
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    Some(ConnCommand::Add(markets)) => self.add(markets),
                    Some(ConnCommand::Remove(markets)) => {
                        if let Err(e) = self.remove(&mut ws, markets).await {
                            tracing::warn!(conn = self.settings.id, error = %e, "send failed");
                            break Ended::Backoff("send_failed");
                        }
                    }
                    None => break Ended::Shutdown,
                },
                _ = tick.tick() => {
                    let now = self.router.clock().now();
                    self.router.release_held(now).await;
                }
            }
        };
        self.router.discard_held();
        self.health.connections_up.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(m::CONNECTION_UP).decrement(1.0);
        self.set_subscribed_gauge(0);
        if !matches!(ended, Ended::Shutdown) {
            // Whatever this socket carried between its last message and the next snapshot is
            // unknown: one gap per market, and one per global channel.
            let now = self.router.clock().now();
            let since = self.last_frame_at;
            let markets: Vec<String> = self.markets.iter().map(|t| t.to_string()).collect();
            if !markets.is_empty() {
                self.router
                    .disconnected(&markets, "orderbook_delta", since, now);
            }
            for channel in &self.settings.global_channels {
                self.router.disconnected(&[], channel, since, now);
            }
        }
        ended
    }

    /// Asks for fresh snapshots of the markets a gap touched (`update_subscription
    /// get_snapshot`): the answer is an `orderbook_snapshot` per market on the same sid.
    async fn request_snapshots(
        &mut self,
        ws: &mut WsStream,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        for (sid, ticker) in self.router.take_snapshot_requests() {
            let due = self
                .snapshot_due
                .entry(sid)
                .or_insert_with(|| Some(BTreeSet::new()));
            match (due.as_mut(), ticker) {
                (Some(set), Some(t)) => {
                    set.insert(t);
                }
                (_, None) => *due = None,
                (None, Some(_)) => {}
            }
        }
        if self.snapshot_due.is_empty() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        let ready: Vec<u64> = self
            .snapshot_due
            .keys()
            .copied()
            .filter(|sid| {
                self.snapshot_sent
                    .get(sid)
                    .is_none_or(|at| now.duration_since(*at) >= SNAPSHOT_COOLDOWN)
            })
            .collect();
        for sid in ready {
            let Some(wanted) = self.snapshot_due.remove(&sid) else {
                continue;
            };
            let Some(sub) = self.subs.iter().find(|s| s.sid == Some(sid)) else {
                continue;
            };
            let tickers: Vec<String> = match wanted {
                Some(set) => set
                    .into_iter()
                    .filter(|t| sub.markets.contains(t.as_str()))
                    .collect(),
                None => sub.markets.iter().map(|t| t.to_string()).collect(),
            };
            if tickers.is_empty() {
                continue;
            }
            self.snapshot_sent.insert(sid, now);
            metrics::counter!(m::REPAIR_SNAPSHOT_REQUESTS_TOTAL).increment(tickers.len() as u64);
            let id = self.command_id();
            let cmd = json!({"id": id, "cmd": "update_subscription",
                "params": {"sids": [sid], "action": "get_snapshot", "market_tickers": tickers}});
            ws.send(Message::text(cmd.to_string())).await?;
        }
        Ok(())
    }

    fn apply_offline(&mut self, cmd: ConnCommand) {
        match cmd {
            ConnCommand::Add(markets) => {
                for (ticker, noticed) in markets {
                    if let Some(at) = noticed {
                        self.noticed.insert(ticker.clone(), at);
                    }
                    self.markets.insert(ticker);
                }
            }
            ConnCommand::Remove(markets) => {
                for ticker in markets {
                    self.markets.remove(&ticker);
                    self.noticed.remove(&ticker);
                }
            }
        }
    }

    fn add(&mut self, markets: Vec<(Ticker, Option<TimestampUs>)>) {
        for (ticker, noticed) in markets {
            if let Some(at) = noticed {
                self.noticed.insert(ticker.clone(), at);
            }
            if self.markets.insert(ticker.clone()) {
                self.waiting.insert(ticker);
            }
        }
    }

    async fn remove(
        &mut self,
        ws: &mut WsStream,
        markets: Vec<Ticker>,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let mut per_sub: HashMap<u64, Vec<Ticker>> = HashMap::new();
        for ticker in markets {
            self.markets.remove(&ticker);
            self.noticed.remove(&ticker);
            self.waiting.remove(&ticker);
            for sub in &mut self.subs {
                if sub.markets.remove(&ticker)
                    && let Some(sid) = sub.sid
                {
                    per_sub.entry(sid).or_default().push(ticker.clone());
                }
            }
        }
        for (sid, tickers) in per_sub {
            for t in &tickers {
                self.router.sequences().market_removed(sid, t);
            }
            let id = self.command_id();
            self.pending.insert(id, Pending::DeleteMarkets);
            let cmd = json!({"id": id, "cmd": "update_subscription",
                "params": {"sids": [sid], "action": "delete_markets", "market_tickers": strs(&tickers)}});
            ws.send(Message::text(cmd.to_string())).await?;
        }
        self.set_subscribed_gauge_from_subs();
        Ok(())
    }

    fn command_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends the subscriptions still owed: global channels, waiting markets into existing
    /// subscriptions with room (one command in flight per subscription), the rest into new ones.
    async fn flush(
        &mut self,
        ws: &mut WsStream,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        for channel in std::mem::take(&mut self.global_waiting) {
            let id = self.command_id();
            self.pending.insert(id, Pending::Global { channel });
            let cmd = json!({"id": id, "cmd": "subscribe", "params": {"channels": [channel]}});
            ws.send(Message::text(cmd.to_string())).await?;
        }
        if self.waiting.is_empty() {
            return Ok(());
        }
        let limit = self.per_sub_limit;
        let mut in_flight = self
            .pending
            .values()
            .filter(|p| {
                matches!(
                    p,
                    Pending::DeltaSubscribe { .. } | Pending::AddMarkets { .. }
                )
            })
            .count();
        for index in 0..self.subs.len() {
            if self.waiting.is_empty() || in_flight >= MAX_SUBSCRIBE_IN_FLIGHT {
                break;
            }
            let sub = &self.subs[index];
            let Some(sid) = sub.sid else { continue };
            if sub.in_flight || sub.markets.len() >= limit {
                continue;
            }
            let room = limit - sub.markets.len();
            let batch = take_some(&mut self.waiting, room);
            let sub = &mut self.subs[index];
            sub.in_flight = true;
            sub.markets.extend(batch.iter().cloned());
            let id = self.command_id();
            let cmd = json!({"id": id, "cmd": "update_subscription",
                "params": {"sids": [sid], "action": "add_markets", "market_tickers": strs(&batch)}});
            self.pending.insert(
                id,
                Pending::AddMarkets {
                    sub: index,
                    markets: batch,
                },
            );
            ws.send(Message::text(cmd.to_string())).await?;
            in_flight += 1;
        }
        // New subscriptions for what is left, unless one is still being created (its room is
        // used once it is confirmed).
        let creating = self.subs.iter().any(|s| s.sid.is_none());
        if !creating {
            while !self.waiting.is_empty() && in_flight < MAX_SUBSCRIBE_IN_FLIGHT {
                let batch = take_some(&mut self.waiting, limit);
                let index = self.subs.len();
                self.subs.push(DeltaSub {
                    sid: None,
                    markets: batch.iter().cloned().collect(),
                    in_flight: true,
                });
                let id = self.command_id();
                let cmd = json!({"id": id, "cmd": "subscribe",
                    "params": {"channels": ["orderbook_delta"], "market_tickers": strs(&batch)}});
                self.pending.insert(
                    id,
                    Pending::DeltaSubscribe {
                        sub: index,
                        markets: batch,
                    },
                );
                ws.send(Message::text(cmd.to_string())).await?;
                in_flight += 1;
            }
        }
        Ok(())
    }

    /// Handles a command reply or channel error.
    fn reply(&mut self, event: WsEvent, now: TimestampUs) {
        match event {
            WsEvent::Subscribed { id, sid, channel } => {
                match id.and_then(|id| self.pending.remove(&id)) {
                    Some(Pending::DeltaSubscribe { sub, markets }) => {
                        if let Some(s) = self.subs.get_mut(sub) {
                            s.sid = Some(sid);
                            s.in_flight = false;
                        }
                        self.confirmed(&markets, now);
                    }
                    Some(Pending::Global { channel }) => {
                        self.global_sids.insert(sid, channel);
                    }
                    _ => {
                        tracing::debug!(conn = self.settings.id, sid, %channel, "unexpected subscribed")
                    }
                }
            }
            WsEvent::Ok { id, .. } => {
                if let Some(Pending::AddMarkets { sub, markets }) =
                    id.and_then(|id| self.pending.remove(&id))
                {
                    if let Some(s) = self.subs.get_mut(sub) {
                        s.in_flight = false;
                    }
                    self.confirmed(&markets, now);
                }
            }
            WsEvent::Unsubscribed { id: Some(id), .. } => {
                self.pending.remove(&id);
            }
            WsEvent::Error {
                id,
                sid,
                code,
                msg,
                market_tickers,
                ..
            } => self.error(id, sid, code, &msg, market_tickers),
            _ => {}
        }
    }

    /// Markets confirmed subscribed: record how long after their lifecycle message.
    fn confirmed(&mut self, markets: &[Ticker], now: TimestampUs) {
        for ticker in markets {
            if let Some(at) = self.noticed.remove(ticker) {
                let delay = (now.micros() - at.micros()).max(0) as f64 / 1e6;
                metrics::histogram!(m::REGISTRY_SUBSCRIBE_DELAY_SECONDS).record(delay);
            }
        }
        self.set_subscribed_gauge_from_subs();
    }

    fn error(
        &mut self,
        id: Option<u64>,
        sid: Option<u64>,
        code: u32,
        msg: &str,
        named: Vec<String>,
    ) {
        metrics::counter!(m::CONNECTION_SUBSCRIBE_ERRORS_TOTAL, "code" => code.to_string())
            .increment(1);
        let pending = id.and_then(|id| self.pending.remove(&id));
        tracing::warn!(
            conn = self.settings.id,
            ?id,
            ?sid,
            code,
            msg,
            "error from the exchange"
        );
        // Markets the exchange says do not exist: drop them (never retried).
        let not_found: BTreeSet<String> = if code != 26 {
            named.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        for ticker in &not_found {
            let ticker = ticker.as_str();
            self.markets.remove(ticker);
            self.noticed.remove(ticker);
            self.waiting.remove(ticker);
            for s in &mut self.subs {
                s.markets.remove(ticker);
            }
        }
        match pending {
            Some(Pending::DeltaSubscribe { sub, markets })
            | Some(Pending::AddMarkets { sub, markets }) => {
                if let Some(s) = self.subs.get_mut(sub) {
                    s.in_flight = false;
                    for t in &markets {
                        s.markets.remove(t);
                    }
                    if s.sid.is_none() {
                        // The subscription never came to be: keep the slot empty.
                        s.sid = Some(u64::MAX);
                        s.markets.clear();
                        s.in_flight = true;
                    }
                }
                if code == 26 {
                    // Market/subscription limit: shrink the batch and alert.
                    let shrunk = (markets.len() / 2).max(1).min(self.per_sub_limit);
                    tracing::error!(
                        conn = self.settings.id,
                        limit = shrunk,
                        "subscription market limit hit; shrinking"
                    );
                    self.per_sub_limit = shrunk;
                }
                if code != 8 {
                    for t in markets {
                        if self.markets.contains(&t) {
                            self.waiting.insert(t);
                        }
                    }
                }
            }
            Some(Pending::Global { channel }) => {
                if code == 8 {
                    tracing::error!(
                        conn = self.settings.id,
                        channel,
                        "unknown channel; not retried"
                    );
                } else {
                    self.global_waiting.push(channel);
                }
            }
            Some(Pending::DeleteMarkets) => {}
            None => {
                // A channel error on a live subscription (10, 25 are terminal): resubscribe.
                if let Some(sid) = sid
                    && (code == 10 || code == 25)
                {
                    if let Some(channel) = self.global_sids.remove(&sid) {
                        self.global_waiting.push(channel);
                    }
                    for s in &mut self.subs {
                        if s.sid == Some(sid) {
                            let markets = std::mem::take(&mut s.markets);
                            self.waiting
                                .extend(markets.into_iter().filter(|t| self.markets.contains(t)));
                            s.sid = Some(u64::MAX);
                            s.in_flight = true;
                        }
                    }
                }
            }
        }
        // Dead slots (never created or terminated) are skipped by flush; trim them when idle.
        if self.pending.is_empty() {
            self.subs.retain(|s| s.sid != Some(u64::MAX));
        }
        self.set_subscribed_gauge_from_subs();
    }

    fn set_subscribed_gauge_from_subs(&mut self) {
        let n: usize = self
            .subs
            .iter()
            .filter(|s| s.sid.is_some_and(|sid| sid != u64::MAX))
            .map(|s| s.markets.len())
            .sum();
        self.set_subscribed_gauge(n);
    }

    /// Publishes this connection's subscribed-market count into the shared total.
    fn set_subscribed_gauge(&mut self, n: usize) {
        let previous = std::mem::replace(&mut self.reported_subscribed, n);
        if n >= previous {
            self.health
                .markets_subscribed
                .fetch_add(n - previous, Ordering::Relaxed);
        } else {
            self.health
                .markets_subscribed
                .fetch_sub(previous - n, Ordering::Relaxed);
        }
        metrics::gauge!(m::CONNECTION_MARKETS)
            .set(self.health.markets_subscribed.load(Ordering::Relaxed) as f64);
    }
}

/// The tickers as JSON strings of a command.
fn strs(tickers: &[Ticker]) -> Vec<&str> {
    tickers.iter().map(|t| &**t).collect()
}

fn take_some(set: &mut BTreeSet<Ticker>, n: usize) -> Vec<Ticker> {
    let mut out = Vec::with_capacity(n.min(set.len()));
    while out.len() < n {
        match set.pop_first() {
            Some(t) => out.push(t),
            None => break,
        }
    }
    out
}
