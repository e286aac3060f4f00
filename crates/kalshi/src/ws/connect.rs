//! The authenticated WebSocket handshake.
//!
//! The connection itself is a plain `tokio-tungstenite` stream: reading, answering pings
//! (tungstenite queues the Pong and sends it on the next read or write) and the reconnect loop
//! belong to the caller, which knows its subscriptions.

use super::{CloseAction, WsError};
use crate::auth::{AuthError, Signer};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
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

/// How to open a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The handshake must complete within this.
    pub timeout: Duration,
    /// Largest message (and frame) the library accepts; `None` keeps tungstenite's default
    /// (64 MiB). A capture sets it far above anything Kalshi sends, so that an oversized frame
    /// reaches its own check (counted, connection kept) instead of closing the connection
    /// inside the library.
    pub max_message_bytes: Option<usize>,
    /// Disable Nagle's algorithm (commands go out at once).
    pub nodelay: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: CONNECT_TIMEOUT,
            max_message_bytes: None,
            nodelay: false,
        }
    }
}

/// Opens a WebSocket to `url`, signing the handshake over `GET` + the URL's path when a signer
/// is given, with the default [`CONNECT_TIMEOUT`].
pub async fn connect(url: &str, signer: Option<&Signer>) -> Result<WsStream, WsError> {
    connect_with(url, signer, ConnectOptions::default()).await
}

/// [`connect`] with a chosen handshake timeout.
pub async fn connect_with_timeout(
    url: &str,
    signer: Option<&Signer>,
    timeout: Duration,
) -> Result<WsStream, WsError> {
    let options = ConnectOptions {
        timeout,
        ..ConnectOptions::default()
    };
    connect_with(url, signer, options).await
}

/// [`connect`] with every option chosen.
pub async fn connect_with(
    url: &str,
    signer: Option<&Signer>,
    options: ConnectOptions,
) -> Result<WsStream, WsError> {
    let result = match tokio::time::timeout(options.timeout, handshake(url, signer, options)).await
    {
        Ok(r) => r,
        Err(_) => Err(WsError::Timeout(options.timeout)),
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

async fn handshake(
    url: &str,
    signer: Option<&Signer>,
    options: ConnectOptions,
) -> Result<WsStream, WsError> {
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
    let config = options.max_message_bytes.map(|max| {
        WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    });
    match tokio_tungstenite::connect_async_with_config(request, config, options.nodelay).await {
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
