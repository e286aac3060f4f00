//! `kalshi-data bench`: the end-to-end load run (simulator → gatherers → deduplicator →
//! production → archive) with the machine's own limits measured in the same run, on the same
//! messages and rows, so every stage is also reported as a ratio to its baseline.
//!
//! # Layout
//! - [`corpus`]: the shared wire messages (deterministic) and their records.
//! - [`local`]: parse only; the bare parse + batched SQLite insert; the real gatherer.
//! - [`production`]: scratch PostgreSQL database, bare `COPY`, the deduplicator merging three
//!   identical copies (PostgreSQL and SQLite), the exporter.
//! - [`live`]: latency exchange → local commit and exchange → production at a steady rate.
//! - [`replay`]: `kalshi-data replay --speed max` from the exported archive, one client, and
//!   the bare read of the same Parquet rows.
//! - [`platform`]: `kalshi-data up` (simulator, three gatherer processes, deduplicator,
//!   exporter) into a scratch PostgreSQL database at a rising rate, `verify` after each step.
//! - [`scale`]: a gatherer process at 10k / 100k / 1M markets: sync time and RSS.
//! - [`harness`]: starting the real components in-process (the deduplicator is why this
//!   crate depends on `kd-dedup`; production is read through `kd-production`).
//! - [`measure`]: CPU (getrusage), RSS (/proc), quantiles; [`report`]: the figures.
//!
//! A stage that fails leaves its figures `null` with the error as the reason; the run goes on.

pub mod corpus;
pub mod harness;
pub mod live;
pub mod local;
pub mod measure;
pub mod platform;
pub mod production;
pub mod replay;
pub mod report;
pub mod scale;

pub use report::{REQUIRED_KEYS, Report};

use kd_core::TimestampUs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a stage could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{stage}: {source}")]
    Stage {
        stage: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{stage}: {message}")]
    Msg {
        stage: &'static str,
        message: String,
    },
}

impl BenchError {
    pub fn stage(stage: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        BenchError::Stage {
            stage,
            source: Box::new(e),
        }
    }

    pub fn msg(stage: &'static str, message: impl Into<String>) -> Self {
        BenchError::Msg {
            stage,
            message: message.into(),
        }
    }
}

/// Arguments of `kalshi-data bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// A PostgreSQL server (`postgres://user@host:5432/db`): the bench creates a scratch
    /// database there, measures bare COPY and the deduplicator into it, and drops it.
    /// Without it the PostgreSQL figures are null.
    #[arg(long)]
    pub production: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Smoke mode for CI: a few seconds, small sizes, no scale runs; cannot fail on speed.
    #[arg(long)]
    pub quick: bool,
    /// Markets of the live run (latency) and of the corpus.
    #[arg(long)]
    pub markets: Option<usize>,
    /// Messages/s the simulator sends in the live run.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds of the live run.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Messages in the throughput corpus (gatherer, deduplicator, baselines).
    #[arg(long)]
    pub messages: Option<usize>,
    /// Market counts of the scale runs (comma-separated; empty: none).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub scale_markets: Option<Vec<usize>>,
    /// Messages/s the simulator sends during the scale runs.
    #[arg(long, default_value_t = 1_000)]
    pub scale_rate: u32,
    /// The `kalshi-data` executable for the gatherer processes of the scale runs and the `up`
    /// of the platform stage (default:
    /// this executable when it is `kalshi-data`).
    #[arg(long)]
    pub gatherer_exe: Option<PathBuf>,
    /// Seconds of each step of the platform stage (`up --duration`).
    #[arg(long)]
    pub platform_secs: Option<u64>,
    /// Exchange rates the platform stage steps through, in order, until one fails
    /// (default 10000,20000,35000,50000,65000).
    #[arg(long, value_delimiter = ',')]
    pub platform_rates: Option<Vec<u32>>,
    /// Markets of the platform stage (default 2000, the issue's `up --markets`).
    #[arg(long)]
    pub platform_markets: Option<usize>,
    /// Skip stages: any of `throughput`, `dedup`, `export`, `replay` (needs `export`), `live`,
    /// `scale`, `platform`.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

impl BenchArgs {
    /// The `--quick --json` arguments (tests).
    pub fn quick() -> Self {
        BenchArgs {
            production: None,
            json: true,
            quick: true,
            markets: None,
            rate: None,
            duration: None,
            messages: None,
            scale_markets: None,
            scale_rate: 1_000,
            gatherer_exe: None,
            platform_secs: None,
            platform_rates: None,
            platform_markets: None,
            skip: Vec::new(),
        }
    }
}

/// Sizes after defaults.
struct Plan {
    messages: usize,
    markets: usize,
    rate: u32,
    duration: Duration,
    scale: Vec<usize>,
}

impl Plan {
    fn of(a: &BenchArgs) -> Plan {
        let (messages, markets, rate, secs, scale) = if a.quick {
            (3_000, 200, 2_000, 2, vec![])
        } else {
            (
                300_000,
                10_000,
                10_000,
                20,
                vec![10_000, 100_000, 1_000_000],
            )
        };
        Plan {
            messages: a.messages.unwrap_or(messages),
            markets: a.markets.unwrap_or(markets),
            rate: a.rate.unwrap_or(rate),
            duration: Duration::from_secs(a.duration.unwrap_or(secs)),
            scale: a.scale_markets.clone().unwrap_or(scale),
        }
    }
}

/// Runs the bench and returns its figures (every required key present).
pub async fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let plan = Plan::of(args);
    let mut report = Report::default();
    let skip = |s: &str| args.skip.iter().any(|x| x == s);
    report.note("mode", if args.quick { "quick" } else { "full" });
    report.note("messages", plan.messages as u64);
    report.note(
        "cpus",
        std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
    );
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        report.note("loadavg_at_start", l.trim().to_string());
    }
    let tmp = tempfile::tempdir().map_err(|e| BenchError::stage("temp dir", e))?;
    let dir = tmp.path();

    let start_ts = TimestampUs::from_micros(
        TimestampUs::now().micros() - (plan.messages as i64) * 10 - 1_000_000,
    );
    let messages = corpus::generate(plan.messages, plan.markets, start_ts);
    let (records, failed) = corpus::parse_all(&messages, TimestampUs::now());
    report.note("corpus_records", records.len() as u64);
    if failed > 0 {
        return Err(BenchError::msg(
            "corpus",
            format!("{failed} messages failed to parse"),
        ));
    }

    local::parse_only(&messages, &mut report);
    let scratch = match &args.production {
        Some(url) => match production::ScratchDb::create(url).await {
            Ok(db) => Some(db),
            Err(e) => {
                report.note("postgres_error", e.to_string());
                None
            }
        },
        None => None,
    };
    let no_pg = if args.production.is_some() {
        "PostgreSQL scratch database could not be created (see notes.postgres_error)"
    } else {
        "no --production postgres://… given"
    };

    if !skip("throughput") {
        if let Err(e) = local::sqlite_baseline(&messages, dir, &mut report) {
            report.skip("baseline_parse_insert_msgs_per_s", &e.to_string());
        }
        if let Some(db) = &scratch
            && let Err(e) = production::copy_baseline(&db.url, &records, &mut report).await
        {
            // Keep a figure already measured (the unindexed table) when only the second failed.
            if report.get("baseline_pg_copy_rows_per_s").is_none() {
                report.skip("baseline_pg_copy_rows_per_s", &e.to_string());
            }
            report.note("copy_baseline_error", e.to_string());
        }
        throughput(
            &plan,
            args,
            &messages,
            &records,
            scratch.as_ref(),
            no_pg,
            dir,
            &mut report,
        )
        .await;
    }

    if !skip("live") {
        let live_prod = match &args.production {
            Some(url) => production::ScratchDb::create(url).await.ok(),
            None => None,
        };
        let url = live_prod.as_ref().map_or_else(
            || format!("sqlite://{}", dir.join("live-prod.sqlite").display()),
            |d| d.url.clone(),
        );
        report.note(
            "live_production",
            if live_prod.is_some() {
                "postgres"
            } else {
                "sqlite"
            },
        );
        let live_dir = dir.join("live");
        let outcome = match std::fs::create_dir_all(&live_dir) {
            Ok(()) => {
                live::run(
                    plan.markets,
                    plan.rate,
                    plan.duration,
                    &url,
                    &live_dir,
                    &mut report,
                )
                .await
            }
            Err(e) => Err(BenchError::stage("live dir", e)),
        };
        if let Err(e) = outcome {
            for k in ["p99_exchange_to_local_ms", "p99_exchange_to_production_ms"] {
                report.skip(k, &e.to_string());
            }
        }
        if let Some(db) = live_prod {
            let _ = db.drop_db().await;
        }
    }

    platform_stage(args, dir, &mut report).await;

    if skip("scale") || plan.scale.is_empty() {
        let why = if args.quick {
            "skipped in --quick"
        } else {
            "scale runs skipped"
        };
        for k in [
            "rss_10k_markets_mb",
            "rss_100k_markets_mb",
            "rss_1m_markets_mb",
            "sync_1m_markets_s",
        ] {
            report.skip(k, why);
        }
    } else {
        match gatherer_exe(args) {
            Some(exe) => {
                scale::run(&exe, &plan.scale, args.scale_rate, dir, &mut report).await;
            }
            None => {
                for k in [
                    "rss_100k_markets_mb",
                    "rss_1m_markets_mb",
                    "sync_1m_markets_s",
                ] {
                    report.skip(
                        k,
                        "no kalshi-data executable to run gatherer processes (--gatherer-exe)",
                    );
                }
            }
        }
    }

    if let Some(db) = scratch {
        let _ = db.drop_db().await;
    }
    report.ratio(
        "gatherer_vs_baseline",
        "gatherer_msgs_per_s",
        "baseline_parse_insert_msgs_per_s",
    );
    // Issue 10: "a bare COPY of the same rows into the same table" — the table with the
    // deltas' unique constraint, as production's; the unindexed figure is the disk's limit.
    report.ratio(
        "dedup_vs_copy",
        "dedup_pg_rows_per_s",
        "baseline_pg_copy_unique_rows_per_s",
    );
    report.ratio(
        "dedup_vs_unindexed_copy",
        "dedup_pg_rows_per_s",
        "baseline_pg_copy_rows_per_s",
    );
    report.ratio(
        "dedup_sqlite_vs_insert",
        "dedup_sqlite_rows_per_s",
        "baseline_sqlite_insert_rows_per_s",
    );
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        report.note("loadavg_at_end", l.trim().to_string());
    }
    report.complete();
    Ok(report)
}

/// Gatherers fed the corpus (three identical copies), then the deduplicator into PostgreSQL
/// and into SQLite, then the exporter.
#[allow(clippy::too_many_arguments)]
async fn throughput(
    plan: &Plan,
    args: &BenchArgs,
    messages: &[Vec<u8>],
    records: &[kd_core::records::Record],
    scratch: Option<&production::ScratchDb>,
    no_pg: &str,
    dir: &Path,
    report: &mut Report,
) {
    let skip = |s: &str| args.skip.iter().any(|x| x == s);
    let shutdown = CancellationToken::new();
    // A quiet exchange: the gatherers need one to connect to; the corpus goes in directly.
    let sim = match harness::sim(10, 1, &shutdown).await {
        Ok(s) => s,
        Err(e) => {
            report.skip("gatherer_msgs_per_s", &e.to_string());
            return;
        }
    };
    let dirs: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("gatherer-{i}"))).collect();
    let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let gatherers = match local::gatherers(&sim, messages, &dir_refs, &shutdown, report).await {
        Ok(g) => g,
        Err(e) => {
            report.skip("gatherer_msgs_per_s", &e.to_string());
            shutdown.cancel();
            let _ = sim.join().await;
            return;
        }
    };
    let unique = records.len() as u64;
    let _ = plan;
    if !skip("dedup") {
        match scratch {
            Some(db) => {
                if let Err(e) =
                    production::dedup(&db.url, &gatherers, unique, "dedup_pg_rows_per_s", report)
                        .await
                {
                    report.skip("dedup_pg_rows_per_s", &e.to_string());
                }
            }
            None => report.skip("dedup_pg_rows_per_s", no_pg),
        }
        let sqlite_url = format!("sqlite://{}", dir.join("production.sqlite").display());
        if let Err(e) = production::dedup(
            &sqlite_url,
            &gatherers,
            unique,
            "dedup_sqlite_rows_per_s",
            report,
        )
        .await
        {
            report.skip("dedup_sqlite_rows_per_s", &e.to_string());
        }
        if !skip("export") {
            let (url, source) = match scratch {
                Some(db) if report.get("dedup_pg_rows_per_s").is_some() => {
                    (db.url.clone(), "postgres")
                }
                _ => (sqlite_url, "sqlite"),
            };
            report.note("export_source", source);
            let from = records
                .iter()
                .map(|r| r.exchange_ts())
                .min()
                .unwrap_or_default();
            let to = TimestampUs::from_micros(
                records
                    .iter()
                    .map(|r| r.exchange_ts().micros())
                    .max()
                    .unwrap_or(0)
                    + 3_600_000_000,
            );
            let from =
                TimestampUs::from_micros(from.micros() - from.micros().rem_euclid(3_600_000_000));
            let archive = dir.join("archive");
            match production::export(&url, from, to, &archive, report).await {
                Err(e) => {
                    report.skip("export_rows_per_s", &e.to_string());
                    report.skip("replay_msgs_per_s", "no archive: the export failed");
                }
                Ok(()) if skip("replay") => report.skip("replay_msgs_per_s", "skipped"),
                Ok(()) => {
                    let url = format!("file://{}", archive.display());
                    if let Err(e) = replay::replay(&url, from, to, report).await {
                        report.skip("replay_msgs_per_s", &e.to_string());
                    }
                }
            }
        }
    }
    for g in gatherers {
        let _ = g.stop().await;
    }
    shutdown.cancel();
    let _ = sim.join().await;
}

/// The platform stage, when there is a PostgreSQL server and a `kalshi-data` to run.
async fn platform_stage(args: &BenchArgs, dir: &Path, report: &mut Report) {
    let why = if args.skip.iter().any(|x| x == "platform") {
        "platform stage skipped"
    } else if args.production.is_none() {
        "no --production postgres://… given"
    } else if gatherer_exe(args).is_none() {
        "no kalshi-data executable to run `up` (--gatherer-exe)"
    } else {
        ""
    };
    let (Some(server), Some(exe), "") = (&args.production, gatherer_exe(args), why) else {
        for k in platform::PLATFORM_KEYS {
            report.skip(k, why);
        }
        return;
    };
    let (secs, rates, markets) = if args.quick {
        (5, vec![2_000], 200)
    } else {
        (60, vec![10_000, 20_000, 35_000, 50_000, 65_000], 2_000)
    };
    let plan = platform::PlatformPlan {
        exe,
        server: server.clone(),
        markets: args.platform_markets.unwrap_or(markets),
        rates: args.platform_rates.clone().unwrap_or(rates),
        secs: args.platform_secs.unwrap_or(secs),
    };
    platform::run(&plan, dir, report).await;
}

fn gatherer_exe(args: &BenchArgs) -> Option<PathBuf> {
    if let Some(p) = &args.gatherer_exe {
        return Some(p.clone());
    }
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_str()?;
    name.starts_with("kalshi-data").then_some(exe)
}

/// Runs the bench and prints it (`--json`: one object on stdout).
pub async fn run_and_print(args: &BenchArgs) -> Result<Report, BenchError> {
    let report = run(args).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(report)
}
