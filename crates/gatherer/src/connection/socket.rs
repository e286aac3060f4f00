//! Opening one authenticated WebSocket. Frame limits are set far above anything Kalshi sends
//! so that an oversized frame reaches the router (which counts and refuses it) instead of
//! closing the connection inside the WebSocket library.

use kd_kalshi::auth::Signer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The socket type of one connection.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Hard ceiling of one WebSocket message inside the library (the router refuses far smaller).
const LIBRARY_MAX_MESSAGE: usize = 256 << 20;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("handshake refused with HTTP {status}")]
    Refused { status: u16 },
    #[error("invalid WebSocket URL: {0}")]
    Url(String),
    #[error("cannot sign the handshake: {0}")]
    Sign(String),
    #[error("connect failed: {0}")]
    Io(String),
}

impl ConnectError {
    /// Credentials refused (401/403): retrying cannot help.
    pub fn is_auth(&self) -> bool {
        matches!(self, ConnectError::Refused { status: 401 | 403 })
    }
}

/// Connects to `url`, signing the handshake when a signer is given.
pub async fn connect(url: &str, signer: Option<&Signer>) -> Result<WsStream, ConnectError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::Url(e.to_string()))?;
    if let Some(signer) = signer {
        let path = request.uri().path().to_string();
        let headers = signer
            .headers("GET", &path)
            .map_err(|e| ConnectError::Sign(e.to_string()))?;
        for (name, value) in headers.iter() {
            let value =
                HeaderValue::from_str(value).map_err(|e| ConnectError::Sign(e.to_string()))?;
            request.headers_mut().insert(name, value);
        }
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(LIBRARY_MAX_MESSAGE))
        .max_frame_size(Some(LIBRARY_MAX_MESSAGE));
    match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
        Ok((stream, _)) => Ok(stream),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(ConnectError::Refused {
            status: response.status().as_u16(),
        }),
        Err(e) => Err(ConnectError::Io(e.to_string())),
    }
}
