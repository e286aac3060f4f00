//! Rendering of a [`Report`]: problems first (first few of each), the verdict last, on a line
//! scripts can match: `verify: OK trades=N/N deltas=N/N tickers=N/N books=N/N`.

use super::check::{BookCheck, Category, MarketCheck, Problems, Report};
use std::fmt::Write as _;

/// The full text, ending with the verdict line (no trailing newline).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "window: {} .. {}", report.from, report.to);
    let _ = writeln!(out, "gatherers: {}", report.gatherers.join(", "));
    let quarantined: u64 = report.quarantined.iter().map(|(_, n)| n).sum();
    let per_table: Vec<String> = report
        .quarantined
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    let _ = writeln!(
        out,
        "quarantine: {quarantined} rows{}",
        if per_table.is_empty() {
            String::new()
        } else {
            format!(
                " ({}; reasons in production table `quarantine`)",
                per_table.join(" ")
            )
        }
    );
    for (name, c) in [
        ("trades", &report.trades),
        ("deltas", &report.deltas),
        ("tickers", &report.tickers),
        ("lifecycle", &report.lifecycle),
    ] {
        category(&mut out, name, c);
    }
    books(&mut out, &report.books);
    markets(&mut out, &report.markets);
    out.push_str(&verdict(report));
    out
}

/// The last line.
pub fn verdict(report: &Report) -> String {
    let word = if report.passed() { "OK" } else { "FAIL" };
    format!(
        "verify: {word} trades={}/{} deltas={}/{} tickers={}/{} books={}/{}",
        report.trades.ok,
        report.trades.expected,
        report.deltas.ok,
        report.deltas.expected,
        report.tickers.ok,
        report.tickers.expected,
        report.books.ok,
        report.books.expected
    )
}

fn category(out: &mut String, name: &str, c: &Category) {
    let _ = writeln!(
        out,
        "{name}: {}/{} ok, missing {}, duplicated {}, altered {}, extra {}, excused (gap of every gatherer) {}",
        c.ok,
        c.expected,
        c.missing.count,
        c.duplicated.count,
        c.altered.count,
        c.extra.count,
        c.excused.count
    );
    problems(out, name, "missing", &c.missing);
    problems(out, name, "duplicated", &c.duplicated);
    problems(out, name, "altered", &c.altered);
    problems(out, name, "extra", &c.extra);
    problems(out, name, "excused", &c.excused);
    if c.unreachable > 0 {
        let _ = writeln!(
            out,
            "  {name} not expected (sent while nobody was subscribed, before the platform could have been): {}",
            c.unreachable
        );
    }
}

fn markets(out: &mut String, m: &MarketCheck) {
    let _ = writeln!(
        out,
        "markets: {} known, {} with expected records, {} captured, not captured {}",
        m.known,
        m.active,
        m.active - m.not_captured.count,
        m.not_captured.count
    );
    problems(out, "markets", "not captured", &m.not_captured);
}

fn books(out: &mut String, b: &BookCheck) {
    let _ = writeln!(
        out,
        "books: {}/{} check points equal, mismatched {}, inside a gap of every gatherer {}, before the market's first snapshot {}",
        b.ok, b.expected, b.mismatched.count, b.in_gap.count, b.before_first_snapshot.count
    );
    problems(out, "books", "mismatched", &b.mismatched);
    problems(out, "books", "in gap", &b.in_gap);
    problems(
        out,
        "books",
        "before first snapshot",
        &b.before_first_snapshot,
    );
}

fn problems(out: &mut String, table: &str, kind: &str, p: &Problems) {
    for name in &p.first {
        let _ = writeln!(out, "  {table} {kind}: {name}");
    }
    if p.count > p.first.len() {
        let _ = writeln!(
            out,
            "  {table} {kind}: … and {} more",
            p.count - p.first.len()
        );
    }
}
