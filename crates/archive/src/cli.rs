//! `kalshi-data export`: arguments, configuration layering and the hand-run command.
//!
//! - `--from T --to T`: exports the windows and days covering that range, with a progress bar,
//!   without touching watermarks (a manual re-export writes the same keys).
//! - `--once`: exports every closed window not yet exported (from the watermarks), then exits.
//! - neither: the continuous exporter, serving `/health` and `/metrics` on `listen`, until
//!   Ctrl-C / SIGTERM.
//! - `--apply-lifecycle`: applies `deploy/s3/lifecycle.json` to the bucket, then exits.

use crate::exporter::{ExportConfig, ExportError, Exporter, Plan, Step};
use crate::lifecycle::LifecycleError;
#[cfg(feature = "production")]
use crate::production::{self, ProductionError};
use crate::server::{self, BindError, Health};
use crate::source::WindowSource;
use crate::store::{Archive, StoreError};
use crate::window::WindowLen;
use indicatif::{ProgressBar, ProgressStyle};
use kd_core::TimestampUs;
use kd_core::config::ConfigError;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Arguments of `kalshi-data export`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExportArgs {
    /// Configuration file (TOML, the keys of `ExportConfig`); `KALSHI_DATA_EXPORT_…` variables
    /// and these flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Production store URL (`postgres://…` or `sqlite://PATH`).
    #[arg(long)]
    pub production: Option<String>,
    /// Archive URL: `file://PATH` or `s3://BUCKET/PREFIX`.
    #[arg(long)]
    pub archive: Option<String>,
    /// Export the range starting here (RFC 3339 or YYYY-MM-DD, UTC); needs --to.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End of the range (exclusive).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// One window length for every table (`5m`, `1h`, `1d`).
    #[arg(long)]
    pub window: Option<WindowLen>,
    /// Export what is due now, then exit.
    #[arg(long)]
    pub once: bool,
    /// Apply the S3 lifecycle (deploy/s3/lifecycle.json) to the bucket, then exit.
    #[arg(long)]
    pub apply_lifecycle: bool,
    /// S3-compatible endpoint (`http://127.0.0.1:9000`).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Seconds to wait after a window's end before exporting it.
    #[arg(long)]
    pub settle_secs: Option<u64>,
    /// Address of `/health` and `/metrics` while exporting continuously (config key `listen`,
    /// default 127.0.0.1:8730; port 0 picks a free port, logged at start). Loopback only.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Serialize, Default)]
struct S3Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
}

#[derive(Serialize)]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    production_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settle_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    s3: S3Overrides,
}

/// Why `kalshi-data export` failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[cfg(feature = "production")]
    #[error(transparent)]
    Production(#[from] ProductionError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Bind(#[from] BindError),
}

impl ExportArgs {
    /// The configuration: defaults, file, environment, then these flags.
    pub fn load_config(&self) -> Result<ExportConfig, CliError> {
        let overrides = Overrides {
            production_url: self.production.clone(),
            archive_url: self.archive.clone(),
            window: self.window.map(|w| w.to_string()),
            settle_secs: self.settle_secs,
            listen: self.listen,
            s3: S3Overrides {
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
            },
        };
        let config: ExportConfig =
            kd_core::config::load(self.config.as_deref(), "KALSHI_DATA_EXPORT_", &overrides)?;
        Ok(config)
    }
}

/// Parses `--from`/`--to`: RFC 3339, or a bare `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(flag: &'static str, text: &str) -> Result<TimestampUs, CliError> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    TimestampUs::parse_rfc3339(&full).map_err(|e| CliError::Flag {
        flag,
        reason: format!("`{text}`: {e}"),
    })
}

/// Runs `kalshi-data export` (opens production from the configured URL).
#[cfg(feature = "production")]
pub async fn run(args: ExportArgs) -> Result<(), CliError> {
    let config = args.load_config()?;
    let archive = Archive::open(&config.archive_url, &config.s3)?;
    if args.apply_lifecycle {
        let applied = crate::lifecycle::apply(&archive).await?;
        println!("lifecycle applied to bucket {}", applied.bucket);
        return Ok(());
    }
    if config.production_url.is_empty() {
        return Err(CliError::Flag {
            flag: "production",
            reason: "a production URL is required".into(),
        });
    }
    let source = production::open(&config.production_url).await?;
    run_with(&args, config, source, archive).await
}

/// Runs the command against any source (tests, `up`).
pub async fn run_with<S: WindowSource>(
    args: &ExportArgs,
    config: ExportConfig,
    source: S,
    archive: Archive,
) -> Result<(), CliError> {
    let exporter = Exporter::new(source, archive, config);
    let shutdown = kd_core::shutdown::on_signal();
    // systemd: ready once serving; the watchdog pings from this runtime while it turns.
    kd_core::sd_notify::spawn(|| true, shutdown.clone());
    match (&args.from, &args.to) {
        (Some(from), Some(to)) => {
            let plan = exporter.plan_range(parse_time("from", from)?, parse_time("to", to)?);
            run_plan(&exporter, plan, false, &shutdown).await
        }
        _ if args.once => {
            let plan = exporter.plan(TimestampUs::now()).await?;
            run_plan(&exporter, plan, true, &shutdown).await
        }
        _ => run_serving(exporter, shutdown).await,
    }
}

/// The continuous exporter with `/health` and `/metrics` on `config.listen`, until `shutdown`.
async fn run_serving<S: WindowSource>(
    exporter: Exporter<S>,
    shutdown: CancellationToken,
) -> Result<(), CliError> {
    let health = Arc::new(Health::default());
    let server = server::serve(
        exporter.config().listen,
        Arc::clone(&health),
        shutdown.clone(),
    )
    .await?;
    tracing::info!(addr = %server.addr, "exporter serving /health, /metrics");
    exporter.with_health(health).run(shutdown).await;
    let _ = server.task.await;
    Ok(())
}

/// Runs a plan with a progress bar (drawn only when stderr is a terminal).
pub async fn run_plan<S: WindowSource>(
    exporter: &Exporter<S>,
    plan: Plan,
    advance: bool,
    shutdown: &CancellationToken,
) -> Result<(), CliError> {
    let bar = ProgressBar::new(plan.steps.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} windows · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut rows, mut bytes, mut objects) = (0_usize, 0_usize, 0_usize);
    for step in plan.steps {
        if shutdown.is_cancelled() {
            bar.abandon_with_message("interrupted");
            return Ok(());
        }
        bar.set_message(match step {
            Step::Window(table, w) => format!("{table} {}", w.start),
            Step::Day(d) => format!("aggregates {}", d.start),
        });
        let report = exporter.run_step(step, advance).await?;
        rows += report.rows;
        bytes += report.bytes;
        objects += report.keys.len();
        bar.inc(1);
    }
    bar.finish_with_message(format!("{rows} rows, {objects} objects, {bytes} bytes"));
    eprintln!("exported {rows} rows into {objects} objects ({bytes} bytes)");
    Ok(())
}

/// The continuous exporter, embeddable: opens production and the archive from `config`, serves
/// `/health` and `/metrics` on `config.listen` and exports each window as it closes, until
/// `shutdown`.
#[cfg(feature = "production")]
pub async fn run_exporter(
    config: ExportConfig,
    shutdown: CancellationToken,
) -> Result<(), CliError> {
    let archive = Archive::open(&config.archive_url, &config.s3)?;
    let source = production::open(&config.production_url).await?;
    run_serving(Exporter::new(source, archive, config), shutdown).await
}
