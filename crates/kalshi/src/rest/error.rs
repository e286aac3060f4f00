//! REST errors and what to do about each (DESIGN §6), decided by variant and status code —
//! never by searching error text.

use crate::auth::AuthError;
use std::time::Duration;

/// Longest error body kept in [`RestError::Status`] (enough for Kalshi's JSON error object).
pub const MAX_ERROR_BODY: usize = 512;

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The server answered with a non-success status.
    #[error("HTTP {status} on {path}: {body}")]
    Status {
        status: u16,
        path: String,
        /// From the JSON body's `retry_after_ms` or the `Retry-After` header (seconds).
        retry_after: Option<Duration>,
        /// The response body, cut to [`MAX_ERROR_BODY`] bytes.
        body: String,
    },
    /// No usable response: connection refused or reset, timeout, TLS, body read failure.
    #[error("transport error on {path}: {source}")]
    Transport {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// A success status with a body that is not the expected JSON.
    #[error("cannot decode response of {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be signed.
    #[error("cannot sign request: {0}")]
    Auth(#[from] AuthError),
    /// The configured base URL (or a path built from it) is not a valid URL.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A paginated listing returned the same cursor twice; following it would never end.
    #[error("{path} repeated cursor {cursor:?}")]
    CursorLoop { path: String, cursor: String },
    /// Shutdown was requested while waiting to retry.
    #[error("cancelled by shutdown")]
    Cancelled,
}

/// What the caller should do after an error (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Our request is wrong (400 and every status without a rule): log, do not retry.
    NoRetry,
    /// Credentials are refused (401, 403) or cannot be used: alert, halt the component.
    Halt,
    /// The resource is gone (404, e.g. a delisted market): skip it.
    Skip,
    /// Transient (429, 500, 502, 504, transport): back off and retry, waiting at least
    /// `after` when the server said so.
    Retry { after: Option<Duration> },
    /// 503: the exchange may be in maintenance — wait on `/exchange/status`, then retry.
    Maintenance,
}

impl RestError {
    /// The rule of DESIGN §6 for this error.
    pub fn action(&self) -> Action {
        match self {
            RestError::Status {
                status,
                retry_after,
                ..
            } => action_for_status(*status, *retry_after),
            RestError::Transport { .. } => Action::Retry { after: None },
            RestError::Auth(_) => Action::Halt,
            RestError::Decode { .. }
            | RestError::InvalidUrl { .. }
            | RestError::CursorLoop { .. }
            | RestError::Cancelled => Action::NoRetry,
        }
    }

    /// True when waiting and trying again can succeed (backoff or maintenance).
    pub fn is_retriable(&self) -> bool {
        matches!(self.action(), Action::Retry { .. } | Action::Maintenance)
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short, fixed label for metrics (`rest_errors_total{kind}`).
    pub fn kind(&self) -> &'static str {
        match self {
            RestError::Status { status, .. } => match status {
                400 => "bad_request",
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                429 => "rate_limited",
                500 | 502 | 504 => "server_error",
                503 => "unavailable",
                _ => "status_other",
            },
            RestError::Transport { .. } => "transport",
            RestError::Decode { .. } => "decode",
            RestError::Auth(_) => "auth",
            RestError::InvalidUrl { .. } => "invalid_url",
            RestError::CursorLoop { .. } => "cursor_loop",
            RestError::Cancelled => "cancelled",
        }
    }
}

/// The status-code table of DESIGN §6.
pub fn action_for_status(status: u16, retry_after: Option<Duration>) -> Action {
    match status {
        401 | 403 => Action::Halt,
        404 => Action::Skip,
        429 | 500 | 502 | 504 => Action::Retry { after: retry_after },
        503 => Action::Maintenance,
        _ => Action::NoRetry,
    }
}

/// `retry_after_ms` from a JSON error body: top level or inside an `error` object, as a number
/// or a numeric string.
pub fn retry_after_from_body(body: &[u8]) -> Option<Duration> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = value
        .get("retry_after_ms")
        .or_else(|| value.get("error").and_then(|e| e.get("retry_after_ms")))?;
    let ms = match field {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// A `Retry-After` header in delta-seconds (the HTTP-date form is ignored: the backoff applies).
pub fn retry_after_from_header(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The body as text, cut to [`MAX_ERROR_BODY`] bytes at a character boundary.
pub fn truncate_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= MAX_ERROR_BODY {
        return text.into_owned();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> RestError {
        RestError::Status {
            status: code,
            path: "/x".into(),
            retry_after: None,
            body: String::new(),
        }
    }

    #[test]
    fn status_table_matches_design() {
        assert_eq!(status(400).action(), Action::NoRetry);
        assert_eq!(status(401).action(), Action::Halt);
        assert_eq!(status(403).action(), Action::Halt);
        assert_eq!(status(404).action(), Action::Skip);
        for code in [429, 500, 502, 504] {
            assert_eq!(
                status(code).action(),
                Action::Retry { after: None },
                "{code}"
            );
            assert!(status(code).is_retriable());
        }
        assert_eq!(status(503).action(), Action::Maintenance);
        assert!(status(503).is_retriable());
        for code in [405, 409, 418, 501] {
            assert_eq!(status(code).action(), Action::NoRetry, "{code}");
        }
        assert!(!status(404).is_retriable());
        assert_eq!(RestError::Cancelled.action(), Action::NoRetry);
        assert_eq!(RestError::Auth(AuthError::Clock).action(), Action::Halt);
    }

    #[test]
    fn retry_after_sources() {
        let ms = Duration::from_millis;
        assert_eq!(
            retry_after_from_body(br#"{"retry_after_ms": 250}"#),
            Some(ms(250))
        );
        assert_eq!(
            retry_after_from_body(br#"{"error":{"retry_after_ms":"75"}}"#),
            Some(ms(75))
        );
        assert_eq!(retry_after_from_body(br#"{"retry_after_ms": -1}"#), None);
        assert_eq!(retry_after_from_body(b"not json"), None);
        assert_eq!(retry_after_from_header(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after_from_header("Wed, 21 Oct 2015 07:28:00 GMT"),
            None
        );
    }

    #[test]
    fn bodies_are_cut_at_char_boundaries() {
        let long = "é".repeat(MAX_ERROR_BODY);
        let cut = truncate_body(long.as_bytes());
        assert!(cut.len() <= MAX_ERROR_BODY + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_body(b"short"), "short");
    }
}
