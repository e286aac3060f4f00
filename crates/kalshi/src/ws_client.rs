//! The authenticated WebSocket handshake, the classification of close codes and subscribe
//! errors (DESIGN §6, WIRE.md), and builders for Kalshi's JSON commands.
//!
//! The connection itself is a plain `tokio-tungstenite` stream: reading, answering pings
//! (tungstenite queues the Pong and sends it on the next read or write) and the reconnect loop
//! belong to the caller, which knows its subscriptions.

use crate::auth::{AuthError, Signer};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open WebSocket (plain or TLS).
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Kalshi's WebSocket path; the handshake is signed over `GET` + this path.
pub const WS_PATH: &str = "/trade-api/ws/v2";
/// Production WebSocket URL (long-standing host).
pub const PRODUCTION_WS_URL: &str = "wss://api.elections.kalshi.com/trade-api/ws/v2";
/// Demo WebSocket URL.
pub const DEMO_WS_URL: &str = "wss://demo-api.kalshi.co/trade-api/ws/v2";
/// Default handshake timeout of [`connect`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Metric names of the WebSocket client.
pub mod metrics {
    /// Handshakes by `outcome` (`ok`, or [`super::WsError::kind`]).
    pub const CONNECTS_TOTAL: &str = "ws_connects_total";
    /// Handshakes refused with 401/403, and local signing failures.
    pub const AUTH_FAILURES_TOTAL: &str = "ws_auth_failures_total";
}

/// Channel names for [`subscribe`].
pub mod channel {
    pub const ORDERBOOK_DELTA: &str = "orderbook_delta";
    pub const TRADE: &str = "trade";
    pub const TICKER: &str = "ticker";
    pub const MARKET_LIFECYCLE_V2: &str = "market_lifecycle_v2";
}

/// A failed handshake or a closed connection.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid WebSocket URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The handshake could not be signed, or a header value is unusable.
    #[error("cannot sign the handshake: {0}")]
    Sign(#[from] AuthError),
    /// The server refused the credentials (HTTP 401 or 403 on the handshake).
    #[error("handshake refused with HTTP {status}: credentials rejected")]
    Auth { status: u16, body: String },
    /// The server answered the handshake with another HTTP status (429, 503 …).
    #[error("handshake refused with HTTP {status}: {body}")]
    HandshakeStatus { status: u16, body: String },
    /// Nothing listens, or the network failed before the handshake completed.
    #[error("cannot connect: {0}")]
    Refused(#[source] std::io::Error),
    /// The handshake did not complete in time.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The server closed the connection with a close frame.
    #[error("closed by server with code {code}: {reason}")]
    Closed { code: u16, reason: String },
    /// No ping or data within the liveness window: the caller closes and reconnects.
    #[error("no ping or data for {0:?}")]
    PingTimeout(Duration),
    /// Any other protocol or TLS failure.
    #[error("WebSocket error: {0}")]
    Protocol(#[source] Box<tungstenite::Error>),
}

/// What to do after a connection ends or a handshake fails (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Normal close (1000): reconnect at once.
    ReconnectNow,
    /// Going away, abnormal, server error, refused, timeouts: reconnect with jittered backoff.
    ReconnectBackoff,
    /// Policy violation (1008): log, check credentials, alert; reconnect with backoff.
    CheckCredentials,
    /// Credentials refused at the handshake (401/403): halt the component, no retry loop.
    Halt,
}

/// The close-code table of DESIGN §6.
pub fn close_action(code: u16) -> CloseAction {
    match code {
        1000 => CloseAction::ReconnectNow,
        1008 => CloseAction::CheckCredentials,
        // 1001 going away, 1006 abnormal, 1011 server error, and everything else.
        _ => CloseAction::ReconnectBackoff,
    }
}

impl WsError {
    /// The rule for this error.
    pub fn action(&self) -> CloseAction {
        match self {
            WsError::Auth { .. } | WsError::Sign(_) => CloseAction::Halt,
            WsError::Closed { code, .. } => close_action(*code),
            WsError::InvalidUrl { .. } => CloseAction::Halt,
            WsError::HandshakeStatus { .. }
            | WsError::Refused(_)
            | WsError::Timeout(_)
            | WsError::PingTimeout(_)
            | WsError::Protocol(_) => CloseAction::ReconnectBackoff,
        }
    }

    /// A short, fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            WsError::InvalidUrl { .. } => "invalid_url",
            WsError::Sign(_) => "sign",
            WsError::Auth { .. } => "auth",
            WsError::HandshakeStatus { .. } => "handshake_status",
            WsError::Refused(_) => "refused",
            WsError::Timeout(_) => "timeout",
            WsError::Closed { .. } => "closed",
            WsError::PingTimeout(_) => "ping_timeout",
            WsError::Protocol(_) => "protocol",
        }
    }

    /// Maps an error from reading or writing an open stream.
    pub fn from_stream(err: tungstenite::Error) -> WsError {
        match err {
            tungstenite::Error::Io(e) => WsError::Refused(e),
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                WsError::Closed {
                    code: 1006,
                    reason: "connection closed without a close frame".into(),
                }
            }
            tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => WsError::Closed {
                code: 1006,
                reason: "reset without closing handshake".into(),
            },
            other => WsError::Protocol(Box::new(other)),
        }
    }

    /// The error for a received close frame (`None`: closed without a code, treated as 1005).
    pub fn from_close(frame: Option<&tungstenite::protocol::CloseFrame>) -> WsError {
        match frame {
            Some(f) => WsError::Closed {
                code: u16::from(f.code),
                reason: f.reason.to_string(),
            },
            None => WsError::Closed {
                code: 1005,
                reason: String::new(),
            },
        }
    }
}

/// Opens a WebSocket to `url`, signing the handshake over `GET` + the URL's path when a signer
/// is given, with the default [`CONNECT_TIMEOUT`].
pub async fn connect(url: &str, signer: Option<&Signer>) -> Result<WsStream, WsError> {
    connect_with_timeout(url, signer, CONNECT_TIMEOUT).await
}

/// [`connect`] with a chosen handshake timeout.
pub async fn connect_with_timeout(
    url: &str,
    signer: Option<&Signer>,
    timeout: Duration,
) -> Result<WsStream, WsError> {
    let result = match tokio::time::timeout(timeout, handshake(url, signer)).await {
        Ok(r) => r,
        Err(_) => Err(WsError::Timeout(timeout)),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    ::metrics::counter!(metrics::CONNECTS_TOTAL, "outcome" => outcome).increment(1);
    if let Err(e) = &result
        && e.action() == CloseAction::Halt
    {
        ::metrics::counter!(metrics::AUTH_FAILURES_TOTAL).increment(1);
        tracing::error!(error = %e, "WebSocket credentials refused: this component must halt");
    }
    result
}

async fn handshake(url: &str, signer: Option<&Signer>) -> Result<WsStream, WsError> {
    let invalid = |reason: String| WsError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| invalid(e.to_string()))?;
    if !matches!(request.uri().scheme_str(), Some("ws" | "wss")) {
        return Err(invalid("scheme must be ws or wss".into()));
    }
    if let Some(signer) = signer {
        let path = request.uri().path().to_owned();
        let headers = signer.headers("GET", &path)?;
        for (name, value) in headers.iter() {
            let value = http::HeaderValue::from_str(value).map_err(|_| AuthError::BadKeyId)?;
            request.headers_mut().insert(name, value);
        }
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _response)) => Ok(stream),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(crate::rest::error::truncate_body)
                .unwrap_or_default();
            if matches!(status, 401 | 403) {
                Err(WsError::Auth { status, body })
            } else {
                Err(WsError::HandshakeStatus { status, body })
            }
        }
        Err(tungstenite::Error::Io(e)) => Err(WsError::Refused(e)),
        Err(tungstenite::Error::Url(e)) => Err(invalid(e.to_string())),
        Err(other) => Err(WsError::Protocol(Box::new(other))),
    }
}

/// `update_subscription` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAction {
    /// Add markets to the subscription.
    AddMarkets,
    /// Remove markets from the subscription.
    DeleteMarkets,
    /// Send a fresh `orderbook_snapshot` for the markets without changing the subscription.
    GetSnapshot,
}

impl UpdateAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateAction::AddMarkets => "add_markets",
            UpdateAction::DeleteMarkets => "delete_markets",
            UpdateAction::GetSnapshot => "get_snapshot",
        }
    }
}

fn command(id: u64, cmd: &str, params: Value) -> String {
    json!({"id": id, "cmd": cmd, "params": params}).to_string()
}

/// `subscribe` to `channels`, limited to `market_tickers` when not empty (required for
/// `orderbook_delta`; `trade` and `ticker` send every market when omitted).
pub fn subscribe(id: u64, channels: &[&str], market_tickers: &[String]) -> String {
    let mut params = json!({ "channels": channels });
    if !market_tickers.is_empty() {
        params["market_tickers"] = json!(market_tickers);
    }
    command(id, "subscribe", params)
}

/// `unsubscribe` from `sids`.
pub fn unsubscribe(id: u64, sids: &[u64]) -> String {
    command(id, "unsubscribe", json!({ "sids": sids }))
}

/// `update_subscription` of one `sid` (sent as `sids: [sid]`, the documented form).
pub fn update_subscription(
    id: u64,
    sid: u64,
    action: UpdateAction,
    market_tickers: &[String],
) -> String {
    command(
        id,
        "update_subscription",
        json!({ "sids": [sid], "market_tickers": market_tickers, "action": action.as_str() }),
    )
}

/// `list_subscriptions`.
pub fn list_subscriptions(id: u64) -> String {
    command(id, "list_subscriptions", json!({}))
}

/// What to do about an `error` reply to a command (WIRE.md error codes, DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeErrorAction {
    /// Our command is wrong (unknown channel 8, missing/invalid parts 2–5, 12–15): log, do not
    /// retry.
    NoRetry,
    /// Invalid parameter (11): the named markets do not exist (delisted, unknown): drop them
    /// and carry on with the rest.
    DropMarkets,
    /// Per-subscription market limit (26): shrink the batch, retry the rest elsewhere, alert.
    ShrinkBatch,
    /// Terminal channel error (10), buffer overflow (25), unknown sid (7): the subscription is
    /// gone — resubscribe (and repair the gap).
    Resubscribe,
    /// Rate limit (27), timeout (18), processing error (1), unknown codes: retry with backoff.
    Backoff,
    /// Authentication required (9): check credentials, alert.
    CheckCredentials,
}

/// Subscribe codes whose meaning is documented (asyncapi `x-error-codes`).
pub fn subscribe_error_action(code: i64) -> SubscribeErrorAction {
    match code {
        8 | 2 | 3 | 4 | 5 | 12 | 13 | 14 | 15 | 19..=24 | 28 => SubscribeErrorAction::NoRetry,
        11 => SubscribeErrorAction::DropMarkets,
        26 => SubscribeErrorAction::ShrinkBatch,
        7 | 10 | 25 => SubscribeErrorAction::Resubscribe,
        9 => SubscribeErrorAction::CheckCredentials,
        _ => SubscribeErrorAction::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_design() {
        assert_eq!(close_action(1000), CloseAction::ReconnectNow);
        for code in [1001, 1006, 1011, 1005, 4000] {
            assert_eq!(close_action(code), CloseAction::ReconnectBackoff, "{code}");
        }
        assert_eq!(close_action(1008), CloseAction::CheckCredentials);
        assert_eq!(
            WsError::Auth {
                status: 401,
                body: String::new()
            }
            .action(),
            CloseAction::Halt
        );
        assert_eq!(
            WsError::PingTimeout(Duration::from_secs(30)).action(),
            CloseAction::ReconnectBackoff
        );
        assert_eq!(
            WsError::from_close(None).action(),
            CloseAction::ReconnectBackoff
        );
    }

    #[test]
    fn subscribe_errors_follow_wire_md() {
        use SubscribeErrorAction as A;
        assert_eq!(subscribe_error_action(8), A::NoRetry);
        assert_eq!(subscribe_error_action(11), A::DropMarkets);
        assert_eq!(subscribe_error_action(26), A::ShrinkBatch);
        assert_eq!(subscribe_error_action(10), A::Resubscribe);
        assert_eq!(subscribe_error_action(25), A::Resubscribe);
        assert_eq!(subscribe_error_action(27), A::Backoff);
        assert_eq!(subscribe_error_action(18), A::Backoff);
        assert_eq!(subscribe_error_action(9), A::CheckCredentials);
        assert_eq!(subscribe_error_action(999), A::Backoff);
    }

    #[test]
    fn commands_are_kalshis_json() -> Result<(), serde_json::Error> {
        let v: Value = serde_json::from_str(&subscribe(
            1,
            &[channel::ORDERBOOK_DELTA],
            &[
                "FED-23DEC-T3.00".into(),
                "KXBTCD-26MAY3017-T73499.99".into(),
            ],
        ))?;
        assert_eq!(
            v,
            json!({"id": 1, "cmd": "subscribe", "params": {
                "channels": ["orderbook_delta"],
                "market_tickers": ["FED-23DEC-T3.00", "KXBTCD-26MAY3017-T73499.99"]}})
        );
        let v: Value =
            serde_json::from_str(&subscribe(2, &[channel::TRADE, channel::TICKER], &[]))?;
        assert_eq!(
            v,
            json!({"id": 2, "cmd": "subscribe", "params": {"channels": ["trade", "ticker"]}})
        );
        let v: Value = serde_json::from_str(&unsubscribe(3, &[1, 2]))?;
        assert_eq!(
            v,
            json!({"id": 3, "cmd": "unsubscribe", "params": {"sids": [1, 2]}})
        );
        let v: Value = serde_json::from_str(&update_subscription(
            4,
            456,
            UpdateAction::GetSnapshot,
            &["M-1".into()],
        ))?;
        assert_eq!(
            v,
            json!({"id": 4, "cmd": "update_subscription",
                   "params": {"sids": [456], "market_tickers": ["M-1"], "action": "get_snapshot"}})
        );
        assert_eq!(UpdateAction::AddMarkets.as_str(), "add_markets");
        assert_eq!(UpdateAction::DeleteMarkets.as_str(), "delete_markets");
        let v: Value = serde_json::from_str(&list_subscriptions(5))?;
        assert_eq!(
            v,
            json!({"id": 5, "cmd": "list_subscriptions", "params": {}})
        );
        Ok(())
    }
}
