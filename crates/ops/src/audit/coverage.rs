//! Who was covering what, from the gap records alone: per market and channel, how many
//! gatherers had a gap (a lost connection, a missing sequence, a snapshot standing in for
//! deltas, a downtime between two runs) at each instant. Where **every** gatherer had one, no
//! copy of a message sent then can exist anywhere — a possible loss; where all but one had
//! one, only that gatherer's copy exists — what the redundancy saved.
//!
//! A gap names a market or the whole feed (`ticker` empty) and a channel or every channel
//! (`all`), as `verify`'s [`crate::verify::gaps::covers`] reads them.

use crate::verify::gaps::channel;
use kd_core::{Gap, TimestampUs};
use std::collections::{BTreeMap, BTreeSet};

/// The channels a gap can hide, one per data table.
pub const CHANNELS: [&str; 4] = [
    channel::DELTA,
    channel::TRADE,
    channel::TICKER,
    channel::LIFECYCLE,
];

/// A window of one market where `depth` gatherers (of all of them) had a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub ticker: String,
    pub start: TimestampUs,
    pub end: TimestampUs,
    pub channels: BTreeSet<String>,
    /// Reasons of the gaps that make up the window (`downtime`, `disconnected`, `seq_gap`, …).
    pub reasons: BTreeSet<String>,
    /// Repairs the gatherers attempted (`rest_trades`, `snapshot`, `get_snapshot`, …).
    pub repairs: BTreeSet<String>,
}

/// Windows of every gatherer in a gap (possible loss) and of all but one (single cover).
#[derive(Debug, Clone, Default)]
pub struct Cover {
    pub uncovered: Vec<Window>,
    pub single: Vec<Window>,
}

/// Whether a gap concerns `ticker` on `chan`.
fn applies(gap: &Gap, ticker: &str, chan: &str) -> bool {
    let ticker_ok = gap.names(ticker);
    let chan_ok = matches!(gap.channel.as_str(), "" | "*" | "all") || gap.channel == chan;
    ticker_ok && chan_ok
}

/// Computes the windows of every market in `markets` within `[from, to]`.
pub fn cover(
    gatherers: &BTreeSet<String>,
    gaps: &[Gap],
    markets: &BTreeSet<String>,
    from: TimestampUs,
    to: TimestampUs,
) -> Cover {
    let n = gatherers.len();
    let mut out = Cover::default();
    if n == 0 {
        return out;
    }
    let mut by_ticker: BTreeMap<&str, Vec<&Gap>> = BTreeMap::new();
    let mut whole: Vec<&Gap> = Vec::new();
    for g in gaps.iter().filter(|g| g.end >= from && g.start <= to) {
        // A record per subscription names its markets in `tickers`: it is each one's own gap.
        if let Some(t) = &g.ticker {
            by_ticker.entry(t.as_str()).or_default().push(g);
        } else if g.whole_feed() {
            whole.push(g);
        } else {
            for t in &g.tickers {
                by_ticker.entry(t.as_str()).or_default().push(g);
            }
        }
    }
    for ticker in markets {
        let own = by_ticker
            .get(ticker.as_str())
            .map_or(&[][..], Vec::as_slice);
        let mut uncovered = Vec::new();
        let mut single = Vec::new();
        for chan in CHANNELS {
            let relevant: Vec<&Gap> = own
                .iter()
                .chain(whole.iter())
                .copied()
                .filter(|g| applies(g, ticker, chan))
                .collect();
            if relevant.is_empty() {
                continue;
            }
            for (depth, start, end) in depths(&relevant, n, from, to) {
                let target = if depth == n {
                    &mut uncovered
                } else if n >= 2 && depth == n - 1 {
                    &mut single
                } else {
                    continue;
                };
                let inside: Vec<&&Gap> = relevant
                    .iter()
                    .filter(|g| g.start <= end && g.end >= start)
                    .collect();
                target.push(Window {
                    ticker: ticker.clone(),
                    start,
                    end,
                    channels: BTreeSet::from([chan.to_string()]),
                    reasons: inside.iter().map(|g| g.reason.clone()).collect(),
                    repairs: inside
                        .iter()
                        .filter(|g| crate::verify::gaps::is_repaired(g))
                        .map(|g| g.repair.clone())
                        .collect(),
                });
            }
        }
        out.uncovered.extend(merge(uncovered));
        out.single.extend(merge(single));
    }
    out
}

/// Segments of `[from, to]` with the number of distinct gatherers in a gap (only depth ≥ 1),
/// adjacent segments of equal depth joined.
fn depths(
    gaps: &[&Gap],
    n: usize,
    from: TimestampUs,
    to: TimestampUs,
) -> Vec<(usize, TimestampUs, TimestampUs)> {
    // Each gatherer's own gaps merged first, so overlapping gaps of one gatherer count once.
    let mut per: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for g in gaps {
        let (s, e) = (g.start.max(from).micros(), g.end.min(to).micros());
        if s <= e {
            per.entry(g.gatherer.as_str()).or_default().push((s, e));
        }
    }
    // Boundary events: +1 at a start, −1 just after an end (windows are inclusive).
    let mut events: BTreeMap<i64, i64> = BTreeMap::new();
    for spans in per.values_mut() {
        for (s, e) in merge_spans(spans) {
            *events.entry(s).or_default() += 1;
            *events.entry(e.saturating_add(1)).or_default() -= 1;
        }
    }
    let mut out: Vec<(usize, TimestampUs, TimestampUs)> = Vec::new();
    let mut depth: i64 = 0;
    let points: Vec<(i64, i64)> = events.into_iter().collect();
    for (i, (t, change)) in points.iter().enumerate() {
        depth += change;
        let Some((next, _)) = points.get(i + 1) else {
            break;
        };
        let d = usize::try_from(depth).unwrap_or(0).min(n);
        if d == 0 {
            continue;
        }
        let (s, e) = (
            TimestampUs::from_micros(*t),
            TimestampUs::from_micros(next - 1),
        );
        match out.last_mut() {
            Some(last) if last.0 == d && last.2.micros() + 1 == *t => last.2 = e,
            _ => out.push((d, s, e)),
        }
    }
    out
}

fn merge_spans(spans: &mut [(i64, i64)]) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &(s, e) in spans.iter() {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// One market's windows of several channels, overlapping ones joined.
fn merge(mut windows: Vec<Window>) -> Vec<Window> {
    windows.sort_by_key(|w| (w.start, w.end));
    let mut out: Vec<Window> = Vec::new();
    for w in windows {
        match out.last_mut() {
            Some(last) if w.start <= last.end => {
                last.end = last.end.max(w.end);
                last.channels.extend(w.channels);
                last.reasons.extend(w.reasons);
                last.repairs.extend(w.repairs);
            }
            _ => out.push(w),
        }
    }
    out
}

/// Whether `ts` lies in one of `windows` (sorted by start, one market) for `chan`.
pub fn inside(windows: &[Window], chan: &str, ts: TimestampUs) -> bool {
    windows
        .iter()
        .any(|w| w.start <= ts && ts <= w.end && w.channels.contains(chan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(g: &str, ticker: Option<&str>, chan: &str, start: i64, end: i64) -> Gap {
        Gap {
            gatherer: g.into(),
            gap_id: format!("{g}-{start}"),
            ticker: ticker.map(Into::into),
            tickers: Vec::new(),
            channel: chan.into(),
            start: TimestampUs::from_micros(start),
            end: TimestampUs::from_micros(end),
            reason: "disconnected".into(),
            repair: "resubscribe".into(),
        }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn only_the_intersection_of_every_gatherer_is_uncovered() {
        let gaps = vec![
            gap("a", Some("M"), channel::DELTA, 10, 50),
            gap("b", None, "all", 30, 80),
            gap("c", Some("M"), channel::DELTA, 40, 60),
            // One gatherer overlapping itself counts once.
            gap("c", Some("M"), channel::DELTA, 45, 70),
        ];
        let c = cover(
            &set(&["a", "b", "c"]),
            &gaps,
            &set(&["M", "N"]),
            TimestampUs::from_micros(0),
            TimestampUs::from_micros(1_000),
        );
        assert_eq!(c.uncovered.len(), 1, "{c:?}");
        let w = &c.uncovered[0];
        assert_eq!(
            (w.ticker.as_str(), w.start.micros(), w.end.micros()),
            ("M", 40, 50)
        );
        assert_eq!(w.channels, set(&[channel::DELTA]));
        // Single cover: b and c without a: (50, 70]; a and b without c: [30, 40).
        let spans: Vec<(i64, i64)> = c
            .single
            .iter()
            .map(|w| (w.start.micros(), w.end.micros()))
            .collect();
        assert_eq!(spans, vec![(30, 39), (51, 70)], "{c:?}");
        // N: only b's whole-feed gap, so neither.
        assert!(c.uncovered.iter().chain(&c.single).all(|w| w.ticker == "M"));
    }

    #[test]
    fn a_record_per_subscription_counts_for_each_market_it_names() {
        let mut a = gap("a", None, channel::DELTA, 10, 50);
        a.tickers = vec!["M".into(), "N".into()];
        let mut b = gap("b", None, channel::DELTA, 20, 60);
        b.tickers = vec!["M".into()];
        let c = cover(
            &set(&["a", "b"]),
            &[a, b],
            &set(&["M", "N", "O"]),
            TimestampUs::from_micros(0),
            TimestampUs::from_micros(1_000),
        );
        let spans: Vec<(&str, i64, i64)> = c
            .uncovered
            .iter()
            .map(|w| (w.ticker.as_str(), w.start.micros(), w.end.micros()))
            .collect();
        assert_eq!(spans, vec![("M", 20, 50)], "{c:?}");
    }

    #[test]
    fn a_gatherer_without_gaps_covers_everything() {
        let gaps = vec![gap("a", None, "all", 0, 100), gap("b", None, "all", 0, 100)];
        let c = cover(
            &set(&["a", "b", "c"]),
            &gaps,
            &set(&["M"]),
            TimestampUs::from_micros(0),
            TimestampUs::from_micros(1_000),
        );
        assert!(c.uncovered.is_empty());
        assert_eq!(c.single.len(), 1);
    }
}
