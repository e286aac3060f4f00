//! `kalshi-data dedup` and `kalshi-data migrate`: arguments and their mapping to configuration.

use crate::config::{DedupConfig, ENV_PREFIX, GathererEndpoint};
use kd_core::config::{ConfigError, Secret};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Run the deduplicator: merge every gatherer into production, each record once.
#[derive(Debug, Clone, clap::Args)]
pub struct DedupArgs {
    /// TOML configuration file (keys of docs/deduplicator.md); environment variables
    /// `KALSHI_DATA_DEDUP_<KEY>` override it, and these flags override both.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Production store: `postgres://…` or `sqlite://PATH`.
    #[arg(long)]
    pub production: Option<String>,
    /// A gatherer as `ID=URL` (repeat for each); replaces the configured list. A bearer token
    /// goes in the configuration file or `ID=URL=TOKEN`.
    #[arg(long = "gatherer", value_name = "ID=URL")]
    pub gatherers: Vec<String>,
    /// Address of `/health`, `/ready` and `/metrics`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Kalshi REST base URL for series/events/markets (`…/trade-api/v2`).
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Rows per pull.
    #[arg(long)]
    pub batch_size: Option<usize>,
}

#[derive(Debug, Default, Serialize)]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    production: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gatherers: Option<Vec<GathererEndpoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
}

/// Parses `ID=URL` or `ID=URL=TOKEN`.
pub fn parse_gatherer(spec: &str) -> Result<GathererEndpoint, ConfigError> {
    let mut parts = spec.splitn(3, '=');
    let id = parts.next().unwrap_or_default().trim();
    let url = parts.next().unwrap_or_default().trim();
    let token = parts.next().unwrap_or_default();
    if id.is_empty() || url.is_empty() {
        return Err(ConfigError::invalid(
            "--gatherer",
            format!("`{spec}`: expected ID=URL"),
        ));
    }
    Ok(GathererEndpoint {
        id: id.to_string(),
        url: url.to_string(),
        token: Secret::new(token),
        ..GathererEndpoint::default()
    })
}

impl DedupArgs {
    /// The configuration these arguments select (file, environment, flags), validated.
    pub fn load(&self) -> Result<DedupConfig, ConfigError> {
        let gatherers = if self.gatherers.is_empty() {
            None
        } else {
            Some(
                self.gatherers
                    .iter()
                    .map(|s| parse_gatherer(s))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let overrides = Overrides {
            production: self.production.clone(),
            gatherers,
            listen: self.listen,
            rest_url: self.rest_url.clone(),
            batch_size: self.batch_size,
        };
        let config: DedupConfig =
            kd_core::config::load(self.config.as_deref(), ENV_PREFIX, &overrides)?;
        config.validate()?;
        Ok(config)
    }
}

/// Runs `kalshi-data dedup` until Ctrl-C/SIGTERM.
pub async fn run(args: DedupArgs) -> Result<(), crate::DedupError> {
    let config = args.load()?;
    tracing::info!(
        production = %kd_core::config::redact_url(config.production.expose()),
        gatherers = config.gatherers.len(),
        "starting deduplicator"
    );
    let shutdown = kd_core::shutdown::on_signal();
    let _ = kd_core::telemetry::metrics_handle();
    crate::run(config, shutdown).await
}

/// Create or upgrade the production schema.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Production store: `postgres://…` or `sqlite://PATH`.
    #[arg(long, env = "KALSHI_DATA_DEDUP_PRODUCTION", hide_env_values = true)]
    pub production: String,
    /// Days of time partitions to create ahead (PostgreSQL).
    #[arg(long, default_value_t = 3)]
    pub partitions_ahead_days: u32,
}

/// Runs `kalshi-data migrate`: applies pending migrations, prints the schema version.
pub async fn run_migrate(args: MigrateArgs) -> Result<i64, crate::StoreError> {
    let store = kd_production::open(&args.production).await?;
    let before = store.schema_version().await?;
    store.migrate().await?;
    store
        .ensure_partitions_ahead(args.partitions_ahead_days)
        .await?;
    let after = store.schema_version().await?;
    println!(
        "production schema ({}, {}): version {before} → {after}",
        store.backend(),
        kd_core::config::redact_url(&args.production)
    );
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gatherer_specs_parse() -> Result<(), ConfigError> {
        let g = parse_gatherer("a=http://127.0.0.1:9101")?;
        assert_eq!(
            (g.id.as_str(), g.url.as_str()),
            ("a", "http://127.0.0.1:9101")
        );
        assert!(g.token.is_empty());
        let g = parse_gatherer("b=http://h:1=s3cret")?;
        assert_eq!(g.token.expose(), "s3cret");
        assert!(parse_gatherer("nourl").is_err());
        assert!(parse_gatherer("=http://x").is_err());
        Ok(())
    }
}
