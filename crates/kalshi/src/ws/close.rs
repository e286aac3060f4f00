//! How a connection ended or a handshake failed, and what to do next: the close-code table
//! of DESIGN §6.

use crate::auth::AuthError;
use std::time::Duration;
use tokio_tungstenite::tungstenite;

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
}
