//! `kalshi-data replay`: captured data served back over Kalshi's own REST and WebSocket
//! protocol (docs/replay.md), so a client written for the live exchange runs unchanged against
//! the past.
//!
//! # Layout
//! - [`source`]: where the records come from — production, or the Parquet archive
//!   ([`archive_source`], decoding files with [`parquet_rows`]); both yield the same records.
//! - [`data`]: the range read as one exchange-time timeline, books at any
//!   instant, and the windows no gatherer covered.
//! - [`clock`]: the replay clock (`--speed X` or `max`).
//! - [`wire`]: records back into Kalshi's message shapes, written by hand ([`json_write`])
//!   into one reused buffer per connection and batch ([`frames`]).
//! - `session`: one connection's subscriptions and commands; `feed`: the WebSocket endpoint.
//! - `rest`: the REST endpoints as of the replay clock; `ndjson`: `GET /replay`.
//! - [`derived`]: book snapshots at intervals and trade bars, from the same timeline.

pub mod archive_source;
pub mod clock;
pub mod data;
pub mod derived;
mod feed;
pub mod frames;
pub mod json_write;
mod ndjson;
pub mod parquet_rows;
mod rest;
mod session;
pub mod source;
pub mod wire;

use archive_source::ArchiveSource;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use clock::Clock;
pub use clock::Speed;
use data::{DataError, Dataset, Source};
use kd_core::TimestampUs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

pub use feed::WS_PATH;
pub use rest::REST_PREFIX;

/// Flags of `kalshi-data replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Replay from this production store (`sqlite://PATH` or `postgres://…`).
    #[arg(
        long,
        env = "KALSHI_DATA_PRODUCTION",
        hide_env_values = true,
        conflicts_with = "archive"
    )]
    pub production: Option<String>,
    /// Replay from this Parquet archive: a folder (`PATH` or `file://PATH`) or
    /// `s3://BUCKET/PREFIX` (credentials from the standard AWS variables). Only the windows
    /// and columns the range (and `--tickers`) need are read.
    #[arg(long)]
    pub archive: Option<String>,
    /// S3-compatible endpoint of an `s3://` archive (`http://127.0.0.1:9000`).
    #[arg(long, requires = "archive")]
    pub s3_endpoint: Option<String>,
    /// S3 region of an `s3://` archive.
    #[arg(long, requires = "archive")]
    pub s3_region: Option<String>,
    /// Replay these markets only (comma-separated; default: every market of the range).
    #[arg(long, value_delimiter = ',')]
    pub tickers: Vec<String>,
    /// Start of the range (RFC 3339 or µs since the epoch): where the replay clock starts.
    #[arg(long, value_parser = kd_ops::time_arg::parse_time)]
    pub from: TimestampUs,
    /// End of the range (inclusive): the feeds close after it.
    #[arg(long, value_parser = kd_ops::time_arg::parse_time)]
    pub to: TimestampUs,
    /// Replay-clock speed: a factor of real time (`1`, `10`, `0.5`) or `max` (as fast as each
    /// client reads).
    #[arg(long, default_value = "1", value_parser = Speed::parse)]
    pub speed: Speed,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8790")]
    pub listen: SocketAddr,
    /// Require Kalshi's signed headers from this key: `KEY_ID=PUBLIC_KEY_PEM_FILE` (or the PEM
    /// text). Repeatable.
    #[arg(long = "auth", conflicts_with = "no_auth")]
    pub auth: Vec<String>,
    /// Accept unsigned requests and handshakes.
    #[arg(long)]
    pub no_auth: bool,
}

/// Why `replay` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("give --production URL or --archive URL")]
    NoSource,
    #[error("--from {from} is after --to {to}")]
    EmptyRange { from: String, to: String },
    #[error(transparent)]
    AuthArg(#[from] kd_kalshi::auth::KeyArgError),
    #[error("--auth key `{id}`: {reason}")]
    AuthKey { id: String, reason: String },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// What every handler shares.
pub(crate) struct Shared {
    pub data: Dataset,
    pub clock: Clock,
    verifier: Option<kd_kalshi::auth::Verifier>,
}

impl Shared {
    /// Checks Kalshi's signed headers when keys are configured.
    pub fn authorised(&self, headers: &HeaderMap, method: &str, path: &str) -> bool {
        let Some(verifier) = &self.verifier else {
            return true;
        };
        verifier.verify_headers(
            |name| headers.get(name).and_then(|v| v.to_str().ok()),
            method,
            path,
        )
    }
}

fn verifier(args: &ReplayArgs) -> Result<Option<kd_kalshi::auth::Verifier>, ReplayError> {
    if args.no_auth || args.auth.is_empty() {
        if !args.no_auth {
            tracing::warn!("no --auth key given: accepting unsigned requests (--no-auth)");
        }
        return Ok(None);
    }
    let mut v = kd_kalshi::auth::Verifier::new();
    for a in &args.auth {
        let (id, pem) = kd_kalshi::auth::key_arg(a)?;
        v.add_pem(&id, &pem).map_err(|e| ReplayError::AuthKey {
            id,
            reason: e.to_string(),
        })?;
    }
    Ok(Some(v))
}

/// Loads the range and serves it until the process is stopped. Prints
/// `replay listening on ADDR` once the socket is bound.
pub async fn run(args: &ReplayArgs) -> Result<(), ReplayError> {
    if args.from > args.to {
        return Err(ReplayError::EmptyRange {
            from: args.from.to_rfc3339(),
            to: args.to.to_rfc3339(),
        });
    }
    let verifier = verifier(args)?;
    let source = match (&args.production, &args.archive) {
        (Some(url), _) => Source::Production(url.clone()),
        (None, Some(url)) => {
            let s3 = kd_archive::S3Options {
                endpoint: args.s3_endpoint.clone(),
                region: args.s3_region.clone(),
                ..Default::default()
            };
            Source::Archive(ArchiveSource::open(url, &s3).map_err(DataError::from)?)
        }
        (None, None) => return Err(ReplayError::NoSource),
    };
    let data = Dataset::load(&source, args.from, args.to, &args.tickers).await?;
    tracing::info!(
        messages = data.timeline.len(),
        uncovered_windows = data.uncovered.len(),
        "replay loaded"
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ReplayError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ReplayError::Serve)?;
    // The clock starts once the data is loaded and the socket is ready, before the line that
    // says so (a client may take the line as the clock's start: it is never early).
    let clock = Clock::new(args.from, args.to, args.speed);
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "replay listening on {addr}");
    let _ = stdout.flush();
    serve(listener, data, clock, verifier).await
}

/// Serves `data` on `listener` with `clock` (no authentication when `verifier` is `None`)
/// until the process is stopped. Embeddable (the bench runs it in-process).
pub async fn serve(
    listener: tokio::net::TcpListener,
    data: Dataset,
    clock: Clock,
    verifier: Option<kd_kalshi::auth::Verifier>,
) -> Result<(), ReplayError> {
    let shared = Arc::new(Shared {
        clock,
        data,
        verifier,
    });
    axum::serve(listener, router(shared))
        .await
        .map_err(ReplayError::Serve)
}

fn router(shared: Arc<Shared>) -> Router {
    let p = |path: &str| format!("{REST_PREFIX}{path}");
    Router::new()
        .route(WS_PATH, get(feed::upgrade))
        .route("/replay", get(ndjson::replay))
        .route(&p("/exchange/status"), get(rest::status))
        .route(&p("/markets"), get(rest::markets))
        .route(&p("/markets/trades"), get(rest::trades))
        .route(&p("/markets/{ticker}"), get(rest::market))
        .route(&p("/markets/{ticker}/orderbook"), get(rest::orderbook))
        .with_state(shared)
}
