//! The audit page's tables: possible loss, book mismatches, redundancy, sanity.

use super::esc;
use crate::audit::report::{LevelDoc, Report};
use crate::verify::gaps::channel;
use std::fmt::Write as _;

/// An RFC 3339 time as a table shows it: `2026-12-03 09:06:22.234276`, on one line.
fn when(rfc: &str) -> String {
    format!(
        "<td class=\"t\">{}</td>",
        esc(rfc.replacen('T', " ", 1).trim_end_matches('Z'))
    )
}

/// A window's channels by the tables they fill (`all` for the four).
fn channels(list: &[String]) -> String {
    if list.len() >= crate::audit::coverage::CHANNELS.len() {
        return "all".into();
    }
    let name = |c: &str| {
        match c {
            channel::DELTA => "deltas + snapshots",
            channel::TRADE => "trades",
            channel::TICKER => "tickers",
            channel::LIFECYCLE => "lifecycle",
            other => other,
        }
        .to_string()
    };
    esc(&list.iter().map(|c| name(c)).collect::<Vec<_>>().join(", "))
}

/// The report's tables: possible loss, book mismatches, redundancy, sanity.
pub(super) fn tables(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<h2>Possible loss ({} windows)</h2><table id=\"possible-loss\"><tr><th>ticker</th><th>start</th><th>end</th>\
         <th>seconds</th><th>channels</th><th>reasons</th><th>repairs attempted</th><th>trades recovered (REST)</th><th>book re-snapshotted</th></tr>",
        r.possible_loss.len()
    );
    if r.possible_loss.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"9\">none</td></tr>");
    }
    for w in &r.possible_loss {
        let _ = writeln!(
            out,
            "<tr><td class=\"t\">{}</td>{}{}<td class=\"n\">{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>{}</tr>",
            esc(&w.ticker),
            when(&w.start),
            when(&w.end),
            w.seconds,
            channels(&w.channels),
            esc(&w.reasons.join(", ")),
            esc(&w.repaired.attempted.join(", ")),
            w.repaired.trades_recovered_rest,
            w.repaired
                .book_resnapshotted_at
                .as_deref()
                .map_or_else(|| "<td>—</td>".to_string(), when)
        );
    }
    let _ = writeln!(out, "</table>");
    let c = &r.book_continuity;
    let _ = writeln!(
        out,
        "<h2>Book continuity</h2><p>The book rebuilt from the stored deltas, compared with every later snapshot: \
         {} checked, {} agreed, {} mismatched, {} unchecked (a market's first), {} negative levels.</p>\
         <table id=\"mismatches\"><tr><th>ticker</th><th>at</th><th>source</th><th>after a possible loss</th><th>levels (rebuilt vs snapshot)</th></tr>",
        c.checked, c.agreed, c.mismatched, c.unchecked, c.negative_levels
    );
    if c.mismatches.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"5\">none</td></tr>");
    }
    for m in c.mismatches.iter().take(500) {
        let levels: Vec<String> = m.levels.iter().map(LevelDoc::describe).collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"t\">{}</td>{}<td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.ticker),
            when(&m.at),
            esc(&m.source),
            if m.after_possible_loss { "yes" } else { "no" },
            esc(&levels.join("; "))
        );
    }
    let _ = writeln!(out, "</table>");
    let d = &r.redundancy;
    let _ = writeln!(
        out,
        "<h2>Redundancy</h2><table id=\"redundancy\"><tr><th>single-cover windows</th><td class=\"n\">{}</td></tr>\
         <tr><th>single-cover seconds</th><td class=\"n\">{:.1}</td></tr><tr><th>records in the window</th><td class=\"n\">{}</td></tr>",
        d.single_cover_windows, d.single_cover_seconds, d.records
    );
    for (t, n) in &d.single_copy_records {
        let _ = writeln!(
            out,
            "<tr><th>only one gatherer had: {}</th><td class=\"n\">{n}</td></tr>",
            esc(t)
        );
    }
    let _ = writeln!(out, "</table>");
    let s = serde_json::to_value(&r.sanity).unwrap_or_default();
    let _ = writeln!(out, "<h2>Sanity</h2><table id=\"sanity\">");
    if let Some(map) = s.as_object() {
        for (k, v) in map {
            // The totals are counts of what was checked; every other figure should be 0.
            let total = matches!(k.as_str(), "trades" | "tickers" | "snapshots");
            let bad = !total && v.as_u64().is_some_and(|n| n > 0);
            let _ = writeln!(
                out,
                "<tr><th>{}</th><td class=\"n{}\">{v}</td></tr>",
                esc(&k.replace('_', " ")),
                if bad { " bad" } else { "" }
            );
        }
    }
    let _ = writeln!(out, "</table>");
}
