//! Command-line interface: the twelve subcommands of DESIGN §1, and `audit`.

use clap::{Parser, Subcommand};
use kd_core::telemetry::LogFormat;
use std::process::ExitCode;

/// Capture every order-book change, trade, ticker and lifecycle event of the Kalshi exchange,
/// keep it through failures, and serve it from PostgreSQL and a Parquet archive.
#[derive(Debug, Parser)]
#[command(name = "kalshi-data", version, about, long_about = None)]
pub struct Cli {
    /// Log format: `human` or `json`.
    #[arg(
        long,
        global = true,
        default_value = "human",
        env = "KALSHI_DATA_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on one machine: simulator, 3 gatherers, deduplicator and exporter (with
    /// `--exchange kalshi|demo|URL`: the gatherers capture that exchange, no simulator).
    Up(kd_ops::up::UpArgs),
    /// Run the Kalshi exchange simulator (REST + WebSocket + faults + ground truth).
    Sim(kd_sim::cli::SimArgs),
    /// Run one gatherer.
    Gatherer(kd_gatherer::cli::GathererArgs),
    /// Run the deduplicator.
    Dedup(kd_dedup::cli::DedupArgs),
    /// Export closed time windows from production to the Parquet archive.
    Export(kd_archive::cli::ExportArgs),
    /// Show the health of a running deployment on one screen.
    Status(kd_ops::status::StatusArgs),
    /// Check production against the simulator's ground truth, or report coverage and gaps.
    Verify(kd_ops::verify::VerifyArgs),
    /// Report what may be missing from production, without a ground truth: windows no gatherer
    /// covered, book continuity against snapshots, redundancy, sanity (exit 0 OK, 1 possible
    /// loss or mismatch, 2 error).
    Audit(kd_ops::audit::AuditArgs),
    /// Rebuild a market's order book at a given time from stored snapshots and deltas.
    Book(kd_ops::book_command::BookArgs),
    /// Load historical trades over REST into production.
    Backfill(kd_backfill::BackfillArgs),
    /// Create or upgrade the production schema.
    Migrate(kd_dedup::cli::MigrateArgs),
    /// Write an RSA key pair for tests, local runs and the simulator.
    Keygen(keygen::KeygenArgs),
    /// Run the end-to-end load benchmark and print its figures.
    Bench(kd_bench::BenchArgs),
    /// Serve captured data back over Kalshi's REST and WebSocket protocol (docs/replay.md).
    Replay(kd_replay::ReplayArgs),
}

/// Every subcommand is built; the match is exhaustive so a new one cannot be left unwired.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => kd_ops_run::up(&args).await,
        Command::Sim(args) => done(kd_sim::cli::run(args).await),
        Command::Gatherer(args) => done(kd_gatherer::cli::run(args).await),
        Command::Dedup(args) => done(kd_dedup::cli::run(args).await),
        Command::Export(args) => done(kd_archive::cli::run(args).await),
        Command::Status(args) => kd_ops_run::status(&args).await,
        Command::Verify(args) => kd_ops_run::verify(&args).await,
        Command::Audit(args) => Ok(kd_ops_run::audit(&args).await),
        Command::Book(args) => kd_ops_run::book(&args).await,
        Command::Backfill(args) => backfill(args).await,
        Command::Migrate(args) => done(kd_dedup::cli::run_migrate(args).await),
        Command::Keygen(args) => keygen::run(&args),
        Command::Bench(args) => done(kd_bench::run_and_print(&args).await),
        Command::Replay(args) => done(kd_replay::run(&args).await),
    }
}

/// A component that ran to its end: success, or its error for `main` to print.
fn done<T, E>(result: Result<T, E>) -> anyhow::Result<ExitCode>
where
    anyhow::Error: From<E>,
{
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `kalshi-data backfill`: prints the report; progress is on stderr.
async fn backfill(args: kd_backfill::BackfillArgs) -> anyhow::Result<ExitCode> {
    let report = kd_backfill::run(args).await?;
    println!("{report}");
    Ok(if report.parse_errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The operator commands of `kd_ops` (`up`, `status`, `verify`, `book`).
mod kd_ops_run {
    use std::process::ExitCode;

    pub async fn up(args: &kd_ops::up::UpArgs) -> anyhow::Result<ExitCode> {
        match kd_ops::up::run(args).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            // What is wrong with the exchange, the key or the clock, one line each; nothing
            // was started.
            Err(kd_ops::up::UpError::Preflight(failed)) => {
                eprintln!("{failed}");
                Ok(ExitCode::from(2))
            }
            Err(kd_ops::up::UpError::Exchange(e)) => {
                eprintln!("up: {e}");
                Ok(ExitCode::from(2))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn status(args: &kd_ops::status::StatusArgs) -> anyhow::Result<ExitCode> {
        kd_ops::status::run(args).await?;
        Ok(ExitCode::SUCCESS)
    }

    /// Exit 0 only when production matches the truth exactly.
    pub async fn verify(args: &kd_ops::verify::VerifyArgs) -> anyhow::Result<ExitCode> {
        let outcome = kd_ops::verify::run(args).await?;
        println!("{}", outcome.text);
        Ok(if outcome.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// Exit 0 nothing possibly lost, 1 a possible loss or a book mismatch, 2 an error.
    pub async fn audit(args: &kd_ops::audit::AuditArgs) -> ExitCode {
        match kd_ops::audit::run(args).await {
            Ok(outcome) => {
                print!("{}", outcome.text);
                ExitCode::from(outcome.exit)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    }

    pub async fn book(args: &kd_ops::book_command::BookArgs) -> anyhow::Result<ExitCode> {
        print!("{}", kd_ops::book_command::run(args).await?);
        Ok(ExitCode::SUCCESS)
    }
}

/// `kalshi-data keygen`: an RSA key pair in PEM files (private PKCS#8 with mode 0600, public SPKI).
mod keygen {
    use anyhow::Context as _;
    use std::path::PathBuf;
    use std::process::ExitCode;

    #[derive(Debug, clap::Args)]
    pub struct KeygenArgs {
        /// Directory to write the key pair into (created if missing).
        #[arg(long)]
        pub out: PathBuf,
        /// File name stem: writes NAME.pem (private) and NAME.pub.pem (public).
        #[arg(long, default_value = "kalshi-data")]
        pub name: String,
        /// RSA modulus size in bits (Kalshi issues 2048-bit keys).
        #[arg(long, default_value_t = kd_kalshi::auth::DEFAULT_BITS)]
        pub bits: usize,
    }

    pub fn run(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
        anyhow::ensure!(
            !args.name.is_empty() && !args.name.contains(['/', '\\']),
            "--name must be a plain file name, got {:?}",
            args.name
        );
        let (private, public) =
            kd_kalshi::auth::write_keypair_bits(&args.out, &args.name, args.bits)
                .with_context(|| format!("writing a key pair into {}", args.out.display()))?;
        println!(
            "private key: {} (mode 0600; keep it secret)",
            private.display()
        );
        println!("public key:  {}", public.display());
        Ok(ExitCode::SUCCESS)
    }
}
