//! Events of one WebSocket connection ([`crate::connection::session`]).

use super::InternalEvent;
use crate::connection::subscriptions::Effect;
use crate::metrics as m;
use kd_core::TimestampUs;
use kd_kalshi::parse::WsEvent;
use kd_kalshi::ws::{self, CloseAction, ErrorCode, WsError};
use std::time::Duration;

/// The socket opened.
pub struct Connected {
    pub conn: usize,
    pub markets: usize,
}

impl InternalEvent for Connected {
    fn emit(self) {
        tracing::info!(conn = self.conn, markets = self.markets, "connected");
        metrics::gauge!(m::CONNECTION_UP).increment(1.0);
    }
}

/// The socket closed (for any reason, shutdown included).
pub struct Disconnected;

impl InternalEvent for Disconnected {
    fn emit(self) {
        metrics::gauge!(m::CONNECTION_UP).decrement(1.0);
    }
}

/// The handshake was refused for the credentials (401/403): the connection halts.
pub struct AuthRefused<'a> {
    pub conn: usize,
    pub error: &'a WsError,
}

impl InternalEvent for AuthRefused<'_> {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_AUTH_FAILURES_TOTAL).increment(1);
        tracing::error!(conn = self.conn, error = %self.error, "credentials refused; connection halted (no retry)");
    }
}

/// A connect attempt failed (retried with backoff).
pub struct ConnectFailed<'a> {
    pub conn: usize,
    pub error: &'a WsError,
}

impl InternalEvent for ConnectFailed<'_> {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_ERRORS_TOTAL, "kind" => "connect").increment(1);
        tracing::warn!(conn = self.conn, error = %self.error, "connect failed");
    }
}

/// Reading the socket failed.
pub struct ReadFailed<'a> {
    pub conn: usize,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ReadFailed<'_> {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_ERRORS_TOTAL, "kind" => "read").increment(1);
        tracing::warn!(conn = self.conn, error = %self.error, "read failed");
    }
}

/// Sending a command failed.
pub struct SendFailed<'a> {
    pub conn: usize,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for SendFailed<'_> {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_ERRORS_TOTAL, "kind" => "send").increment(1);
        tracing::warn!(conn = self.conn, error = %self.error, "send failed");
    }
}

/// Nothing arrived within the silence limit: the connection is replaced.
pub struct SilenceTimeout {
    pub conn: usize,
}

impl InternalEvent for SilenceTimeout {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_SILENCE_TIMEOUTS_TOTAL).increment(1);
        tracing::warn!(
            conn = self.conn,
            "silent too long; replacing the connection"
        );
    }
}

/// The server sent a close frame.
pub struct ClosedByServer {
    pub conn: usize,
    pub code: Option<u16>,
}

impl InternalEvent for ClosedByServer {
    fn emit(self) {
        tracing::info!(conn = self.conn, code = ?self.code, "closed by the server");
        if self.code.map(ws::close_action) == Some(CloseAction::CheckCredentials) {
            // The reconnect's handshake is the credential check: a refused one halts (no
            // retry loop), an accepted one goes on.
            metrics::counter!(m::CONNECTION_POLICY_CLOSES_TOTAL).increment(1);
            tracing::error!(
                conn = self.conn,
                "closed for policy (1008): check the credentials; reconnecting with backoff (a refused handshake halts)"
            );
        }
    }
}

/// A reconnect is scheduled.
pub struct Reconnecting {
    pub conn: usize,
    /// `close_1000`, `silence`, `connect_failed`, … (the `reason` label).
    pub reason: &'static str,
    /// Whether it waits the backoff (a failure) rather than just the jitter.
    pub after_failure: bool,
    pub delay: Duration,
}

impl InternalEvent for Reconnecting {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_RECONNECTS_TOTAL, "reason" => self.reason).increment(1);
        if self.after_failure {
            metrics::counter!(m::CONNECTION_RETRIES_TOTAL).increment(1);
        }
        tracing::info!(
            conn = self.conn,
            delay_ms = self.delay.as_millis() as u64,
            "reconnecting"
        );
    }
}

/// A frame arrived (`bytes`: its payload size for text and binary frames).
pub struct FrameReceived {
    pub bytes: Option<usize>,
}

impl InternalEvent for FrameReceived {
    fn emit(self) {
        metrics::counter!(m::CONNECTION_FRAMES_TOTAL).increment(1);
        if let Some(bytes) = self.bytes {
            metrics::counter!(m::CONNECTION_BYTES_TOTAL).increment(bytes as u64);
        }
    }
}

/// The exchange answered a command (or a subscription) with `error` (other replies emit
/// nothing).
pub struct ExchangeError<'a> {
    pub conn: usize,
    pub event: &'a WsEvent,
}

impl InternalEvent for ExchangeError<'_> {
    fn emit(self) {
        let WsEvent::Error {
            id, sid, code, msg, ..
        } = self.event
        else {
            return;
        };
        let code = ErrorCode::from_code(*code);
        metrics::counter!(m::CONNECTION_SUBSCRIBE_ERRORS_TOTAL, "code" => code.label())
            .increment(1);
        tracing::warn!(
            conn = self.conn,
            id = ?id,
            sid = ?sid,
            code = code.code(),
            msg = msg.as_str(),
            "error from the exchange"
        );
    }
}

/// What the subscription state machine reports ([`Effect`]), at local time `now`.
pub struct SubscriptionEffect<'a> {
    pub conn: usize,
    pub effect: &'a Effect,
    pub now: TimestampUs,
}

impl InternalEvent for SubscriptionEffect<'_> {
    fn emit(self) {
        let conn = self.conn;
        match self.effect {
            Effect::Subscribed { noticed } => {
                for at in noticed {
                    let delay = (self.now.micros() - at.micros()).max(0) as f64 / 1e6;
                    metrics::histogram!(m::REGISTRY_SUBSCRIBE_DELAY_SECONDS).record(delay);
                }
            }
            Effect::Unsubscribed { .. } => {}
            Effect::NotFound { markets, retry_in } => {
                tracing::info!(conn, markets = markets.len(), first = ?markets.first(), retry_in_ms = retry_in.as_millis() as u64, "markets unknown to the exchange (error 11); tried again later while the registry lists them");
            }
            Effect::Shrunk { limit } => {
                tracing::error!(conn, limit, "subscription market limit hit; shrinking");
            }
            Effect::Refused { code, channel } => {
                tracing::error!(conn, code = code.code(), %channel, "command refused; not retried on this connection");
            }
            Effect::RetryLater { code, delay } => {
                metrics::counter!(m::CONNECTION_SUBSCRIBE_RETRIES_TOTAL, "code" => code.label())
                    .increment(1);
                tracing::warn!(
                    conn,
                    code = code.code(),
                    delay_ms = delay.as_millis() as u64,
                    "transient error; retrying the command with backoff"
                );
            }
            Effect::CredentialsNeeded { code } => {
                tracing::error!(
                    conn,
                    code = code.code(),
                    "the exchange wants an authenticated connection for this channel: check the credentials"
                );
            }
            Effect::SnapshotRequested { markets } => {
                metrics::counter!(m::REPAIR_SNAPSHOT_REQUESTS_TOTAL).increment(*markets as u64);
            }
        }
    }
}
