//! `audit --html FILE`: the report as one self-contained page — inline CSS and SVG, no script
//! and no external resource, so it opens offline and can be mailed.
//!
//! Read top-down: the verdict and four figures (possible loss, book continuity, redundancy,
//! sanity); the coverage heat map (every market × time: green where two or more gatherers
//! covered, amber where only one did, red where none did — a possible loss), with a time axis;
//! exact timelines of the markets with a possible loss; then the tables.

mod tables;

use super::report::Report;
use kd_core::TimestampUs;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Time columns of the heat map.
const BINS: usize = 120;
/// Most markets drawn in the heat map (those with windows first).
const MAX_ROWS: usize = 200;
/// Width of the market labels and of one heat-map cell, height of a row (px).
const LABEL_W: usize = 230;
const CELL_W: usize = 7;
const ROW_H: usize = 13;
/// Colours: covered by two or more, by one only, by none.
const COVERED: &str = "#5cb85c";
const SINGLE: &str = "#f0ad4e";
const NONE: &str = "#d9342b";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn micros(rfc: &str) -> i64 {
    TimestampUs::parse_rfc3339(rfc).map_or(0, TimestampUs::micros)
}

/// `2026-12-03 08:40:12` (with the date) or `08:40:12`.
fn clock(us: i64, date: bool) -> String {
    let s = TimestampUs::from_micros(us).to_rfc3339_secs();
    let (day, time) = s.split_once('T').unwrap_or((&s, ""));
    let time = time.trim_end_matches('Z');
    if date {
        format!("{day} {time}")
    } else {
        time.to_string()
    }
}

/// An axis label: tenths of a second on a span under a minute, the date on one of a day or
/// more, else `08:40:12`.
fn tick(us: i64, span: i64) -> String {
    if span < 60_000_000 {
        let tenths = us.rem_euclid(1_000_000) / 100_000;
        format!("{}.{tenths}", clock(us, false))
    } else {
        clock(us, span >= 86_400_000_000)
    }
}

/// The period's ends: [`clock`], with tenths of a second on a span under a minute.
fn stamp(us: i64, span: i64, date: bool) -> String {
    if span < 60_000_000 {
        format!("{}.{}", clock(us, date), us.rem_euclid(1_000_000) / 100_000)
    } else {
        clock(us, date)
    }
}

/// `40 ms`, `25.0 s`, `4 min 10 s`, `3 h 5 min`, `2 d 4 h`.
fn duration(us: i64) -> String {
    let s = us.max(0) / 1_000_000;
    if s == 0 {
        return format!("{} ms", us.max(0) / 1_000);
    }
    match s {
        0..60 => format!("{:.1} s", us.max(0) as f64 / 1e6),
        60..3_600 => format!("{} min {} s", s / 60, s % 60),
        3_600..86_400 => format!("{} h {} min", s / 3_600, (s % 3_600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// `445.5` (one decimal, from exact µs).
fn secs(us: i64) -> String {
    format!("{:.1}", us as f64 / 1e6)
}

/// A window drawn: start µs, end µs, level (2 uncovered, 1 single cover).
type Span = (i64, i64, u8);

/// Per market: its spans.
fn spans(r: &Report) -> BTreeMap<String, Vec<Span>> {
    let mut m: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for w in &r.single_cover {
        m.entry(w.ticker.clone())
            .or_default()
            .push((w.start.micros(), w.end.micros(), 1));
    }
    for w in &r.possible_loss {
        m.entry(w.ticker.clone())
            .or_default()
            .push((w.start_us, w.end_us, 2));
    }
    m
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px 32px;color:#222;max-width:1300px}\
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:30px 0 6px}\
.meta{color:#555;margin:0 0 12px}\
#verdict{font-size:17px;padding:10px 14px;border-radius:6px;margin:10px 0 14px}\
#verdict.ok{background:#e6f4ea;color:#1a7f37;border:1px solid #a8d5b5}\
#verdict.bad{background:#fdecea;color:#b3261e;border:1px solid #f1b0aa}\
.cards{display:flex;flex-wrap:wrap;gap:12px}\
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;flex:1 1 0;min-width:200px}\
.card b{display:block;font-size:20px}.card.bad b{color:#b3261e}.card span{color:#555}\
.legend{display:flex;flex-wrap:wrap;gap:6px 22px;align-items:center;margin:6px 0 10px}\
.legend i{display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:-2px;border-radius:2px}\
.note{color:#555;font-size:13px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}td.t{white-space:nowrap;font-variant-numeric:tabular-nums}td.bad{color:#b3261e;font-weight:bold}\
svg text{font:11px ui-monospace,monospace;fill:#333}svg .tick{stroke:#999}svg .grid{stroke:#fff;stroke-opacity:.6}";

pub fn page(r: &Report) -> String {
    let (from, to) = (micros(&r.from), micros(&r.to));
    let span = (to - from).max(1);
    let by_market = spans(r);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>kalshi-data audit {} .. {}</title><style>{STYLE}</style></head><body>\n",
        esc(&r.from),
        esc(&r.to)
    );
    header(&mut out, r, from, to);
    heatmap(&mut out, r, &by_market, from, span);
    timelines(&mut out, &by_market, from, span);
    tables::tables(&mut out, r);
    let _ = writeln!(out, "</body></html>");
    out
}

/// Title, period, verdict and the four figures.
fn header(out: &mut String, r: &Report, from: i64, to: i64) {
    let ok = r.verdict == "OK";
    let _ = writeln!(
        out,
        "<h1>kalshi-data audit</h1><p class=\"meta\">{} → {} UTC ({}) · {} gatherer(s): {} · {} markets</p>",
        stamp(from, to - from, true),
        stamp(to, to - from, to / 86_400_000_000 != from / 86_400_000_000),
        duration(to - from),
        r.gatherers.len(),
        esc(&r.gatherers.join(", ")),
        r.markets
    );
    let say = if ok {
        "audit: OK — every market was covered by at least one gatherer, and every book rebuilt \
         from the stored deltas agrees with its later snapshots"
            .to_string()
    } else {
        format!("audit: {}", esc(&r.verdict))
    };
    let mut why = Vec::new();
    if !r.possible_loss.is_empty() {
        let markets: std::collections::BTreeSet<&str> =
            r.possible_loss.iter().map(|w| w.ticker.as_str()).collect();
        why.push(format!(
            "{} window(s) in {} market(s) where no gatherer was covering (red below): what the \
             exchange sent then may be missing from the data",
            r.possible_loss.len(),
            markets.len()
        ));
    }
    let c = &r.book_continuity;
    if c.mismatched > 0 {
        let after = c
            .mismatches
            .iter()
            .filter(|m| m.after_possible_loss)
            .count();
        why.push(format!(
            "{} snapshot(s) disagree with the book rebuilt from the stored deltas ({after} of \
             them within 60 s after a possible loss)",
            c.mismatched
        ));
    }
    let why = if why.is_empty() {
        String::new()
    } else {
        format!("<br>{}.", esc(&why.join("; ")))
    };
    let _ = writeln!(
        out,
        "<p id=\"verdict\" class=\"{}\"><b>{say}</b>{why}</p>",
        if ok { "ok" } else { "bad" }
    );
    let lost_us: i64 = r
        .possible_loss
        .iter()
        .map(|w| w.end_us.saturating_sub(w.start_us))
        .sum();
    let longest_us = r
        .possible_loss
        .iter()
        .map(|w| w.end_us.saturating_sub(w.start_us))
        .max()
        .unwrap_or(0);
    let d = &r.redundancy;
    let single_us: i64 = r
        .single_cover
        .iter()
        .map(|w| w.end.micros().saturating_sub(w.start.micros()))
        .sum();
    let s = &r.sanity;
    let odd = s.trade_price_out_of_range
        + s.trade_prices_not_one_dollar
        + s.trade_count_not_positive
        + s.duplicate_trade_ids
        + s.ticker_bid_above_ask
        + s.ticker_negative_totals
        + s.snapshot_levels_not_positive;
    let card = |out: &mut String, bad: bool, title: &str, big: String, small: String| {
        let _ = write!(
            out,
            "<div class=\"card{}\"><span>{title}</span><b>{big}</b><span>{small}</span></div>",
            if bad { " bad" } else { "" }
        );
    };
    out.push_str("<div class=\"cards\">");
    card(
        out,
        !r.possible_loss.is_empty(),
        "Possible loss (no gatherer covering)",
        format!("{} window(s)", r.possible_loss.len()),
        if r.possible_loss.is_empty() {
            "nothing can be missing".into()
        } else {
            format!(
                "longest {}; {} market-seconds in all",
                duration(longest_us),
                secs(lost_us)
            )
        },
    );
    card(
        out,
        c.mismatched > 0,
        "Book continuity",
        format!("{} mismatched", c.mismatched),
        format!("of {} snapshots checked ({} agreed)", c.checked, c.agreed),
    );
    card(
        out,
        false,
        "Redundancy saved",
        format!(
            "{} record(s)",
            d.single_copy_records.values().sum::<usize>()
        ),
        format!(
            "only one gatherer had them: {} single-cover window(s), {} market-seconds",
            d.single_cover_windows,
            secs(single_us)
        ),
    );
    card(
        out,
        odd > 0,
        "Sanity",
        format!("{odd} odd value(s)"),
        format!(
            "in {} trades, {} tickers, {} snapshots",
            s.trades, s.tickers, s.snapshots
        ),
    );
    out.push_str("</div>\n");
}

/// Tick marks and labels of a time axis along `[x0, x0 + width]` at height `y`.
fn axis(out: &mut String, x0: usize, width: usize, y: usize, from: i64, span: i64) {
    const TICKS: i64 = 6;
    for i in 0..=TICKS {
        let x = x0 + (width as i64 * i / TICKS) as usize;
        let anchor = match i {
            0 => "start",
            TICKS => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{x}\" y1=\"{y}\" x2=\"{x}\" y2=\"{}\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            y + 4,
            y + 16,
            tick(from + span * i / TICKS, span)
        );
    }
    out.push('\n');
}

/// Every market × time, markets with a window first (at most [`MAX_ROWS`]).
fn heatmap(
    out: &mut String,
    r: &Report,
    by_market: &BTreeMap<String, Vec<Span>>,
    from: i64,
    span: i64,
) {
    let n = r.gatherers.len();
    let covered = if n >= 2 {
        format!("covered by 2 or more of the {n} gatherers")
    } else {
        "covered".to_string()
    };
    let _ = writeln!(
        out,
        "<h2>Coverage: markets × time</h2><div class=\"legend\">\
         <span><i style=\"background:{COVERED}\"></i>{covered}</span>\
         <span><i style=\"background:{SINGLE}\"></i>one gatherer only</span>\
         <span><i style=\"background:{NONE}\"></i>no gatherer: possible loss</span></div>\
         <p class=\"note\">A row per market, a column per slice of time. Red: every gatherer had a \
         gap there (a lost connection, a sequence gap, a snapshot standing in for deltas, a \
         downtime), so what the exchange sent then may be missing. Amber: a single gatherer was \
         covering; the data exists, but only once.</p>"
    );
    let mut rows: Vec<&str> = by_market.keys().map(String::as_str).collect();
    rows.extend(
        r.market_names
            .iter()
            .map(String::as_str)
            .filter(|m| !by_market.contains_key(*m)),
    );
    let total = rows.len();
    rows.truncate(MAX_ROWS);
    let plot_w = BINS * CELL_W;
    let axis_y = rows.len().max(1) * ROW_H + 4;
    let _ = writeln!(
        out,
        "<svg id=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
        LABEL_W + plot_w + 40,
        axis_y + 22
    );
    for (i, ticker) in rows.iter().enumerate() {
        let y = i * ROW_H;
        let label: String = if ticker.chars().count() > 32 {
            ticker.chars().take(31).collect::<String>() + "…"
        } else {
            (*ticker).to_string()
        };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>\
             <rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{plot_w}\" height=\"{}\" fill=\"{COVERED}\"/>",
            LABEL_W - 6,
            y + ROW_H - 3,
            esc(ticker),
            esc(&label),
            ROW_H - 1
        );
        let windows = by_market.get(*ticker).map_or(&[][..], Vec::as_slice);
        let level = |b: usize| {
            let lo = from + span * b as i64 / BINS as i64;
            let hi = from + span * (b as i64 + 1) / BINS as i64;
            windows
                .iter()
                // The column is [lo, hi); a window is inclusive at both ends.
                .filter(|(s, e, _)| *s < hi && *e >= lo)
                .map(|(_, _, l)| *l)
                .max()
                .unwrap_or(0)
        };
        // Runs of equal columns are one rectangle with one tooltip (a page of thousands of
        // cells, each with its title, was half a megabyte for 30 markets).
        let mut b = 0;
        while b < BINS {
            let l = level(b);
            let mut end = b + 1;
            while end < BINS && level(end) == l {
                end += 1;
            }
            if l > 0 {
                let (fill, what) = if l == 2 {
                    (NONE, "no gatherer")
                } else {
                    (SINGLE, "one gatherer only")
                };
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\">\
                     <title>{} {}–{}: {what}</title></rect>",
                    LABEL_W + b * CELL_W,
                    (end - b) * CELL_W,
                    ROW_H - 1,
                    esc(ticker),
                    tick(from + span * b as i64 / BINS as i64, span),
                    tick(from + span * end as i64 / BINS as i64, span)
                );
            }
            b = end;
        }
        out.push('\n');
    }
    axis(out, LABEL_W, plot_w, axis_y, from, span);
    out.push_str("</svg>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">{} of {total} markets drawn{}; one column is {}.</p>",
        rows.len(),
        if by_market.is_empty() {
            ", none with a window".to_string()
        } else {
            format!(", the {} with a window first", by_market.len())
        },
        duration(span / BINS as i64)
    );
}

/// One exact bar per market with a possible-loss window, on the heat map's time axis.
fn timelines(out: &mut String, by_market: &BTreeMap<String, Vec<Span>>, from: i64, span: i64) {
    let lossy: Vec<(&String, &Vec<Span>)> = by_market
        .iter()
        .filter(|(_, w)| w.iter().any(|(_, _, l)| *l == 2))
        .take(MAX_ROWS)
        .collect();
    let _ = writeln!(out, "<h2>Timelines of markets with a possible loss</h2>");
    if lossy.is_empty() {
        let _ = writeln!(
            out,
            "<p>None: no window where no gatherer covered a market.</p>"
        );
        return;
    }
    let plot_w = BINS * CELL_W;
    let row = 20;
    let axis_y = lossy.len() * row + 4;
    let _ = writeln!(
        out,
        "<svg id=\"timelines\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
        LABEL_W + plot_w + 40,
        axis_y + 22
    );
    let x_of =
        |t: i64| LABEL_W as f64 + (t - from).clamp(0, span) as f64 / span as f64 * plot_w as f64;
    for (i, (ticker, windows)) in lossy.iter().enumerate() {
        let y = i * row;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL_W}\" y=\"{}\" width=\"{plot_w}\" height=\"12\" fill=\"{COVERED}\"/>",
            LABEL_W - 6,
            y + 13,
            esc(ticker),
            y + 3
        );
        for (s, e, l) in windows.iter() {
            let (fill, what) = if *l == 2 {
                (NONE, "no gatherer")
            } else {
                (SINGLE, "one gatherer only")
            };
            let x = x_of(*s);
            let w = (x_of(*e) - x).max(2.0);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{}\" width=\"{w:.1}\" height=\"12\" fill=\"{fill}\">\
                 <title>{} .. {} ({}): {what}</title></rect>",
                y + 3,
                clock(*s, false),
                clock(*e, false),
                duration(e - s)
            );
        }
        out.push('\n');
    }
    axis(out, LABEL_W, plot_w, axis_y, from, span);
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests;
