//! `kalshi-data gatherer`: the command-line arguments and their mapping to configuration.

use crate::config::{GathererConfig, Overrides};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Run one gatherer: every market, every message, durably in the local store.
#[derive(Debug, Clone, clap::Args)]
pub struct GathererArgs {
    /// TOML configuration file (keys of docs/gatherer.md); environment variables
    /// `KALSHI_DATA_GATHERER_<KEY>` override it, and these flags override both.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Name of this gatherer (tags its gap records).
    #[arg(long)]
    pub gatherer_id: Option<String>,
    /// Kalshi REST base URL (`…/trade-api/v2`).
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Kalshi WebSocket URL (`…/trade-api/ws/v2`).
    #[arg(long)]
    pub ws_url: Option<String>,
    /// Directory of the local store.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address of the pull API and health endpoints.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Kalshi API key id.
    #[arg(long)]
    pub key_id: Option<String>,
    /// PEM private key of the API key (must not be readable by group or others).
    #[arg(long)]
    pub private_key_path: Option<PathBuf>,
}

impl GathererArgs {
    /// The configuration these arguments select (file, environment, flags).
    pub fn load(&self) -> Result<GathererConfig, kd_core::config::ConfigError> {
        let overrides = Overrides {
            gatherer_id: self.gatherer_id.clone(),
            rest_url: self.rest_url.clone(),
            ws_url: self.ws_url.clone(),
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            key_id: self.key_id.clone(),
            private_key_path: self.private_key_path.clone(),
        };
        GathererConfig::load(self.config.as_deref(), &overrides)
    }
}

/// Runs the command until Ctrl-C/SIGTERM. SIGUSR1 closes the exchange feed first and keeps
/// the pull API serving (`up` sends it on Ctrl-C when the exchange is not its own, so the
/// deduplicator can pull the rest before SIGTERM).
pub async fn run(args: GathererArgs) -> Result<(), crate::GathererError> {
    let config = args.load()?;
    let shutdown = kd_core::shutdown::on_signal();
    // Listening before the server binds: once `/health` answers, SIGUSR1 no longer has its
    // default action (terminating the process without committing what it holds).
    let feed = feed_stop_on_sigusr1();
    let _ = kd_core::telemetry::metrics_handle();
    crate::run_with_feed(config, shutdown, feed).await
}

/// A token cancelled on the first SIGUSR1.
fn feed_stop_on_sigusr1() -> tokio_util::sync::CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = tokio_util::sync::CancellationToken::new();
    match signal(SignalKind::user_defined1()) {
        Ok(mut usr1) => {
            let t = token.clone();
            tokio::spawn(async move {
                if usr1.recv().await.is_some() {
                    tracing::info!(
                        "SIGUSR1: closing the exchange feed; serving pulls until stopped"
                    );
                    t.cancel();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGUSR1 (feed stop)"),
    }
    token
}
