//! The checks `up --exchange` makes before it starts any process, so a wrong key or a dead
//! network is one clear line each instead of gatherers restarting in a loop:
//!
//! 1. the private key file: readable, only by its owner (the gatherer refuses it otherwise),
//!    an RSA (or Ed25519) private key in PEM; the key id usable in a header;
//! 2. connectivity: `GET /exchange/status` answers 2xx;
//! 3. clock skew: the answer's HTTP `Date` against the local clock — a warning beyond
//!    [`SKEW_WARN_MS`], a refusal beyond [`SKEW_REFUSE_MS`] (signatures carry the local time,
//!    and the gatherers' receive times are the data's timestamps);
//! 4. the key: a WebSocket handshake signed with it succeeds. A 401/403 says which part was
//!    refused when the exchange's answer says so (`unknown API key id` or `invalid API key
//!    signature`); Kalshi's documents promise no such detail and the simulator gives none, so
//!    usually it says that one of the two is wrong.
//!
//! No message holds the key id or any key material: the key id is named by its flag.

use super::exchange::{Credentials, Exchange};
use kd_kalshi::auth::{AuthError, Refusal, Signer};
use kd_kalshi::ws::WsError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Beyond this much skew the preflight warns (the `Date` header has one-second resolution,
/// so less is noise).
pub const SKEW_WARN_MS: i64 = 2_000;
/// Beyond this much skew the preflight refuses to start: receive times would be that wrong,
/// and exchanges refuse signatures whose timestamp is far from their own clock.
pub const SKEW_REFUSE_MS: i64 = 30_000;
/// Longest each network check waits.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How the key id and the private key are given (named in messages instead of their values).
pub const KEY_ID_SOURCE: &str = "--key-id / KALSHI_DATA_UP_KEY_ID";

/// One thing that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("key id: missing; give {KEY_ID_SOURCE}")]
    MissingKeyId,
    #[error("private key: missing; give --private-key PATH (or KALSHI_DATA_UP_PRIVATE_KEY)")]
    MissingKey,
    #[error("key id ({KEY_ID_SOURCE}): must be printable ASCII without spaces")]
    BadKeyId,
    #[error("private key {path}: cannot read it: {reason}")]
    KeyUnreadable { path: PathBuf, reason: String },
    #[error("private key {path}: readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("private key {path}: not an RSA (or Ed25519) private key in PEM: {reason}")]
    KeyInvalid { path: PathBuf, reason: String },
    #[error("connectivity: GET {url} failed: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("connectivity: GET {url} answered HTTP {status}, not 2xx")]
    Status { url: String, status: u16 },
    #[error(
        "clock: the local clock is {} by at least {} ms against the exchange's (refused beyond {SKEW_REFUSE_MS} ms); fix it (NTP) and retry",
        direction(.skew_ms),
        .skew_ms.unsigned_abs()
    )]
    Skew { skew_ms: i64 },
    #[error(
        "key: the exchange refused the key id ({KEY_ID_SOURCE}) with HTTP {status}: it knows no such key"
    )]
    KeyIdRefused { status: u16 },
    #[error(
        "key: the exchange refused the signature with HTTP {status}: the private key {path} is not the key id's pair"
    )]
    SignatureRefused { status: u16, path: PathBuf },
    #[error(
        "key: the exchange refused the signed WebSocket handshake with HTTP {status}: the key id ({KEY_ID_SOURCE}) or the private key {path} is wrong"
    )]
    KeyRefused { status: u16, path: PathBuf },
    #[error("websocket: the signed handshake to {url} failed: {reason}")]
    WebSocket { url: String, reason: String },
}

/// Which way a positive (exchange ahead) or negative offset puts the local clock.
fn direction(skew_ms: &i64) -> &'static str {
    if *skew_ms > 0 { "behind" } else { "ahead" }
}

/// Every check that failed, one line each (printed by the command, which exits 2).
#[derive(Debug)]
pub struct PreflightFailed(pub Vec<PreflightError>);

impl fmt::Display for PreflightFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "up: preflight FAILED: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PreflightFailed {}

/// What the preflight found when it passed.
#[derive(Debug, Clone, Default)]
pub struct Passed {
    /// The least skew consistent with the `Date` header (positive: local clock behind), ms.
    pub skew_ms: Option<i64>,
    /// `exchange_active` and `trading_active` of `/exchange/status`.
    pub exchange_active: Option<bool>,
    pub trading_active: Option<bool>,
    /// Worth saying, not worth refusing.
    pub warnings: Vec<String>,
}

impl Passed {
    /// The lines `up` prints before it starts the processes.
    pub fn lines(&self, exchange: &Exchange) -> Vec<String> {
        let flag = |v: Option<bool>| v.map_or("?".to_string(), |b| b.to_string());
        let mut out = vec![
            format!(
                "up: preflight: {} answers (exchange_active={}, trading_active={})",
                exchange.status_url(),
                flag(self.exchange_active),
                flag(self.trading_active)
            ),
            format!(
                "up: preflight: key accepted (signed WebSocket handshake to {})",
                exchange.ws_url
            ),
        ];
        if let Some(ms) = self.skew_ms {
            out.push(format!(
                "up: preflight: clock within {} ms of the exchange's (warn beyond {SKEW_WARN_MS}, refuse beyond {SKEW_REFUSE_MS})",
                ms.unsigned_abs()
            ));
        }
        out.extend(
            self.warnings
                .iter()
                .map(|w| format!("up: preflight WARNING: {w}")),
        );
        out
    }
}

/// The key id and private key path of `up`'s flags (or their variables); the path made
/// absolute so a child finds it whatever its working directory.
pub fn credentials(args: &super::UpArgs) -> Result<Credentials, PreflightFailed> {
    let mut missing = Vec::new();
    let key_id = args.key_id.clone().filter(|k| !k.is_empty());
    if key_id.is_none() {
        missing.push(PreflightError::MissingKeyId);
    }
    let path = args
        .private_key
        .clone()
        .filter(|p| !p.as_os_str().is_empty());
    if path.is_none() {
        missing.push(PreflightError::MissingKey);
    }
    match (key_id, path) {
        (Some(key_id), Some(path)) => Ok(Credentials {
            key_id: kd_core::config::Secret::new(key_id),
            private_key: std::path::absolute(&path).unwrap_or(path),
        }),
        _ => Err(PreflightFailed(missing)),
    }
}

/// Runs every check that can run; returns all failures at once.
pub async fn run(exchange: &Exchange, creds: &Credentials) -> Result<Passed, PreflightFailed> {
    let mut failed = Vec::new();
    let signer = match load_signer(creds) {
        Ok(s) => Some(s),
        Err(e) => {
            failed.push(e);
            None
        }
    };
    let mut passed = Passed::default();
    let reachable = match status(exchange, &mut passed).await {
        Ok(()) => true,
        Err(e) => {
            failed.push(e);
            false
        }
    };
    if reachable
        && let Some(signer) = &signer
        && let Err(e) = handshake(exchange, signer, &creds.private_key).await
    {
        failed.push(e);
    }
    if failed.is_empty() {
        Ok(passed)
    } else {
        Err(PreflightFailed(failed))
    }
}

/// The key file and the key id, checked locally.
fn load_signer(creds: &Credentials) -> Result<Signer, PreflightError> {
    let path = &creds.private_key;
    if creds.key_id.is_empty() {
        return Err(PreflightError::MissingKeyId);
    }
    let unreadable = |e: std::io::Error| PreflightError::KeyUnreadable {
        path: path.clone(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(PreflightError::KeyUnreadable {
            path: path.clone(),
            reason: "not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PreflightError::KeyPermissions {
                path: path.clone(),
                mode,
            });
        }
    }
    let pem = std::fs::read_to_string(path).map_err(unreadable)?;
    Signer::from_pem(creds.key_id.expose(), &pem).map_err(|e| match e {
        AuthError::BadKeyId => PreflightError::BadKeyId,
        AuthError::BadPrivateKey { reason } => PreflightError::KeyInvalid {
            path: path.clone(),
            reason,
        },
        other => PreflightError::KeyInvalid {
            path: path.clone(),
            reason: other.to_string(),
        },
    })
}

/// `GET /exchange/status`: connectivity and clock skew.
async fn status(exchange: &Exchange, passed: &mut Passed) -> Result<(), PreflightError> {
    let url = exchange.status_url();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| PreflightError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let sent = unix_ms();
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| PreflightError::Unreachable {
            url: url.clone(),
            reason: reqwest_reason(&e),
        })?;
    let received = unix_ms();
    let status = response.status();
    if !status.is_success() {
        return Err(PreflightError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(http_date_ms);
    match date {
        Some(date) => {
            let skew = least_skew_ms(date, sent, received);
            if skew.abs() > SKEW_REFUSE_MS {
                return Err(PreflightError::Skew { skew_ms: skew });
            }
            if skew.abs() > SKEW_WARN_MS {
                passed.warnings.push(format!(
                    "the local clock differs from the exchange's by at least {} ms (warn beyond {SKEW_WARN_MS} ms); receive times will be off by as much",
                    skew.unsigned_abs()
                ));
            }
            passed.skew_ms = Some(skew);
        }
        None => passed
            .warnings
            .push("the exchange's answer has no usable Date header: clock skew not checked".into()),
    }
    if let Ok(body) = response.json::<serde_json::Value>().await {
        passed.exchange_active = body.get("exchange_active").and_then(|v| v.as_bool());
        passed.trading_active = body.get("trading_active").and_then(|v| v.as_bool());
        if passed.exchange_active == Some(false) {
            passed.warnings.push(
                "the exchange says exchange_active=false (maintenance): the gatherers wait for it"
                    .into(),
            );
        }
    }
    Ok(())
}

/// The signed WebSocket handshake, then the connection is dropped.
async fn handshake(
    exchange: &Exchange,
    signer: &Signer,
    path: &Path,
) -> Result<(), PreflightError> {
    match kd_kalshi::ws::connect::connect_with_timeout(&exchange.ws_url, Some(signer), TIMEOUT)
        .await
    {
        Ok(stream) => {
            drop(stream);
            Ok(())
        }
        Err(WsError::Auth { status, body }) => Err(refusal(status, &body, path)),
        Err(e) => Err(PreflightError::WebSocket {
            url: exchange.ws_url.clone(),
            reason: e.to_string(),
        }),
    }
}

/// Names the refused part from the 401/403 body when it says which.
fn refusal(status: u16, body: &str, path: &Path) -> PreflightError {
    let text = body.to_ascii_lowercase();
    let says = |r: Refusal| text.contains(&r.message().to_ascii_lowercase());
    if says(Refusal::UnknownKey) {
        PreflightError::KeyIdRefused { status }
    } else if says(Refusal::BadSignature) {
        PreflightError::SignatureRefused {
            status,
            path: path.to_owned(),
        }
    } else {
        PreflightError::KeyRefused {
            status,
            path: path.to_owned(),
        }
    }
}

/// The least clock offset (exchange − local, ms) consistent with a `Date` of `date_ms`
/// (truncated to the second: the exchange's time was in `[date, date + 1 s)`) seen on an
/// answer to a request sent at `sent` and received at `received` (local ms). 0 when the
/// clocks may agree.
pub fn least_skew_ms(date_ms: i64, sent: i64, received: i64) -> i64 {
    let low = date_ms - received;
    let high = date_ms + 999 - sent;
    if low > 0 {
        low
    } else if high < 0 {
        high
    } else {
        0
    }
}

/// Unix milliseconds of an IMF-fixdate (`Wed, 02 Dec 2026 16:21:58 GMT`, RFC 9110).
pub fn http_date_ms(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let rfc3339 = format!("{year}-{month:02}-{day:0>2}T{time}Z");
    kd_core::TimestampUs::parse_rfc3339(&rfc3339)
        .ok()
        .map(|t| t.millis())
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// The innermost cause of a request failure (`Connection refused`, a DNS error, a timeout),
/// which reqwest's own message hides behind "error sending request".
fn reqwest_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        assert_eq!(http_date_ms("Thu, 01 Jan 1970 00:00:10 GMT"), Some(10_000));
        assert_eq!(
            http_date_ms("Wed, 02 Dec 2026 16:21:58 GMT"),
            kd_core::TimestampUs::parse_rfc3339("2026-12-02T16:21:58Z")
                .ok()
                .map(|t| t.millis())
        );
        assert_eq!(http_date_ms("Wed, 02 Foo 2026 16:21:58 GMT"), None);
        assert_eq!(http_date_ms("yesterday"), None);
    }

    #[test]
    fn skew_is_the_least_the_date_allows() {
        // Date 100.000 s, so the exchange's time was in [100.000, 100.999].
        // Request at 100.200–100.400 local: consistent with no skew.
        assert_eq!(least_skew_ms(100_000, 100_200, 100_400), 0);
        // Local clock 5 s behind: sent at 95.2, received 95.4 → at least 4.6 s.
        assert_eq!(least_skew_ms(100_000, 95_200, 95_400), 4_600);
        // Local clock 40 s ahead.
        assert_eq!(least_skew_ms(100_000, 140_200, 140_400), -39_201);
    }

    #[test]
    fn a_refusal_names_the_part_the_exchange_names() {
        let p = Path::new("/k.pem");
        let body = |r: Refusal| format!("{{\"error\":{{\"message\":\"{}\"}}}}", r.message());
        assert!(matches!(
            refusal(401, &body(Refusal::UnknownKey), p),
            PreflightError::KeyIdRefused { status: 401 }
        ));
        assert!(matches!(
            refusal(401, &body(Refusal::BadSignature), p),
            PreflightError::SignatureRefused { .. }
        ));
        assert!(matches!(
            refusal(403, "forbidden", p),
            PreflightError::KeyRefused { status: 403, .. }
        ));
    }

    #[test]
    fn skew_messages_say_which_way() {
        let behind = PreflightError::Skew { skew_ms: 40_000 }.to_string();
        assert!(behind.contains("behind by at least 40000 ms"), "{behind}");
        let ahead = PreflightError::Skew { skew_ms: -40_000 }.to_string();
        assert!(ahead.contains("ahead by at least 40000 ms"), "{ahead}");
    }
}
