//! The flags of `kalshi-data backfill` and their translation into a [`BackfillPlan`].

use crate::plan::{BackfillPlan, Target};
use kd_core::TimestampUs;
use kd_core::backoff::BackoffPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// Load historical trades over REST into production (resumable, idempotent).
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["ticker", "event", "series", "combos"])))]
pub struct BackfillArgs {
    /// Production store URL (`postgres://…` or `sqlite://PATH`).
    #[arg(long, env = "KALSHI_DATA_PRODUCTION", hide_env_values = true)]
    pub production: String,
    /// Kalshi REST base URL, including `/trade-api/v2`.
    #[arg(long, env = "KALSHI_DATA_REST_URL", default_value = kd_kalshi::rest::PRODUCTION_BASE_URL)]
    pub rest_url: String,
    /// One market.
    #[arg(long)]
    pub ticker: Option<String>,
    /// Every market of an event.
    #[arg(long)]
    pub event: Option<String>,
    /// Every market of a series (a combo series such as `KXMVE…` gives its combo markets).
    #[arg(long)]
    pub series: Option<String>,
    /// Every combo (multivariate) market the exchange lists (`GET /markets?mve_filter=only`).
    #[arg(long)]
    pub combos: bool,
    /// Start of the range (RFC 3339, or YYYY-MM-DD for midnight UTC), included.
    #[arg(long)]
    pub from: String,
    /// End of the range, excluded. Default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// Kalshi API key id (unauthenticated when absent; only the simulator accepts that).
    #[arg(
        long,
        env = "KALSHI_DATA_BACKFILL_KEY_ID",
        hide_env_values = true,
        requires = "private_key_path"
    )]
    pub key_id: Option<String>,
    /// PEM private key of the API key.
    #[arg(
        long,
        env = "KALSHI_DATA_BACKFILL_PRIVATE_KEY_PATH",
        requires = "key_id"
    )]
    pub private_key_path: Option<PathBuf>,
    /// Seconds of history per resumable step (one watermark advance).
    #[arg(long, default_value_t = 86_400)]
    pub chunk_secs: u64,
    /// Most REST requests per second (Kalshi's basic tier allows about 20 reads/s; 0: unpaced).
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// Trades per page (1..=1000).
    #[arg(long, default_value_t = 1000)]
    pub page_limit: u32,
}

/// A flag with an unusable value.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {reason}")]
pub struct ArgError {
    pub flag: &'static str,
    pub reason: String,
}

/// Parses `--from`/`--to`: RFC 3339, or a bare `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(flag: &'static str, text: &str) -> Result<TimestampUs, ArgError> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    TimestampUs::parse_rfc3339(&full).map_err(|e| ArgError {
        flag,
        reason: format!("`{text}`: {e}"),
    })
}

impl BackfillArgs {
    /// The plan these flags describe, validated.
    pub fn plan(&self, now: TimestampUs) -> Result<BackfillPlan, ArgError> {
        let target = match (&self.ticker, &self.event, &self.series, self.combos) {
            (Some(t), None, None, false) => Target::Ticker(t.clone()),
            (None, Some(e), None, false) => Target::Event(e.clone()),
            (None, None, Some(s), false) => Target::Series(s.clone()),
            (None, None, None, true) => Target::Combos,
            _ => {
                return Err(ArgError {
                    flag: "ticker",
                    reason: "give exactly one of --ticker, --event, --series, --combos".into(),
                });
            }
        };
        let from = parse_time("from", &self.from)?;
        let to = match &self.to {
            Some(t) => parse_time("to", t)?,
            None => now,
        };
        if to <= from {
            return Err(ArgError {
                flag: "to",
                reason: "must be after --from".into(),
            });
        }
        if self.chunk_secs == 0 {
            return Err(ArgError {
                flag: "chunk-secs",
                reason: "must be at least 1".into(),
            });
        }
        if !(1..=1000).contains(&self.page_limit) {
            return Err(ArgError {
                flag: "page-limit",
                reason: "must be 1..=1000".into(),
            });
        }
        Ok(BackfillPlan {
            target,
            from,
            to,
            chunk: Duration::from_secs(self.chunk_secs),
            requests_per_sec: self.rate,
            page_limit: self.page_limit,
            rest_backoff: BackoffPolicy::REGISTRY,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BackfillArgs,
    }

    fn parse(argv: &[&str]) -> Result<BackfillArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("backfill").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn exactly_one_target_is_required() {
        assert!(parse(&["--production", "sqlite:///x", "--from", "2026-01-01"]).is_err());
        assert!(
            parse(&[
                "--production",
                "sqlite:///x",
                "--from",
                "2026-01-01",
                "--ticker",
                "A",
                "--event",
                "E"
            ])
            .is_err()
        );
        let args = parse(&[
            "--production",
            "sqlite:///x",
            "--from",
            "2026-01-01",
            "--series",
            "S",
        ])
        .expect("args");
        let plan = args
            .plan(TimestampUs::from_micros(1_800_000_000_000_000))
            .expect("plan");
        assert_eq!(plan.target, Target::Series("S".into()));
        assert_eq!(plan.from.to_rfc3339_secs(), "2026-01-01T00:00:00Z");
        let args = parse(&["--production", "p", "--from", "2026-01-01", "--combos"]).expect("args");
        assert_eq!(
            args.plan(TimestampUs::now()).map(|p| p.target).ok(),
            Some(Target::Combos)
        );
        assert!(
            parse(&[
                "--production",
                "p",
                "--from",
                "2026-01-01",
                "--combos",
                "--series",
                "S"
            ])
            .is_err()
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let args = parse(&[
            "--production",
            "p",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
            "--ticker",
            "A",
        ])
        .expect("args");
        assert_eq!(
            args.plan(TimestampUs::now()).map_err(|e| e.flag).err(),
            Some("to")
        );
        let args =
            parse(&["--production", "p", "--from", "yesterday", "--ticker", "A"]).expect("args");
        assert_eq!(
            args.plan(TimestampUs::now()).map_err(|e| e.flag).err(),
            Some("from")
        );
        let args = parse(&[
            "--production",
            "p",
            "--from",
            "2026-01-01",
            "--ticker",
            "A",
            "--page-limit",
            "0",
        ])
        .expect("args");
        assert_eq!(
            args.plan(TimestampUs::now()).map_err(|e| e.flag).err(),
            Some("page-limit")
        );
    }
}
