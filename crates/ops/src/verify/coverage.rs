//! Coverage report without a ground truth (works against the real exchange): rows per table
//! and hour, and per gatherer and hour the gap records, split into repaired and unrepaired.

use super::gaps::is_repaired;
use crate::production::ProductionData;
use kd_core::{Table, TimestampUs};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const HOUR_US: i64 = 3_600_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GapHour {
    pub gaps: usize,
    pub repaired: usize,
    pub unrepaired: usize,
    /// Total length of the gap windows, in seconds (overlaps counted twice).
    pub seconds: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// (hour start, table) → rows.
    pub rows: BTreeMap<(i64, Table), usize>,
    /// (gatherer, hour start) → gaps.
    pub gaps: BTreeMap<(String, i64), GapHour>,
    /// Unrepaired windows, listed.
    pub unrepaired: Vec<String>,
}

pub fn coverage(production: &ProductionData) -> Coverage {
    let mut c = Coverage::default();
    for r in production.records() {
        let hour = r.exchange_ts().micros().div_euclid(HOUR_US) * HOUR_US;
        *c.rows.entry((hour, r.table())).or_default() += 1;
    }
    for gap in &production.gaps {
        let hour = gap.start.micros().div_euclid(HOUR_US) * HOUR_US;
        let entry = c.gaps.entry((gap.gatherer.clone(), hour)).or_default();
        entry.gaps += 1;
        entry.seconds += (gap.end.micros() - gap.start.micros()).max(0) / 1_000_000;
        if is_repaired(gap) {
            entry.repaired += 1;
        } else {
            entry.unrepaired += 1;
            let markets = match (&gap.ticker, gap.tickers.len()) {
                (Some(t), _) => t.clone(),
                (None, 0) => "*".to_string(),
                (None, n) => format!("{n} markets"),
            };
            c.unrepaired.push(format!(
                "{} {} {} {} .. {} ({})",
                gap.gatherer, markets, gap.channel, gap.start, gap.end, gap.reason
            ));
        }
    }
    c
}

pub fn render(c: &Coverage) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "rows per hour (exchange time):");
    let mut hours: BTreeMap<i64, BTreeMap<Table, usize>> = BTreeMap::new();
    for ((hour, table), n) in &c.rows {
        hours.entry(*hour).or_default().insert(*table, *n);
    }
    for (hour, tables) in &hours {
        let cols: Vec<String> = tables.iter().map(|(t, n)| format!("{t}={n}")).collect();
        let _ = writeln!(
            out,
            "  {}  {}",
            TimestampUs::from_micros(*hour).to_rfc3339_secs(),
            cols.join(" ")
        );
    }
    let _ = writeln!(out, "gaps per gatherer and hour:");
    if c.gaps.is_empty() {
        let _ = writeln!(out, "  none recorded");
    }
    for ((gatherer, hour), g) in &c.gaps {
        let _ = writeln!(
            out,
            "  {gatherer}  {}  gaps={} repaired={} unrepaired={} seconds={}",
            TimestampUs::from_micros(*hour).to_rfc3339_secs(),
            g.gaps,
            g.repaired,
            g.unrepaired,
            g.seconds
        );
    }
    let _ = writeln!(out, "unrepaired windows: {}", c.unrepaired.len());
    for w in &c.unrepaired {
        let _ = writeln!(out, "  {w}");
    }
    out
}
