//! The audit's document (`--json` prints it as is; the text and HTML forms are drawn from it).

use super::continuity::{Continuity, Mismatch};
use super::coverage::Window;
use super::sanity::Sanity;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub gatherers: Vec<String>,
    pub markets: usize,
    /// Every window no gatherer covered, per market.
    pub possible_loss: Vec<LossWindow>,
    pub book_continuity: BookContinuity,
    pub redundancy: Redundancy,
    pub sanity: Sanity,
    /// Per market, the windows where exactly one gatherer covered it (for the timeline).
    #[serde(skip)]
    pub single_cover: Vec<Window>,
    /// Every market audited, sorted (the heat map's rows).
    #[serde(skip)]
    pub market_names: Vec<String>,
    /// `OK`, or what makes the audit fail.
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LossWindow {
    pub ticker: String,
    pub start: String,
    pub end: String,
    #[serde(skip)]
    pub start_us: i64,
    #[serde(skip)]
    pub end_us: i64,
    pub seconds: f64,
    pub channels: Vec<String>,
    pub reasons: Vec<String>,
    pub repaired: Repaired,
}

/// What was repaired of a window: what the gatherers attempted and what production shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repaired {
    /// The gap records' repairs (`rest_trades`, `snapshot`, `resubscribe`, …).
    pub attempted: Vec<String>,
    /// Trades of the market inside the window stored from REST (recovered after the fact).
    pub trades_recovered_rest: usize,
    /// The first snapshot of the market at or after the window's start, when there is one:
    /// the book is right again from there.
    pub book_resnapshotted_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BookContinuity {
    pub checked: usize,
    pub agreed: usize,
    pub mismatched: usize,
    pub unchecked: usize,
    pub negative_levels: usize,
    pub mismatches: Vec<MismatchDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MismatchDoc {
    pub ticker: String,
    pub at: String,
    pub source: String,
    /// Inside or right after (within 60 s) a possible-loss window of the market.
    pub after_possible_loss: bool,
    pub levels: Vec<LevelDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LevelDoc {
    pub side: String,
    pub price: String,
    pub rebuilt: Option<String>,
    pub snapshot: Option<String>,
}

impl LevelDoc {
    /// `yes@0.7900: 112.00 vs -` (rebuilt vs snapshot; `-` where a side has no such level).
    pub fn describe(&self) -> String {
        format!(
            "{}@{}: {} vs {}",
            self.side,
            self.price,
            self.rebuilt.as_deref().unwrap_or("-"),
            self.snapshot.as_deref().unwrap_or("-")
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Redundancy {
    /// Windows (per market) where exactly one gatherer was covering.
    pub single_cover_windows: usize,
    pub single_cover_seconds: f64,
    /// Records in production that only one gatherer can have had (made inside a single-cover
    /// window of their market and channel), by table: what the redundancy saved.
    pub single_copy_records: BTreeMap<String, usize>,
    pub records: usize,
}

impl BookContinuity {
    pub fn from(c: &Continuity, loss: &[LossWindow]) -> BookContinuity {
        const AFTER_US: i64 = 60_000_000;
        let doc = |m: &Mismatch| MismatchDoc {
            ticker: m.ticker.clone(),
            at: m.at.to_rfc3339(),
            source: m.source.as_str().to_string(),
            after_possible_loss: loss.iter().any(|w| {
                w.ticker == m.ticker
                    && w.start_us <= m.at.micros()
                    && m.at.micros() <= w.end_us.saturating_add(AFTER_US)
            }),
            levels: m
                .levels
                .iter()
                .map(|l| LevelDoc {
                    side: l.side.as_str().to_string(),
                    price: l.price.to_string(),
                    rebuilt: l.rebuilt.map(|c| c.to_fp()),
                    snapshot: l.snapshot.map(|c| c.to_fp()),
                })
                .collect(),
        };
        BookContinuity {
            checked: c.checked,
            agreed: c.agreed,
            mismatched: c.mismatches.len(),
            unchecked: c.unchecked,
            negative_levels: c.negative_levels,
            mismatches: c.mismatches.iter().map(doc).collect(),
        }
    }
}

/// The text form, ending with the verdict line `audit: OK …` / `audit: POSSIBLE LOSS …`.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "audit of {} .. {}", r.from, r.to);
    let _ = writeln!(
        out,
        "gatherers: {} ({})",
        r.gatherers.len(),
        r.gatherers.join(", ")
    );
    let _ = writeln!(out, "markets: {}", r.markets);
    let _ = writeln!(
        out,
        "possible loss (no gatherer covering): {} windows",
        r.possible_loss.len()
    );
    for w in &r.possible_loss {
        let _ = writeln!(
            out,
            "  {}  {} .. {}  ({:.1} s)  channels={}  reasons={}  repaired: attempted={} rest_trades={} resnapshot={}",
            w.ticker,
            w.start,
            w.end,
            w.seconds,
            w.channels.join(","),
            w.reasons.join(","),
            if w.repaired.attempted.is_empty() {
                "none".into()
            } else {
                w.repaired.attempted.join(",")
            },
            w.repaired.trades_recovered_rest,
            w.repaired
                .book_resnapshotted_at
                .as_deref()
                .unwrap_or("none"),
        );
    }
    let c = &r.book_continuity;
    let _ = writeln!(
        out,
        "book continuity: {} snapshots checked, {} agreed, {} mismatched, {} unchecked (first of a market), {} negative levels",
        c.checked, c.agreed, c.mismatched, c.unchecked, c.negative_levels
    );
    for m in c.mismatches.iter().take(50) {
        let levels: Vec<String> = m.levels.iter().take(6).map(LevelDoc::describe).collect();
        let _ = writeln!(
            out,
            "  {}  {}  {}{}  rebuilt vs snapshot: {}",
            m.ticker,
            m.at,
            m.source,
            if m.after_possible_loss {
                " (after a possible loss)"
            } else {
                ""
            },
            levels.join(", ")
        );
    }
    if c.mismatches.len() > 50 {
        let _ = writeln!(out, "  … {} more (see --json)", c.mismatches.len() - 50);
    }
    let d = &r.redundancy;
    let copies: Vec<String> = d
        .single_copy_records
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    let _ = writeln!(
        out,
        "redundancy: {} single-cover windows ({:.1} s); records only one gatherer had: {} of {} ({})",
        d.single_cover_windows,
        d.single_cover_seconds,
        d.single_copy_records.values().sum::<usize>(),
        d.records,
        if copies.is_empty() {
            "none".into()
        } else {
            copies.join(" ")
        }
    );
    let s = &r.sanity;
    let _ = writeln!(
        out,
        "sanity: trades={} price_out_of_range={} prices_not_one_dollar={} count_not_positive={} duplicate_ids={}; tickers={} bid_above_ask={} negative_totals={}; snapshots={} levels_not_positive={}",
        s.trades,
        s.trade_price_out_of_range,
        s.trade_prices_not_one_dollar,
        s.trade_count_not_positive,
        s.duplicate_trade_ids,
        s.tickers,
        s.ticker_bid_above_ask,
        s.ticker_negative_totals,
        s.snapshots,
        s.snapshot_levels_not_positive
    );
    let _ = writeln!(out, "audit: {}", r.verdict);
    out
}
