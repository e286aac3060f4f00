//! `audit --html FILE`: the report as one self-contained page — inline CSS and SVG, no script
//! and no external resource, so it opens offline and can be mailed. A coverage heat map
//! (markets × time: red where no gatherer covered, amber where only one did), a timeline per
//! market with a window, and the report's tables.

use super::report::Report;
use kd_core::TimestampUs;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Time columns of the heat map.
const BINS: usize = 96;
/// Most markets drawn in the heat map (those with windows first).
const MAX_ROWS: usize = 200;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn micros(rfc: &str) -> i64 {
    TimestampUs::parse_rfc3339(rfc).map_or(0, TimestampUs::micros)
}

/// Per market: spans (start µs, end µs, level) — level 2 uncovered, 1 single cover.
fn spans(r: &Report) -> BTreeMap<String, Vec<(i64, i64, u8)>> {
    let mut m: BTreeMap<String, Vec<(i64, i64, u8)>> = BTreeMap::new();
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

pub fn page(r: &Report) -> String {
    let (from, to) = (micros(&r.from), micros(&r.to));
    let span = (to - from).max(1);
    let by_market = spans(r);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>kalshi-data audit {from_s} .. {to_s}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}\
         h1{{font-size:20px}}h2{{font-size:16px;margin-top:28px}}\
         table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         th{{background:#f3f3f3}}.ok{{color:#1a7f37}}.bad{{color:#c62828}}\
         .legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}\
         svg text{{font:11px monospace}}</style></head><body>\n",
        from_s = esc(&r.from),
        to_s = esc(&r.to)
    );
    let cls = if r.verdict == "OK" { "ok" } else { "bad" };
    let _ = writeln!(
        out,
        "<h1>kalshi-data audit</h1><p>{} .. {} · {} gatherers ({}) · {} markets</p>\
         <p id=\"verdict\" class=\"{cls}\"><b>audit: {}</b></p>",
        esc(&r.from),
        esc(&r.to),
        r.gatherers.len(),
        esc(&r.gatherers.join(", ")),
        r.markets,
        esc(&r.verdict)
    );

    // Heat map: markets with windows first, then the rest, at most MAX_ROWS.
    let _ = writeln!(
        out,
        "<h2>Coverage</h2><p class=\"legend\">markets × time<span style=\"background:#4caf50\"></span>every gatherer or all but one … \
         <span style=\"background:#ffb300\"></span>one gatherer only<span style=\"background:#d32f2f\"></span>no gatherer (possible loss)</p>"
    );
    let mut rows: Vec<&String> = by_market.keys().collect();
    rows.truncate(MAX_ROWS);
    let (label_w, cell_w, cell_h) = (180usize, 8usize, 12usize);
    let width = label_w + BINS * cell_w + 10;
    let height = (rows.len().max(1)) * cell_h + 24;
    let _ = writeln!(
        out,
        "<svg id=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">"
    );
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "<rect x=\"{label_w}\" y=\"0\" width=\"{}\" height=\"{cell_h}\" fill=\"#4caf50\"/>\
             <text x=\"0\" y=\"10\">every market</text>",
            BINS * cell_w
        );
    }
    for (i, ticker) in rows.iter().enumerate() {
        let y = i * cell_h;
        let _ = writeln!(out, "<text x=\"0\" y=\"{}\">{}</text>", y + 10, esc(ticker));
        let windows = by_market.get(*ticker).map_or(&[][..], Vec::as_slice);
        for b in 0..BINS {
            let b_lo = from + span * b as i64 / BINS as i64;
            let b_hi = from + span * (b as i64 + 1) / BINS as i64;
            let level = windows
                .iter()
                .filter(|(s, e, _)| *s <= b_hi && *e >= b_lo)
                .map(|(_, _, l)| *l)
                .max()
                .unwrap_or(0);
            let fill = ["#4caf50", "#ffb300", "#d32f2f"][usize::from(level)];
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/>",
                label_w + b * cell_w,
                cell_w - 1,
                cell_h - 1
            );
        }
        out.push('\n');
    }
    let axis_y = height - 6;
    let _ = writeln!(
        out,
        "<text x=\"{label_w}\" y=\"{axis_y}\">{}</text><text x=\"{}\" y=\"{axis_y}\" text-anchor=\"end\">{}</text></svg>",
        esc(&r.from),
        label_w + BINS * cell_w,
        esc(&r.to)
    );

    // Timelines: one bar per market with a possible-loss window.
    let _ = writeln!(out, "<h2>Timelines of markets with a possible loss</h2>");
    let lossy: Vec<&String> = by_market
        .iter()
        .filter(|(_, w)| w.iter().any(|(_, _, l)| *l == 2))
        .map(|(t, _)| t)
        .collect();
    if lossy.is_empty() {
        let _ = writeln!(out, "<p>none</p>");
    }
    for ticker in lossy.iter().take(MAX_ROWS) {
        let bar_w = 800.0;
        let _ = write!(
            out,
            "<div class=\"timeline\"><b>{}</b><br><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"820\" height=\"22\">\
             <rect x=\"0\" y=\"4\" width=\"{bar_w}\" height=\"14\" fill=\"#4caf50\"/>",
            esc(ticker)
        );
        for (s, e, l) in by_market.get(*ticker).map_or(&[][..], Vec::as_slice) {
            let x = (s - from).max(0) as f64 / span as f64 * bar_w;
            let w = (((e - s).max(0)) as f64 / span as f64 * bar_w).max(1.5);
            let fill = if *l == 2 { "#d32f2f" } else { "#ffb300" };
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"4\" width=\"{w:.1}\" height=\"14\" fill=\"{fill}\"/>"
            );
        }
        let _ = writeln!(out, "</svg></div>");
    }

    // Tables.
    let _ = writeln!(
        out,
        "<h2>Possible loss ({} windows)</h2><table id=\"possible-loss\"><tr><th>ticker</th><th>start</th><th>end</th>\
         <th>seconds</th><th>channels</th><th>reasons</th><th>repairs attempted</th><th>trades recovered (REST)</th><th>book re-snapshotted</th></tr>",
        r.possible_loss.len()
    );
    for w in &r.possible_loss {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&w.ticker),
            esc(&w.start),
            esc(&w.end),
            w.seconds,
            esc(&w.channels.join(", ")),
            esc(&w.reasons.join(", ")),
            esc(&w.repaired.attempted.join(", ")),
            w.repaired.trades_recovered_rest,
            esc(w.repaired.book_resnapshotted_at.as_deref().unwrap_or("—"))
        );
    }
    let _ = writeln!(out, "</table>");
    let c = &r.book_continuity;
    let _ = writeln!(
        out,
        "<h2>Book continuity</h2><p>{} snapshots checked, {} agreed, {} mismatched, {} unchecked, {} negative levels</p>\
         <table id=\"mismatches\"><tr><th>ticker</th><th>at</th><th>source</th><th>after a possible loss</th><th>levels (rebuilt vs snapshot)</th></tr>",
        c.checked, c.agreed, c.mismatched, c.unchecked, c.negative_levels
    );
    for m in c.mismatches.iter().take(500) {
        let levels: Vec<String> = m
            .levels
            .iter()
            .map(super::report::LevelDoc::describe)
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.ticker),
            esc(&m.at),
            esc(&m.source),
            if m.after_possible_loss { "yes" } else { "no" },
            esc(&levels.join("; "))
        );
    }
    let _ = writeln!(out, "</table>");
    let d = &r.redundancy;
    let _ = writeln!(
        out,
        "<h2>Redundancy</h2><table id=\"redundancy\"><tr><th>single-cover windows</th><td>{}</td></tr>\
         <tr><th>single-cover seconds</th><td>{:.1}</td></tr><tr><th>records</th><td>{}</td></tr>",
        d.single_cover_windows, d.single_cover_seconds, d.records
    );
    for (t, n) in &d.single_copy_records {
        let _ = writeln!(
            out,
            "<tr><th>only one gatherer had: {}</th><td>{n}</td></tr>",
            esc(t)
        );
    }
    let _ = writeln!(out, "</table>");
    let s = serde_json::to_value(&r.sanity).unwrap_or_default();
    let _ = writeln!(out, "<h2>Sanity</h2><table id=\"sanity\">");
    if let Some(map) = s.as_object() {
        for (k, v) in map {
            let _ = writeln!(out, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
        }
    }
    let _ = writeln!(out, "</table></body></html>");
    out
}
