//! The continuous exporter's HTTP server: `/health` (JSON) and `/metrics` (Prometheus text),
//! on the `listen` address, like the gatherer and the deduplicator.
//!
//! `/health` always answers 200 while the process runs (a scrape target that answers is up);
//! its `status` says how the export goes: `starting` before the first cycle ends, `ok` after a
//! cycle that exported everything due, `failing` while cycles fail (they are retried).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kd_core::{Table, TimestampUs};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
struct Figures {
    last_ok: Option<TimestampUs>,
    last_error: Option<String>,
    consecutive_failures: u32,
    watermarks: BTreeMap<Table, (TimestampUs, TimestampUs)>,
    cycles: u64,
}

/// The exporter's live state behind `/health` (short critical sections only).
#[derive(Debug)]
pub struct Health {
    started: TimestampUs,
    state: Mutex<Figures>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            started: TimestampUs::now(),
            state: Mutex::new(Figures::default()),
        }
    }
}

/// One table in `/health`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableReport {
    /// End of the last exported window (RFC 3339).
    pub watermark: String,
    /// When the next window is due (its end + the settle delay, RFC 3339).
    pub next_due: String,
    /// How long the next window has been due without being exported, seconds, ≥ 0 (the
    /// `export_lag_seconds` gauge): 0 while healthy.
    pub lag_seconds: f64,
}

/// The `/health` document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `starting`, `ok` or `failing`.
    pub status: &'static str,
    pub started_at: String,
    /// Export cycles completed without error.
    pub cycles: u64,
    /// End of the last cycle without error.
    pub last_ok: Option<String>,
    /// The error of the latest failed cycle, until a cycle succeeds.
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// Watermark and lag of each table that has one.
    pub tables: BTreeMap<Table, TableReport>,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Figures> {
        // The state is plain figures; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cycle exported everything due; `watermarks` (each with when the table's next window
    /// is due) as read after it.
    pub fn cycle_ok(&self, watermarks: BTreeMap<Table, (TimestampUs, TimestampUs)>) {
        let mut s = self.lock();
        s.last_ok = Some(TimestampUs::now());
        s.last_error = None;
        s.consecutive_failures = 0;
        s.cycles += 1;
        s.watermarks = watermarks;
    }

    /// A cycle failed (it is retried with backoff).
    pub fn cycle_failed(&self, error: String) {
        let mut s = self.lock();
        s.last_error = Some(error);
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
    }

    /// The document `/health` serves.
    pub fn report(&self) -> HealthReport {
        let now = TimestampUs::now();
        let s = self.lock();
        let status = if s.consecutive_failures > 0 {
            "failing"
        } else if s.last_ok.is_some() {
            "ok"
        } else {
            "starting"
        };
        HealthReport {
            status,
            started_at: self.started.to_rfc3339(),
            cycles: s.cycles,
            last_ok: s.last_ok.map(|t| t.to_rfc3339()),
            last_error: s.last_error.clone(),
            consecutive_failures: s.consecutive_failures,
            tables: s
                .watermarks
                .iter()
                .map(|(table, (wm, due))| {
                    (
                        *table,
                        TableReport {
                            watermark: wm.to_rfc3339(),
                            next_due: due.to_rfc3339(),
                            // Display only: microseconds to seconds.
                            lag_seconds: (now.micros().saturating_sub(due.micros())).max(0) as f64
                                / 1e6,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The routes of the exporter's HTTP server.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(health_json))
        .route("/metrics", get(metrics_text))
        .with_state(health)
}

async fn health_json(State(health): State<Arc<Health>>) -> Response {
    Json(health.report()).into_response()
}

async fn metrics_text() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        kd_core::telemetry::render_metrics(),
    )
        .into_response()
}

/// Why a non-loopback `listen` is refused.
pub const NOT_LOOPBACK: &str = "`listen` must be a loopback address (127.0.0.1 / [::1]): \
     /health and /metrics are served without TLS or a token; scrape them on the host, or \
     through a TLS reverse proxy with authentication (docs/operations.md)";

/// Cannot listen on the configured address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// A bound server: its address, and the task serving until the shutdown token is cancelled.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds `listen` (port 0 picks a free port: see [`Server::addr`]) and serves `/health` and
/// `/metrics` until `shutdown`. Installs the Prometheus recorder if none is yet.
pub async fn serve(
    listen: SocketAddr,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<Server, BindError> {
    let _ = kd_core::telemetry::metrics_handle();
    let bind_error = |source| BindError {
        addr: listen,
        source,
    };
    // `/health` names the archive and production and carries error texts; it is served
    // without authentication or TLS, so only where no one else can reach it.
    if !listen.ip().is_loopback() {
        return Err(bind_error(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            NOT_LOOPBACK,
        )));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let app = router(health);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok(Server { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_non_loopback_listen_is_refused() {
        for addr in ["0.0.0.0:0", "[::]:0"] {
            let listen: SocketAddr = match addr.parse() {
                Ok(a) => a,
                Err(e) => panic!("{addr}: {e}"),
            };
            let refused = serve(
                listen,
                Arc::new(Health::default()),
                CancellationToken::new(),
            )
            .await;
            let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("must be a loopback address"), "{addr}: {err}");
        }
        let served = serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::new(Health::default()),
            CancellationToken::new(),
        )
        .await;
        assert!(served.is_ok(), "{served:?}");
    }
}
