//! `kalshi-data book`: a market's order book at a given time, rebuilt from production by the
//! same code `verify` uses ([`crate::book`]), with the audit of the REST snapshots up to then
//! (each agrees or disagrees with the rebuilt book within its staleness window).

use crate::book::{BookView, MAX_REST_STALENESS_US, MarketHistory, RestAudit};
use crate::production::{self, ProductionError};
use crate::time_arg::parse_time;
use kd_core::{Table, TimestampUs};
use serde::Serialize;
use std::fmt::Write as _;

/// Flags of `kalshi-data book`.
#[derive(Debug, Clone, clap::Args)]
pub struct BookArgs {
    /// Production store URL (`sqlite://PATH` or `postgres://…`).
    #[arg(long, env = "KALSHI_DATA_PRODUCTION", hide_env_values = true)]
    pub production: String,
    /// Market ticker.
    #[arg(long)]
    pub ticker: String,
    /// The instant (RFC 3339 or µs since the epoch).
    #[arg(long, value_parser = parse_time)]
    pub at: TimestampUs,
    /// Levels shown per side, best first.
    #[arg(long, default_value_t = 10)]
    pub depth: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error(transparent)]
    Production(#[from] ProductionError),
    #[error("no snapshot of {ticker} at or before {at} in production")]
    NoSnapshot { ticker: String, at: TimestampUs },
}

/// The JSON document of `book --json`.
#[derive(Debug, Serialize)]
pub struct BookDocument {
    pub ticker: String,
    pub at: String,
    pub snapshot_ts: String,
    /// `ws`, or `rest` where no WebSocket snapshot precedes the instant.
    pub snapshot_source: String,
    pub deltas_applied: usize,
    pub negative_levels: usize,
    /// The REST snapshots stamped up to the instant, audited against the rebuilt book.
    pub rest_snapshots: RestAudit,
    /// Receipt stamps of the disagreeing ones (at most 10).
    pub rest_disagreed_at: Vec<String>,
    #[serde(flatten)]
    pub book: BookView,
}

/// Rebuilds the book and renders it.
pub async fn run(args: &BookArgs) -> Result<String, BookError> {
    let data = production::load(
        &args.production,
        &[Table::Snapshots, Table::Deltas],
        TimestampUs::from_micros(0),
        args.at,
    )
    .await?;
    let snapshots = data
        .snapshots
        .into_iter()
        .filter(|s| s.ticker == args.ticker)
        .collect();
    let deltas = data
        .deltas
        .into_iter()
        .filter(|d| d.ticker == args.ticker)
        .collect();
    let history = MarketHistory::new(snapshots, deltas);
    let audit = history.replay(args.at).audit;
    let rebuilt = history.at(args.at).ok_or_else(|| BookError::NoSnapshot {
        ticker: args.ticker.clone(),
        at: args.at,
    })?;
    let doc = BookDocument {
        ticker: args.ticker.clone(),
        at: args.at.to_rfc3339(),
        snapshot_ts: rebuilt.snapshot_ts.to_rfc3339(),
        snapshot_source: rebuilt.base_source.as_str().to_string(),
        rest_disagreed_at: audit
            .disagreed_at
            .iter()
            .take(10)
            .map(|t| t.to_rfc3339())
            .collect(),
        rest_snapshots: audit,
        deltas_applied: rebuilt.deltas_applied,
        negative_levels: rebuilt.negative_levels,
        book: rebuilt.book.top(args.depth),
    };
    if args.json {
        return Ok(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n");
    }
    Ok(render(&doc))
}

/// The table form: YES bids and NO bids side by side, best first.
pub fn render(doc: &BookDocument) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} at {}", doc.ticker, doc.at);
    let _ = writeln!(
        out,
        "from {} snapshot {} + {} deltas{}",
        doc.snapshot_source,
        doc.snapshot_ts,
        doc.deltas_applied,
        if doc.negative_levels > 0 {
            format!(
                " ({} would have gone negative: a delta is missing or extra)",
                doc.negative_levels
            )
        } else {
            String::new()
        }
    );
    let a = &doc.rest_snapshots;
    let _ = writeln!(
        out,
        "REST snapshots: {} agreed, {} disagreed, {} unchecked (staleness window {} s){}",
        a.agreed,
        a.disagreed,
        a.unchecked,
        MAX_REST_STALENESS_US / 1_000_000,
        if a.disagreed > 0 {
            format!(
                ": deltas lost or extra before {}",
                doc.rest_disagreed_at.join(", ")
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "{:>10} {:>12}   {:>10} {:>12}",
        "YES bid", "size", "NO bid", "size"
    );
    let rows = doc.book.yes.len().max(doc.book.no.len());
    for i in 0..rows {
        let cell = |side: &[crate::book::LevelView]| {
            side.get(i).map_or((String::new(), String::new()), |l| {
                (l.price.clone(), l.size.clone())
            })
        };
        let (yp, ys) = cell(&doc.book.yes);
        let (np, ns) = cell(&doc.book.no);
        let _ = writeln!(out, "{yp:>10} {ys:>12}   {np:>10} {ns:>12}");
    }
    out
}
