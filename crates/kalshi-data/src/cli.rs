//! Command-line interface: the twelve subcommands of DESIGN §1.

use clap::{Parser, Subcommand};
use kd_core::telemetry::LogFormat;
use std::process::ExitCode;

/// Capture every order-book change, trade, ticker and lifecycle event of the Kalshi exchange,
/// keep it through failures, and serve it from PostgreSQL and a Parquet archive.
#[derive(Debug, Parser)]
#[command(name = "kalshi-data", version, about, long_about = None)]
pub struct Cli {
    /// Log format: `human` or `json`.
    #[arg(long, global = true, default_value = "human", env = "KALSHI_DATA_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on one machine: simulator, 3 gatherers, deduplicator and exporter.
    Up,
    /// Run the Kalshi exchange simulator (REST + WebSocket + faults + ground truth).
    Sim,
    /// Run one gatherer.
    Gatherer,
    /// Run the deduplicator.
    Dedup,
    /// Export closed time windows from production to the Parquet archive.
    Export,
    /// Show the health of a running deployment on one screen.
    Status,
    /// Check production against the simulator's ground truth, or report coverage and gaps.
    Verify,
    /// Rebuild a market's order book at a given time from stored snapshots and deltas.
    Book,
    /// Load historical trades over REST into production.
    Backfill,
    /// Create or upgrade the production schema.
    Migrate,
    /// Write an RSA key pair for tests, local runs and the simulator.
    Keygen,
    /// Run the end-to-end load benchmark and print its figures.
    Bench,
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let name = format!("{command:?}").to_lowercase();
    eprintln!("kalshi-data {name}: not built yet — see the project's open issues");
    Ok(ExitCode::from(2))
}
