//! The one-screen text form of a [`StatusReport`].

use super::model::StatusReport;
use std::fmt::Write as _;

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn bytes(b: Option<u64>) -> String {
    match b {
        None => "-".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1}G", b as f64 / f64::from(1_u32 << 30)),
        Some(b) if b >= 1 << 20 => format!("{:.1}M", b as f64 / f64::from(1_u32 << 20)),
        Some(b) => format!("{}K", b / 1024),
    }
}

pub fn render(r: &StatusReport) -> String {
    let mut out = String::new();
    let sup = match r.supervisor_running {
        Some(true) => " (supervisor running)",
        Some(false) => " (supervisor NOT running)",
        None => "",
    };
    let _ = writeln!(out, "deployment: {}{sup}", r.source);
    let _ = writeln!(
        out,
        "{:<12} {:<11} {:>7} {:>5} {:>7} {:>8} {:>9} {:>9} {:>7} {:>5} {:>4}",
        "GATHERER",
        "STATE",
        "PID",
        "CONN",
        "MARKETS",
        "MSG/S",
        "LAST MSG",
        "BACKLOG",
        "DISK",
        "DISK%",
        "RST"
    );
    for g in &r.gatherers {
        let _ = writeln!(
            out,
            "{:<12} {:<11} {:>7} {:>5} {:>7} {:>8} {:>9} {:>9} {:>7} {:>5} {:>4}",
            g.id,
            if g.healthy {
                format!("up/{}", g.status)
            } else {
                format!("DOWN/{}", g.status)
            },
            opt(g.pid),
            match (g.connections_up, g.connections_total) {
                (Some(u), Some(t)) => format!("{u}/{t}"),
                _ => "-".into(),
            },
            opt(g.markets),
            g.messages_per_sec.map_or("-".into(), |r| format!("{r:.0}")),
            g.last_message_age_ms
                .map_or("-".into(), |a| format!("{:.1}s", a as f64 / 1000.0)),
            opt(g.store_depth),
            bytes(g.disk_bytes),
            opt(g.disk_used_pct),
            opt(g.restarts),
        );
    }
    for s in [&r.sim, &r.dedup, &r.exporter].into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<12} {:<11} pid {:>7}  {}{}",
            s.name,
            if s.up { "up" } else { "DOWN" },
            opt(s.pid),
            s.url,
            s.restarts
                .map_or(String::new(), |n| format!("  restarts {n}"))
        );
        if let Some(c) = s.production_connected {
            let _ = writeln!(out, "    production connected: {c}");
        }
        if let Some(a) = &s.archive {
            let _ = match (&a.newest, a.age_seconds) {
                (Some(t), Some(age)) => writeln!(
                    out,
                    "    archive: newest data up to {t}, {} old",
                    age_text(age)
                ),
                _ => writeln!(
                    out,
                    "    archive: nothing archived yet (the first window is exported after it ends plus the settle delay)"
                ),
            };
        }
        let mut lags = s.lag.clone();
        lags.sort_by(|a, b| (&a.gatherer, &a.table).cmp(&(&b.gatherer, &b.table)));
        if !lags.is_empty() {
            let parts: Vec<String> = lags
                .iter()
                .filter(|l| l.seconds > 0.0 || lags.len() <= 12)
                .map(|l| {
                    format!(
                        "{}{}={:.1}s",
                        l.gatherer
                            .as_deref()
                            .map_or(String::new(), |g| format!("{g}/")),
                        l.table.as_deref().unwrap_or("all"),
                        l.seconds
                    )
                })
                .collect();
            let worst = lags.iter().map(|l| l.seconds).fold(0.0_f64, f64::max);
            let _ = writeln!(out, "    lag (worst {worst:.1}s): {}", parts.join(" "));
        }
    }
    if let Some(p) = &r.production {
        if p.reachable {
            let rows: Vec<String> = p.rows.iter().map(|(t, n)| format!("{t}={n}")).collect();
            let _ = writeln!(out, "production {}  {}", p.url, rows.join(" "));
        } else {
            let _ = writeln!(
                out,
                "production {}  UNREACHABLE: {}",
                p.url,
                p.error.as_deref().unwrap_or("?")
            );
        }
    }
    if r.alerts.is_empty() {
        let _ = writeln!(out, "alerts: none would fire");
    } else {
        for a in &r.alerts {
            let _ = writeln!(out, "ALERT {} {}: {}", a.severity, a.name, a.detail);
        }
    }
    out
}

/// `42s`, `3m05s`, `2h07m`, `3d04h`.
fn age_text(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}
