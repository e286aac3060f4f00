//! `kalshi-data audit`: a data-quality report of production that needs no ground truth, so it
//! works on the real exchange.
//!
//! - [`coverage`]: from the gap records, per market, the windows **no** gatherer covered
//!   (`possible_loss`, the only windows where data can really be lost) and those only one did
//!   (what the redundancy saved).
//! - [`continuity`]: the book rebuilt from the stored deltas against every later snapshot.
//! - [`sanity`]: trade, ticker and snapshot values no consistent market has.
//! - [`report`]: the document (`--json`) and its text; [`html`]: the one-page HTML form.
//!
//! Exit status: 0 nothing possibly lost, 1 a possible loss or a continuity mismatch, 2 an
//! error (the binary's own).

pub mod continuity;
pub mod coverage;
pub mod html;
pub mod report;
pub mod sanity;

use crate::production::{self, ProductionData, ProductionError};
use crate::time_arg::parse_time;
use crate::verify::gaps::channel;
use kd_core::records::TradeSource;
use kd_core::{Record, Table, TimestampUs};
use report::{BookContinuity, LossWindow, Redundancy, Repaired, Report};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Flags of `kalshi-data audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Production store URL (`sqlite://PATH` or `postgres://…`).
    #[arg(long, env = "KALSHI_DATA_PRODUCTION", hide_env_values = true)]
    pub production: String,
    /// Start of the window (RFC 3339 or µs since the epoch). Default: the first record.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<TimestampUs>,
    /// End of the window, inclusive. Default: the last record.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<TimestampUs>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as one self-contained HTML page (heat map, timelines, tables).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Production(#[from] ProductionError),
    #[error("production store: {0}")]
    Store(#[from] kd_production::StoreError),
    #[error("production holds no records in the window: nothing to audit")]
    Empty,
    #[error("--html {path}: {source}")]
    Html {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// The outcome: what to print and the exit status (0 or 1).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub text: String,
    pub report: Report,
    pub exit: u8,
}

/// Runs `audit`.
pub async fn run(args: &AuditArgs) -> Result<Outcome, AuditError> {
    let to = args.to.unwrap_or(TimestampUs::from_micros(i64::MAX - 2));
    // From the beginning: snapshots and deltas before the window are the bases of its books.
    let data = production::load(
        &args.production,
        &Table::ALL,
        TimestampUs::from_micros(0),
        to,
    )
    .await?;
    let listed: Vec<String> = kd_production::open(&args.production)
        .await?
        .markets()
        .await?
        .into_iter()
        .map(|m| m.ticker)
        .collect();
    let report = audit(&data, &listed, args.from, args.to)?;
    if let Some(path) = &args.html {
        std::fs::write(path, html::page(&report)).map_err(|source| AuditError::Html {
            path: path.clone(),
            source,
        })?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report::render(&report)
    };
    let exit = u8::from(report.verdict != "OK");
    Ok(Outcome { text, report, exit })
}

/// The channel a record arrives on (as gap records name it) and its market.
fn channel_of(r: &Record) -> Option<(&'static str, &str)> {
    match r {
        Record::Trade(t) => Some((channel::TRADE, t.ticker.as_str())),
        Record::Delta(d) => Some((channel::DELTA, d.ticker.as_str())),
        Record::Snapshot(s) => Some((channel::DELTA, s.ticker.as_str())),
        Record::Ticker(t) => Some((channel::TICKER, t.ticker.as_str())),
        Record::Lifecycle(l) => Some((channel::LIFECYCLE, l.subject.as_str())),
        Record::Gap(_) => None,
    }
}

/// The audit of loaded production data; `listed`: the markets production knows.
pub fn audit(
    data: &ProductionData,
    listed: &[String],
    from: Option<TimestampUs>,
    to: Option<TimestampUs>,
) -> Result<Report, AuditError> {
    let times = data.records().map(|r| r.exchange_ts());
    let (lo, hi) = times.fold(
        (None, None),
        |(lo, hi): (Option<TimestampUs>, Option<TimestampUs>), t| {
            (
                Some(lo.map_or(t, |l| l.min(t))),
                Some(hi.map_or(t, |h| h.max(t))),
            )
        },
    );
    let from = from.or(lo).ok_or(AuditError::Empty)?;
    let to = to.or(hi).ok_or(AuditError::Empty)?;
    let gatherers: BTreeSet<String> = data
        .gatherers
        .iter()
        .cloned()
        .chain(data.gaps.iter().map(|g| g.gatherer.clone()))
        .collect();
    let mut markets: BTreeSet<String> = listed.iter().cloned().collect();
    for r in data.records() {
        if let Some((_, t)) = channel_of(&r) {
            markets.insert(t.to_string());
        }
    }
    markets.extend(data.gaps.iter().filter_map(|g| g.ticker.clone()));
    let cover = coverage::cover(&gatherers, &data.gaps, &markets, from, to);

    let possible_loss: Vec<LossWindow> = cover.uncovered.iter().map(|w| loss(w, data)).collect();

    // Records made inside a single-cover window of their market and channel.
    let mut single_by_ticker: BTreeMap<&str, Vec<&coverage::Window>> = BTreeMap::new();
    for w in &cover.single {
        single_by_ticker
            .entry(w.ticker.as_str())
            .or_default()
            .push(w);
    }
    let mut redundancy = Redundancy {
        single_cover_windows: cover.single.len(),
        single_cover_seconds: secs(cover.single.iter().map(micros).sum()),
        ..Redundancy::default()
    };
    for r in data.records() {
        let ts = r.exchange_ts();
        if ts < from || ts > to {
            continue;
        }
        redundancy.records += 1;
        let Some((chan, ticker)) = channel_of(&r) else {
            continue;
        };
        if single_by_ticker.get(ticker).is_some_and(|ws| {
            ws.iter()
                .any(|w| w.start <= ts && ts <= w.end && w.channels.contains(chan))
        }) {
            *redundancy
                .single_copy_records
                .entry(r.table().name().to_string())
                .or_default() += 1;
        }
    }

    let continuity = continuity::check(&data.snapshots, &data.deltas, from, to);
    let book_continuity = BookContinuity::from(&continuity, &possible_loss);
    let in_window = |t: TimestampUs| from <= t && t <= to;
    let trades: Vec<_> = data
        .trades
        .iter()
        .filter(|t| in_window(t.exchange_ts))
        .cloned()
        .collect();
    let tickers: Vec<_> = data
        .tickers
        .iter()
        .filter(|t| in_window(t.exchange_ts))
        .cloned()
        .collect();
    let snaps: Vec<_> = data
        .snapshots
        .iter()
        .filter(|s| in_window(s.exchange_ts))
        .cloned()
        .collect();
    let sanity = sanity::check(&trades, &tickers, &snaps);

    let mut problems = Vec::new();
    if !possible_loss.is_empty() {
        let lost = secs(cover.uncovered.iter().map(micros).sum());
        let markets: BTreeSet<&str> = possible_loss.iter().map(|w| w.ticker.as_str()).collect();
        problems.push(format!(
            "POSSIBLE LOSS windows={} markets={} seconds={lost:.1}",
            possible_loss.len(),
            markets.len()
        ));
    }
    if book_continuity.mismatched > 0 {
        problems.push(format!(
            "BOOK MISMATCH snapshots={}",
            book_continuity.mismatched
        ));
    }
    let verdict = if problems.is_empty() {
        "OK".to_string()
    } else {
        problems.join("; ")
    };
    Ok(Report {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        gatherers: gatherers.into_iter().collect(),
        markets: markets.len(),
        possible_loss,
        book_continuity,
        redundancy,
        sanity,
        single_cover: cover.single,
        market_names: markets.into_iter().collect(),
        verdict,
    })
}

/// A window's length in µs, summed exactly (a float sum of nothing is -0.0, which the page
/// once showed).
fn micros(w: &coverage::Window) -> i64 {
    w.end.micros().saturating_sub(w.start.micros())
}

/// Seconds for display, from exact µs.
fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// A possible-loss window with what production shows was repaired.
fn loss(w: &coverage::Window, data: &ProductionData) -> LossWindow {
    let trades_recovered_rest = data
        .trades
        .iter()
        .filter(|t| {
            t.ticker == w.ticker
                && t.source == TradeSource::Rest
                && w.start <= t.exchange_ts
                && t.exchange_ts <= w.end
        })
        .count();
    let book_resnapshotted_at = data
        .snapshots
        .iter()
        .filter(|s| s.ticker == w.ticker && s.exchange_ts >= w.start)
        .map(|s| s.exchange_ts)
        .min()
        .map(TimestampUs::to_rfc3339);
    LossWindow {
        ticker: w.ticker.clone(),
        start: w.start.to_rfc3339(),
        end: w.end.to_rfc3339(),
        start_us: w.start.micros(),
        end_us: w.end.micros(),
        seconds: secs(micros(w)),
        channels: w.channels.iter().cloned().collect(),
        reasons: w.reasons.iter().cloned().collect(),
        repaired: Repaired {
            attempted: w.repairs.iter().cloned().collect(),
            trades_recovered_rest,
            book_resnapshotted_at,
        },
    }
}
