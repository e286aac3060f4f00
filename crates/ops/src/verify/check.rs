//! The exact comparison of production with the ground truth.
//!
//! Per table the expected set is: trades — every trade published in the window (delivered or
//! not: a gatherer recovers missed trades over REST); deltas, tickers, lifecycle — every message
//! delivered to at least one subscriber, except those inside a gap window recorded by EVERY
//! gatherer (counted as `excused` and listed, never hidden). A record is `ok` when production
//! holds exactly one row with its identity (for trades: and every field equal). Production rows
//! whose identity the truth does not know are `extra`; both `extra` and `duplicated` fail.

use super::gaps::{GapIndex, channel};
use super::truth::Truth;
use crate::book::{self, Book};
use crate::production::ProductionData;
use kd_core::records::Identity;
use kd_core::{Record, TimestampUs, Trade};
use std::collections::HashMap;

/// How many names of each kind of problem are kept for the report.
pub const SHOWN: usize = 5;

/// The verdict for one kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Category {
    pub expected: usize,
    pub ok: usize,
    pub missing: Problems,
    pub duplicated: Problems,
    pub altered: Problems,
    pub extra: Problems,
    /// Absent from production but inside a gap window of every gatherer.
    pub excused: Problems,
}

/// A count and the first few names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub count: usize,
    pub first: Vec<String>,
}

impl Problems {
    fn push(&mut self, name: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < SHOWN {
            self.first.push(name());
        }
    }
}

impl Category {
    pub fn passed(&self) -> bool {
        self.ok == self.expected && self.duplicated.count == 0 && self.extra.count == 0
    }
}

/// Book check points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookCheck {
    pub expected: usize,
    pub ok: usize,
    pub mismatched: Problems,
    /// Check points inside a gap window of every gatherer, or whose rebuilt book differs only
    /// by changes nobody could have stored (sent to no subscriber, or inside a gap window of
    /// every gatherer) since the snapshot it starts from: not expected to match.
    pub in_gap: Problems,
    /// Check points of a market before its first stored snapshot (nothing to rebuild from).
    pub before_first_snapshot: Problems,
}

impl BookCheck {
    pub fn passed(&self) -> bool {
        self.ok == self.expected
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub from: TimestampUs,
    pub to: TimestampUs,
    pub gatherers: Vec<String>,
    pub trades: Category,
    pub deltas: Category,
    pub tickers: Category,
    pub lifecycle: Category,
    pub books: BookCheck,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.trades.passed()
            && self.deltas.passed()
            && self.tickers.passed()
            && self.lifecycle.passed()
            && self.books.passed()
    }
}

/// Compares `production` with `truth` over `[from, to]` (exchange time, inclusive).
pub fn compare(
    truth: &Truth,
    production: &ProductionData,
    from: TimestampUs,
    to: TimestampUs,
) -> Report {
    compare_trades_from(truth, production, from, to, from)
}

/// [`compare`], with trades that reached no subscriber expected only from `trades_from` on:
/// before the platform's first trade subscription nobody could have missed them (a trade made
/// in the millisecond before that subscription is neither delivered nor in any gap).
pub fn compare_trades_from(
    truth: &Truth,
    production: &ProductionData,
    from: TimestampUs,
    to: TimestampUs,
    trades_from: TimestampUs,
) -> Report {
    let in_window = |ts: TimestampUs| from <= ts && ts <= to;
    let gaps = GapIndex::new(&production.gatherers, &production.gaps);

    // Production rows per identity, restricted to the window.
    let rows: Vec<Record> = production
        .records()
        .filter(|r| in_window(r.exchange_ts()))
        .collect();
    let mut stored: HashMap<Identity, Vec<&Record>> = HashMap::new();
    for r in &rows {
        stored.entry(r.identity()).or_default().push(r);
    }

    let mut report = Report {
        from,
        to,
        gatherers: gaps.gatherers().into_iter().map(String::from).collect(),
        ..Report::default()
    };
    let mut known: HashMap<Identity, ()> = HashMap::new();
    for published in truth
        .published
        .iter()
        .filter(|p| in_window(p.record.exchange_ts()))
    {
        let record = &published.record;
        let id = record.identity();
        known.insert(id.clone(), ());
        let (category, chan) = match record {
            Record::Trade(_) => (&mut report.trades, channel::TRADE),
            Record::Delta(_) => (&mut report.deltas, channel::DELTA),
            Record::Ticker(_) => (&mut report.tickers, channel::TICKER),
            // Lifecycle: matched within a tolerance, not by exact identity (see `lifecycle`).
            Record::Lifecycle(_) | Record::Snapshot(_) | Record::Gap(_) => continue,
        };
        let copies = stored.get(&id).map_or(&[][..], Vec::as_slice);
        let is_trade = matches!(record, Record::Trade(_));
        if !published.delivered && (!is_trade || record.exchange_ts() < trades_from) {
            // Nobody received it: production cannot hold it. A copy would be counted `extra`
            // only if its identity were unknown, and it is known — so it is simply not expected.
            continue;
        }
        // When the exchange sent it: a lifecycle record's own time is the event's (a market's
        // `created` carries its future open time); the simulator's truth keeps the send time
        // in `received_at`.
        let sent_at = match record {
            Record::Lifecycle(l) => l.received_at,
            other => other.exchange_ts(),
        };
        if copies.is_empty() && !is_trade && gaps.covered_by_all(subject(record), chan, sent_at) {
            category.excused.push(|| describe(record));
            continue;
        }
        category.expected += 1;
        match copies {
            [] => category.missing.push(|| describe(record)),
            [one] => match (record, one) {
                (Record::Trade(t), Record::Trade(s)) if !same_trade(t, s) => {
                    category.altered.push(|| {
                        format!(
                            "{} (truth {} / production {})",
                            describe(record),
                            trade_fields(t),
                            trade_fields(s)
                        )
                    });
                }
                _ => category.ok += 1,
            },
            _ => category
                .duplicated
                .push(|| format!("{} ×{}", describe(record), copies.len())),
        }
    }
    for (id, copies) in &stored {
        if known.contains_key(id) {
            continue;
        }
        let Some(first) = copies.first() else {
            continue;
        };
        let category = match first {
            Record::Trade(_) => &mut report.trades,
            Record::Delta(_) => &mut report.deltas,
            Record::Ticker(_) => &mut report.tickers,
            Record::Lifecycle(_) | Record::Snapshot(_) | Record::Gap(_) => continue,
        };
        category
            .extra
            .push(|| format!("{} ×{}", describe(first), copies.len()));
    }
    report.lifecycle = super::lifecycle::compare(truth, production, &gaps, from, to);
    report.books = check_books(truth, production, &gaps, from, to);
    report
}

fn check_books(
    truth: &Truth,
    production: &ProductionData,
    gaps: &GapIndex,
    from: TimestampUs,
    to: TimestampUs,
) -> BookCheck {
    let histories = book::histories(
        production.snapshots.iter().cloned(),
        production.deltas.iter().cloned(),
    );
    // Per market, the deltas production cannot hold: sent to nobody, or lost by every
    // gatherer (their own gap windows). A rebuilt book after one of them, before the next
    // snapshot, differs for a reason `verify` already reports, not a new loss.
    let stored: std::collections::HashSet<Identity> = production
        .deltas
        .iter()
        .map(|d| Record::Delta(d.clone()).identity())
        .collect();
    let mut unseen: HashMap<&str, Vec<TimestampUs>> = HashMap::new();
    for p in &truth.published {
        if let Record::Delta(d) = &p.record
            && !stored.contains(&p.record.identity())
            && (!p.delivered || gaps.covered_by_all(&d.ticker, channel::DELTA, d.exchange_ts))
        {
            unseen
                .entry(d.ticker.as_str())
                .or_default()
                .push(d.exchange_ts);
        }
    }
    let mut check = BookCheck::default();
    for point in truth.books.iter().filter(|b| from <= b.ts && b.ts <= to) {
        let name = || format!("{} @ {}", point.ticker, point.ts);
        if gaps.covered_by_all(&point.ticker, channel::DELTA, point.ts) {
            check.in_gap.push(name);
            continue;
        }
        let rebuilt = histories.get(&point.ticker).and_then(|h| h.at(point.ts));
        let Some(rebuilt) = rebuilt else {
            if point.book == Book::default() {
                check.expected += 1;
                check.ok += 1;
            } else {
                check.before_first_snapshot.push(name);
            }
            continue;
        };
        if rebuilt.book != point.book
            && unseen
                .get(point.ticker.as_str())
                .is_some_and(|ts| ts.iter().any(|&t| rebuilt.snapshot_ts < t && t <= point.ts))
        {
            check.in_gap.push(name);
            continue;
        }
        check.expected += 1;
        if rebuilt.book == point.book {
            check.ok += 1;
        } else {
            check.mismatched.push(|| {
                format!(
                    "{} (production vs truth: {})",
                    name(),
                    rebuilt.book.diff(&point.book)
                )
            });
        }
    }
    check
}

/// The market (or event) a record belongs to.
fn subject(record: &Record) -> &str {
    match record {
        Record::Trade(t) => &t.ticker,
        Record::Delta(d) => &d.ticker,
        Record::Snapshot(s) => &s.ticker,
        Record::Ticker(t) => &t.ticker,
        Record::Lifecycle(l) => &l.subject,
        Record::Gap(g) => g.ticker.as_deref().unwrap_or("*"),
    }
}

/// Every field the exchange sent; `received_at`, `source` and `sid`/`seq` are the gatherer's.
fn same_trade(a: &Trade, b: &Trade) -> bool {
    a.trade_id == b.trade_id
        && a.ticker == b.ticker
        && a.exchange_ts == b.exchange_ts
        && a.yes_price == b.yes_price
        && a.no_price == b.no_price
        && a.count == b.count
        && a.taker_side == b.taker_side
        && a.is_block_trade == b.is_block_trade
}

fn trade_fields(t: &Trade) -> String {
    format!(
        "{} {} yes={} no={} count={} taker={} block={}",
        t.ticker,
        t.exchange_ts,
        t.yes_price,
        t.no_price,
        t.count,
        t.taker_side.map_or("-", |s| s.as_str()),
        t.is_block_trade
    )
}

/// A one-line name of a record for the report.
pub fn describe(record: &Record) -> String {
    match record {
        Record::Trade(t) => format!("trade {} {} {}", t.trade_id, t.ticker, t.exchange_ts),
        Record::Delta(d) => format!(
            "delta {} {} {} {} {} #{}",
            d.ticker,
            d.exchange_ts,
            d.side.as_str(),
            d.price,
            d.delta,
            d.occurrence
        ),
        Record::Ticker(t) => format!(
            "ticker {} {} values={:016x}",
            t.ticker,
            t.exchange_ts,
            t.values_hash()
        ),
        Record::Lifecycle(l) => {
            format!("lifecycle {} {} {}", l.subject, l.event_type, l.exchange_ts)
        }
        Record::Snapshot(s) => format!("snapshot {} {}", s.ticker, s.exchange_ts),
        Record::Gap(g) => format!("gap {} {}", g.gatherer, g.gap_id),
    }
}
