//! Serving the HTTP routes: plain HTTP on loopback, TLS (rustls) when configured.

use axum::Router;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long in-flight requests may finish after shutdown is requested.
const DRAIN: Duration = Duration::from_secs(5);

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load TLS certificate {cert} / key {key}: {source}")]
    Tls {
        cert: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// A bound listener, ready to serve.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
}

/// Binds `addr` (port 0 picks a free port).
pub fn bind(addr: SocketAddr) -> Result<Bound, ServerError> {
    let listener = TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServerError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok(Bound { listener, addr })
}

/// TLS material paths.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Loads the TLS configuration (before serving, so a bad certificate fails the start).
pub async fn load_tls(
    paths: &TlsPaths,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServerError> {
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&paths.cert, &paths.key)
        .await
        .map_err(|source| ServerError::Tls {
            cert: paths.cert.display().to_string(),
            key: paths.key.display().to_string(),
            source,
        })
}

/// Serves `app` until `shutdown`, then lets requests in flight finish (bounded).
pub async fn serve(
    bound: Bound,
    app: Router,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let watcher = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        watcher.graceful_shutdown(Some(DRAIN));
    });
    let service = app.into_make_service();
    match tls {
        Some(config) => {
            axum_server::tls_rustls::from_tcp_rustls(bound.listener, config)?
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            axum_server::from_tcp(bound.listener)?
                .handle(handle)
                .serve(service)
                .await
        }
    }
}
