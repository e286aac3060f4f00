//! One connection of the pool: connect, subscribe, read, reconnect — forever, until shutdown.
//!
//! A thin actor around [`Subscriptions`]: it owns the socket and the router, feeds the state
//! machine the manager's [`ConnCommand`]s and the exchange's replies, and sends the commands
//! it returns. What to do after a close follows `kd_kalshi::ws::close_action`.

use super::ended::{Ended, ended_by_close};
use super::gauge::SubscribedShare;
use super::subscriptions::{Effect, Subscriptions};
pub use super::{ConnCommand, SessionError, SessionSettings};
use crate::events::connection as ev;
use crate::events::emit;
use crate::health::Health;
use crate::router::Router;
use futures::{SinkExt, StreamExt};
use kd_core::TimestampUs;
use kd_core::backoff::Backoff;
use kd_kalshi::parse::WsFrame as Frame;
use kd_kalshi::ws::{self, ConnectOptions, WsError, WsStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

/// How often waiting markets are (re)requested when nothing else happens.
const FLUSH_TICK: Duration = Duration::from_millis(250);

/// Hard ceiling of one WebSocket message (and frame) inside the library: what one connection
/// may buffer. Twice the router's refusal size (`pipeline::MAX_FRAME_BYTES`, 8 MiB), so a
/// message between the two still reaches the router (counted `oversized`, connection kept);
/// beyond it the library ends the connection (counted as a disconnect) and it is replaced,
/// instead of buffering up to 256 MiB per connection as before. Kalshi's largest real messages
/// are far below either: a full 99-level book both sides is about 4 KB, so even 1,000
/// markets' snapshots in one reply (about 4.2 MB) fit (docs/gatherer.md#bounds).
pub const LIBRARY_MAX_MESSAGE: usize = 2 * crate::pipeline::MAX_FRAME_BYTES;

/// The connection task.
pub struct Session {
    settings: SessionSettings,
    router: Router,
    commands: mpsc::UnboundedReceiver<ConnCommand>,
    health: Arc<Health>,
    subs: Subscriptions,
    /// Receive time of this socket's last frame (start of the window lost if it dies).
    last_frame_at: TimestampUs,
    /// This connection's share of `health.markets_subscribed`.
    share: SubscribedShare,
}

impl Session {
    pub fn new(
        settings: SessionSettings,
        router: Router,
        commands: mpsc::UnboundedReceiver<ConnCommand>,
        health: Arc<Health>,
    ) -> Self {
        let mut subs = Subscriptions::new(settings.global_channels.clone(), settings.per_sub_limit);
        subs.use_yes_price = router.use_yes_price();
        Session {
            settings,
            router,
            commands,
            health,
            subs,
            last_frame_at: TimestampUs::from_micros(0),
            share: SubscribedShare::default(),
        }
    }

    /// Runs until shutdown (Ok) or refused credentials (Err).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SessionError> {
        let mut backoff = Backoff::new(self.settings.policy);
        let id = self.settings.id;
        let options = ConnectOptions {
            max_message_bytes: Some(LIBRARY_MAX_MESSAGE),
            nodelay: true,
            ..ConnectOptions::default()
        };
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let connected = tokio::select! {
                c = ws::connect_with(&self.settings.url, self.settings.signer.as_deref(), options) => c,
                _ = shutdown.cancelled() => break,
            };
            let ended = match connected {
                Ok(socket) => self.session(socket, &shutdown, &mut backoff).await,
                Err(error @ WsError::Auth { status, .. }) => {
                    emit(ev::AuthRefused {
                        conn: id,
                        error: &error,
                    });
                    self.health.halted.store(true, Ordering::Relaxed);
                    self.router.finish();
                    return Err(SessionError::AuthRefused { id, status });
                }
                Err(error) => {
                    emit(ev::ConnectFailed {
                        conn: id,
                        error: &error,
                    });
                    Ended::Backoff("connect_failed")
                }
            };
            let Some((reason, after_failure, delay)) =
                ended.delay(&mut backoff, &self.settings.policy)
            else {
                break;
            };
            emit(ev::Reconnecting {
                conn: id,
                reason,
                after_failure,
                delay,
            });
            // Commands keep arriving while we wait: apply them to the wanted set.
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    _ = shutdown.cancelled() => break,
                    cmd = self.commands.recv() => match cmd {
                        Some(cmd) => self.command(cmd),
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
        mut socket: WsStream,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Ended {
        emit(ev::Connected {
            conn: self.settings.id,
            markets: self.subs.wanted().len(),
        });
        self.subs.connected();
        self.last_frame_at = self.router.clock().now();
        self.health.connections_up.fetch_add(1, Ordering::Relaxed);
        let mut tick = tokio::time::interval(FLUSH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stable = false;
        // Silence is measured from the last frame, not per wait: the other branches (commands,
        // the flush tick) end a wait long before any silence limit, so a timeout around each
        // read would never fire.
        let mut last_frame = Instant::now();
        let ended = loop {
            if let Err(e) = self.flush(&mut socket).await {
                emit(ev::SendFailed {
                    conn: self.settings.id,
                    error: &e,
                });
                break Ended::Backoff("send_failed");
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let _ = socket.close(Some(CloseFrame { code: CloseCode::Normal, reason: "shutdown".into() })).await;
                    break Ended::Shutdown;
                }
                _ = tokio::time::sleep_until(last_frame + self.settings.silence) => {
                    emit(ev::SilenceTimeout { conn: self.settings.id });
                    break Ended::Backoff("silence");
                }
                frame = socket.next() => {
                    let frame = match frame {
                        None => break Ended::Backoff("eof"),
                        Some(Err(e)) => {
                            emit(ev::ReadFailed { conn: self.settings.id, error: &e });
                            break Ended::Backoff("read_error");
                        }
                        Some(Ok(frame)) => frame,
                    };
                    last_frame = Instant::now();
                    self.last_frame_at = self.router.clock().now();
                    if let Some(ended) = self.frame(frame).await {
                        break ended;
                    }
                    if !stable && self.subs.is_settled() {
                        // Subscribed to everything: the connection works, forget past failures.
                        stable = true;
                        backoff.reset();
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
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
        emit(ev::Disconnected);
        // Whatever this socket carried between its last message and the next snapshot is
        // unknown: one gap record per subscription's worth of markets, one per global channel.
        let markets: Vec<String> = self.subs.wanted().iter().map(|t| t.to_string()).collect();
        let per_record = self.subs.per_sub_limit();
        self.subs.disconnected();
        self.share.set(&self.health, 0);
        if !matches!(ended, Ended::Shutdown) {
            let now = self.router.clock().now();
            let globals = &self.settings.global_channels;
            self.router
                .connection_lost(&markets, per_record, globals, self.last_frame_at, now);
        }
        ended
    }

    /// Routes one frame; `Some` when it ends the socket.
    async fn frame(&mut self, frame: Message) -> Option<Ended> {
        let (text, bytes) = match &frame {
            Message::Text(text) => (Some(text.as_str()), Some(text.len())),
            Message::Binary(bytes) => (None, Some(bytes.len())),
            _ => (None, None),
        };
        emit(ev::FrameReceived { bytes });
        let now = self.router.clock().now();
        let reply = match (&frame, text) {
            (_, Some(text)) => self.router.route(Frame::Text(text), now).await,
            (Message::Binary(bytes), None) => self.router.route(Frame::Binary(bytes), now).await,
            // Pongs to pings are queued by the library and sent on the next read.
            (Message::Close(close), _) => {
                let code = close.as_ref().map(|f| u16::from(f.code));
                emit(ev::ClosedByServer {
                    conn: self.settings.id,
                    code,
                });
                return Some(ended_by_close(code));
            }
            _ => None,
        };
        if let Some(reply) = reply {
            emit(ev::ExchangeError {
                conn: self.settings.id,
                event: &reply,
            });
            self.subs.on_reply(reply, Instant::now());
            self.effects();
        }
        None
    }

    fn command(&mut self, cmd: ConnCommand) {
        match cmd {
            ConnCommand::Add(markets) => self.subs.add(markets),
            ConnCommand::Remove(markets) => self.subs.remove(markets),
        }
        self.effects();
    }

    /// Sends what the state machine owes the exchange now.
    async fn flush(
        &mut self,
        socket: &mut WsStream,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.subs
            .request_snapshots(self.router.take_snapshot_requests());
        let commands = self.subs.poll(Instant::now());
        self.effects();
        for command in commands {
            socket.send(Message::text(command.to_json())).await?;
        }
        Ok(())
    }

    /// Logs and counts the state machine's effects; tells the router of removed markets.
    fn effects(&mut self) {
        let now = self.router.clock().now();
        for effect in self.subs.take_effects() {
            if let Effect::Unsubscribed { sid, markets } = &effect {
                for t in markets {
                    self.router.sequences().market_removed(*sid, t);
                }
            }
            emit(ev::SubscriptionEffect {
                conn: self.settings.id,
                effect: &effect,
                now,
            });
        }
        self.share.set(&self.health, self.subs.subscribed_count());
    }
}
