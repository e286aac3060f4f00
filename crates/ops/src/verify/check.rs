//! The exact comparison of production with the ground truth.
//!
//! Per table the expected set is every message of every market the exchange had, whatever
//! became of it (delivered, dropped on the wire for everyone, sent while nobody was
//! subscribed), from the moment the platform could have subscribed to it ([`Expect`]):
//! - trades: every trade from the platform's first trade subscription on (`trades_from`),
//!   whatever its fate — a gatherer recovers missed trades over REST, so "not subscribed" never
//!   excuses one, and neither does a gap;
//! - deltas: every delta, except one sent while nobody was subscribed before its market could
//!   have been: within `allowance` of the market's listing or of the first subscription of the
//!   simulator run (the first gatherer's start);
//! - tickers and lifecycle (channels for all markets, one subscription each): every message
//!   except one sent while nobody was subscribed within `allowance` of the run's first
//!   subscription;
//! - deltas, tickers and lifecycle absent from production inside a gap window recorded by
//!   EVERY gatherer are `excused` (counted and listed, never hidden).
//!
//! A message delivered to somebody is always expected. A record is `ok` when production holds
//! exactly one row with its identity (for trades: and every field equal). Production rows whose
//! identity the truth does not know are `extra`; both `extra` and `duplicated` fail. Per market,
//! a market with expected records of a kind and not one of them stored is named as not
//! captured (a market no gatherer subscribed to).

use super::gaps::{GapIndex, channel};
use super::truth::{Fate, Published, Truth};
use crate::book::{self, Book};
use crate::production::ProductionData;
use kd_core::records::Identity;
use kd_core::{Record, TimestampUs, Trade};
use std::collections::{BTreeMap, HashMap};

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
    /// Sent while nobody was subscribed, before the platform could have been (not expected).
    pub unreachable: usize,
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

/// Per market: did production capture it at all?
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketCheck {
    /// Markets the truth knows (listed, or named by a published record).
    pub known: usize,
    /// Markets with at least one expected trade, delta or ticker.
    pub active: usize,
    /// Markets with expected records of a kind and none of them stored, with their counts.
    pub not_captured: Problems,
}

/// Expected and stored records of one market, per kind (trades, deltas, tickers).
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    expected: [usize; 3],
    ok: [usize; 3],
}

/// What is expected: the window, and since when the platform could hold what nobody received.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub from: TimestampUs,
    pub to: TimestampUs,
    /// Trades that reached nobody are expected from here on (the first trade subscription).
    pub trades_from: TimestampUs,
    /// Time a just listed market (or a just started platform) may take to be subscribed, µs.
    pub allowance_us: i64,
}

/// The whole comparison.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub from: TimestampUs,
    pub to: TimestampUs,
    pub gatherers: Vec<String>,
    /// Rows in production's `quarantine`, per table (shown; the verdict is the comparison's).
    pub quarantined: Vec<(String, u64)>,
    pub trades: Category,
    pub deltas: Category,
    pub tickers: Category,
    pub lifecycle: Category,
    pub books: BookCheck,
    pub markets: MarketCheck,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.markets.not_captured.count == 0
            && self.trades.passed()
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
    compare_with(
        truth,
        production,
        &Expect {
            from,
            to,
            trades_from,
            allowance_us: 0,
        },
    )
}

/// When the platform could have held a message nobody received (see the module text).
pub(super) struct Reach<'a> {
    /// Per simulator run: (run start, first subscription + allowance).
    warm_up: Vec<(TimestampUs, TimestampUs)>,
    listed: &'a BTreeMap<String, TimestampUs>,
    allowance_us: i64,
}

impl<'a> Reach<'a> {
    pub(super) fn new(truth: &'a Truth, allowance_us: i64) -> Self {
        let warm_up = truth
            .first_subscribed()
            .into_iter()
            .map(|(start, first)| (start, plus(first, allowance_us)))
            .collect();
        Reach {
            warm_up,
            listed: &truth.markets,
            allowance_us,
        }
    }

    /// Whether a message sent while nobody was subscribed was sent too early for anyone to be.
    pub(super) fn too_early(&self, p: &Published) -> bool {
        let at = p.sent_at;
        let in_warm_up = self.warm_up.iter().any(|(s, e)| *s <= at && at < *e);
        let before_listed = match &p.record {
            Record::Delta(d) => self
                .listed
                .get(&d.ticker)
                .is_some_and(|l| at < plus(*l, self.allowance_us)),
            _ => false,
        };
        in_warm_up || before_listed
    }
}

fn plus(t: TimestampUs, us: i64) -> TimestampUs {
    TimestampUs::from_micros(t.micros().saturating_add(us))
}

/// [`compare`] under explicit [`Expect`]ations.
pub fn compare_with(truth: &Truth, production: &ProductionData, expect: &Expect) -> Report {
    let (from, to, trades_from) = (expect.from, expect.to, expect.trades_from);
    let reach = Reach::new(truth, expect.allowance_us);
    let mut tallies: BTreeMap<&str, Tally> = truth
        .markets
        .keys()
        .map(|t| (t.as_str(), Tally::default()))
        .collect();
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
        quarantined: production
            .quarantined
            .iter()
            .map(|(t, n)| (t.clone(), *n))
            .collect(),
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
        let expected = match (published.fate, is_trade) {
            (Fate::Delivered, _) => true,
            // Recovered over REST once a trade subscription existed, whatever its fate.
            (_, true) => record.exchange_ts() >= trades_from,
            (Fate::Dropped, false) => true,
            (Fate::Unsubscribed, false) => !reach.too_early(published),
        };
        if !expected {
            // Nobody could have received it: production cannot hold it. A copy would be
            // counted `extra` only if its identity were unknown, and it is known — so it is
            // simply not expected.
            category.unreachable += 1;
            continue;
        }
        let sent_at = published.sent_at;
        if copies.is_empty() && !is_trade && gaps.covered_by_all(subject(record), chan, sent_at) {
            category.excused.push(|| describe(record));
            continue;
        }
        category.expected += 1;
        let kind = match record {
            Record::Trade(_) => Some(0),
            Record::Delta(_) => Some(1),
            Record::Ticker(_) => Some(2),
            _ => None,
        };
        if let Some(k) = kind {
            let tally = tallies.entry(subject(record)).or_default();
            tally.expected[k] += 1;
            if !copies.is_empty() {
                tally.ok[k] += 1;
            }
        }
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
    report.lifecycle = super::lifecycle::compare(truth, production, &gaps, &reach, from, to);
    report.books = check_books(truth, production, &gaps, from, to);
    report.markets = check_markets(&tallies);
    report
}

fn check_markets(tallies: &BTreeMap<&str, Tally>) -> MarketCheck {
    let mut check = MarketCheck {
        known: tallies.len(),
        ..MarketCheck::default()
    };
    for (ticker, t) in tallies {
        if t.expected.iter().all(|n| *n == 0) {
            continue;
        }
        check.active += 1;
        let lost = (0..3).any(|k| t.expected[k] > 0 && t.ok[k] == 0);
        if lost {
            check.not_captured.push(|| {
                format!(
                    "{ticker} (stored/expected: deltas {}/{}, trades {}/{}, tickers {}/{})",
                    t.ok[1], t.expected[1], t.ok[0], t.expected[0], t.ok[2], t.expected[2]
                )
            });
        }
    }
    check
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
            && (!p.delivered() || gaps.covered_by_all(&d.ticker, channel::DELTA, d.exchange_ts))
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
