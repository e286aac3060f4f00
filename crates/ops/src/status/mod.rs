//! `kalshi-data status`: one screen of a running deployment — each gatherer, the
//! deduplicator, the exporter, production, and which alerts would fire now.
//!
//! - [`collect`]: finding the processes and probing them. [`alerts`]: the monitoring table.
//! - [`model`]: the document (`--json`). [`render`]: the screen.

pub mod alerts;
pub mod collect;
pub mod model;
pub mod render;

use crate::up::state::UpState;
use collect::{Deployment, StatusConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `kalshi-data status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Data directory of a local `up` (reads its `up.json`).
    #[arg(long, default_value = "data", conflicts_with = "config")]
    pub data_dir: PathBuf,
    /// A deployment described in TOML (gatherer, deduplicator and exporter URLs).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the JSON document.
    #[arg(long)]
    pub json: bool,
    /// Refresh every 30 s until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Production store URL, when `up.json`'s (which never holds a password) cannot log in.
    #[arg(long, env = "KALSHI_DATA_PRODUCTION", hide_env_values = true)]
    pub production: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no local deployment found: {0} (start one with `kalshi-data up`, or pass --config)")]
    NoDeployment(String),
    #[error("status config {path}: {reason}")]
    Config { path: String, reason: String },
}

/// Where the deployment is described.
pub fn deployment(args: &StatusArgs) -> Result<Deployment, StatusError> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| StatusError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let config: StatusConfig = toml_from_str(&text).map_err(|reason| StatusError::Config {
            path: path.display().to_string(),
            reason,
        })?;
        return Ok(Deployment::from_config(&config, path));
    }
    let state =
        UpState::read(&args.data_dir).map_err(|e| StatusError::NoDeployment(e.to_string()))?;
    let mut dep =
        Deployment::from_up_state(&state, &args.data_dir.join(crate::up::state::FILE_NAME));
    if args.production.is_some() {
        dep.production.clone_from(&args.production);
    }
    Ok(dep)
}

fn toml_from_str(text: &str) -> Result<StatusConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Runs `status`, printing to stdout. Returns whether every gatherer is healthy.
pub async fn run(args: &StatusArgs) -> Result<bool, StatusError> {
    loop {
        // Re-read each round: `up` rewrites up.json when a child restarts with a new pid.
        let dep = deployment(args)?;
        let report = collect::collect(&dep).await;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        } else {
            if args.watch {
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render::render(&report));
        }
        if !args.watch {
            return Ok(report.gatherers.iter().all(|g| g.healthy));
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}
