//! `kalshi-data verify`: production against the simulator's ground truth (exact), or, without
//! a truth, a coverage and gap report that works against the real exchange.
//!
//! - [`truth`]: what the simulator recorded. [`gaps`]: recorded gap windows.
//! - [`check`]: the comparison; [`lifecycle`]: its lifecycle part (matched within a
//!   tolerance). [`report`]: its text, ending with the verdict line.
//! - [`coverage`]: the report without a truth.

pub mod check;
pub mod coverage;
pub mod gaps;
pub mod lifecycle;
pub mod report;
pub mod truth;

use crate::production::{self, ProductionError};
use crate::time_arg::parse_time;
use kd_core::{Table, TimestampUs};
use std::path::PathBuf;

/// Flags of `kalshi-data verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The simulator's ground-truth log. Without it: a coverage and gap report.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Production store URL (`sqlite://PATH` or `postgres://…`).
    #[arg(long, env = "KALSHI_DATA_PRODUCTION", hide_env_values = true)]
    pub production: String,
    /// Start of the window (RFC 3339 or µs since the epoch). Default: the first message the
    /// exchange delivered to anyone.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<TimestampUs>,
    /// End of the window, inclusive. Default: the last record of the truth.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<TimestampUs>,
    /// Gatherers that fed production, comma-separated. Default: those the deduplicator has
    /// cursors for, plus any named in gap records.
    #[arg(long, value_delimiter = ',')]
    pub gatherers: Vec<String>,
    /// How long after a market's listing, or after the first subscription of a simulator run
    /// (the first gatherer's start), a message sent while nobody was subscribed is not
    /// expected: the time the platform may take to subscribe (a registry page, a subscribe
    /// round trip, a transient refusal's first retry). Later, "nobody was subscribed" is a
    /// loss. See docs/operations.md.
    #[arg(long, default_value_t = DEFAULT_ALLOWANCE_MS)]
    pub subscribe_allowance_ms: u64,
}

/// The default of `--subscribe-allowance-ms`: the issue's own bar (a market is captured within
/// 2 s of its announcement), and four times the first retry of a refused subscription (0.5 s),
/// so two retries fit with room; a local platform subscribes in milliseconds.
pub const DEFAULT_ALLOWANCE_MS: u64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Production(#[from] ProductionError),
    #[error("ground truth {path}: {reason}")]
    Truth { path: String, reason: String },
    #[error("the ground truth is empty: nothing was published")]
    EmptyTruth,
}

/// The outcome: the text to print and whether everything matched.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub text: String,
    pub passed: bool,
}

/// Runs `verify`.
pub async fn run(args: &VerifyArgs) -> Result<Outcome, VerifyError> {
    let Some(truth_path) = &args.truth else {
        let from = args.from.unwrap_or(TimestampUs::from_micros(0));
        let to = args.to.unwrap_or(TimestampUs::from_micros(i64::MAX - 1));
        let data = production::load(&args.production, &Table::ALL, from, to).await?;
        let text = coverage::render(&coverage::coverage(&data));
        return Ok(Outcome { text, passed: true });
    };
    let truth = truth::load(truth_path).map_err(|reason| VerifyError::Truth {
        path: truth_path.display().to_string(),
        reason,
    })?;
    let from = args
        .from
        .or(truth.first_delivered())
        .ok_or(VerifyError::EmptyTruth)?;
    let to = args.to.or(truth.last()).ok_or(VerifyError::EmptyTruth)?;
    // Everything up to `to`: snapshots and deltas before the window rebuild its first books.
    let mut data = production::load(
        &args.production,
        &Table::ALL,
        TimestampUs::from_micros(0),
        to,
    )
    .await?;
    for g in &args.gatherers {
        if !data.gatherers.contains(g) {
            data.gatherers.push(g.clone());
        }
    }
    // Without `--from`: trades nobody received count from the first one somebody did, i.e.
    // once a trade subscription existed.
    let trades_from = match args.from {
        Some(f) => f,
        None => truth
            .first_delivered_of(Table::Trades)
            .unwrap_or(from)
            .max(from),
    };
    let expect = check::Expect {
        from,
        to,
        trades_from,
        allowance_us: i64::try_from(args.subscribe_allowance_ms.saturating_mul(1_000))
            .unwrap_or(i64::MAX),
    };
    let report = check::compare_with(&truth, &data, &expect);
    Ok(Outcome {
        text: report::render(&report),
        passed: report.passed(),
    })
}
