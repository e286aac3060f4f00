//! The historical cutoff rule: which trades endpoint holds which part of a time window.
//!
//! Kalshi serves a trade created before `GET /historical/cutoff`'s `trades_created_ts` only on
//! `GET /historical/trades`, any later one only on `GET /markets/trades` (WIRE.md "2026
//! changes"), and the cutoff advances while we read. A window `[start, end]` is read as:
//!
//! 1. with a cutoff `c0` (cached is fine: an older cutoff is smaller, which only widens this
//!    part), the **live** part `[max(start, c0 − overlap), end]` from `/markets/trades`, when
//!    the window reaches that far;
//! 2. then, with a cutoff `c1` fetched **after** the live read, the **historical** part
//!    `[start, min(end, c1 + overlap)]` from `/historical/trades`, when the window starts
//!    before it.
//!
//! Every trade the live read did not see was older than the cutoff at the moment it was read,
//! so older than `c1`, so served by `/historical/trades` by then: none falls between, however
//! far the cutoff moved meanwhile (even within one paginated read). The overlap absorbs the
//! second granularity of `min_ts`/`max_ts` and any disagreement about the boundary instant;
//! trades read twice are one trade by `trade_id`. An unknown cutoff (an error, a server without
//! the endpoint) reads the whole window from both.

use kd_core::TimestampUs;
use std::time::Duration;

/// Overlap of the two parts around the cutoff: a few seconds is ample for a boundary stated
/// to the second and read in whole seconds, and costs only those seconds' trades twice.
pub const CUTOFF_OVERLAP: Duration = Duration::from_secs(10);

/// An inclusive time range of trades to read from one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeSpan {
    pub start: TimestampUs,
    pub end: TimestampUs,
}

fn overlap_us(overlap: Duration) -> i64 {
    i64::try_from(overlap.as_micros()).unwrap_or(i64::MAX)
}

/// The part of `[start, end]` to read from `/markets/trades` given the cutoff `c0` (step 1).
pub fn live_span(
    start: TimestampUs,
    end: TimestampUs,
    cutoff: Option<TimestampUs>,
    overlap: Duration,
) -> Option<TradeSpan> {
    if end < start {
        return None;
    }
    let Some(c) = cutoff else {
        return Some(TradeSpan { start, end });
    };
    let from = c.micros().saturating_sub(overlap_us(overlap));
    (end.micros() >= from).then(|| TradeSpan {
        start: TimestampUs::from_micros(start.micros().max(from)),
        end,
    })
}

/// The part of `[start, end]` to read from `/historical/trades` given the cutoff `c1` fetched
/// after the live read (step 2).
pub fn historical_span(
    start: TimestampUs,
    end: TimestampUs,
    cutoff: Option<TimestampUs>,
    overlap: Duration,
) -> Option<TradeSpan> {
    if end < start {
        return None;
    }
    let Some(c) = cutoff else {
        return Some(TradeSpan { start, end });
    };
    let to = c.micros().saturating_add(overlap_us(overlap));
    (start.micros() < to).then(|| TradeSpan {
        start,
        end: TimestampUs::from_micros(end.micros().min(to)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const O: Duration = Duration::from_secs(10);

    fn t(s: i64) -> TimestampUs {
        TimestampUs::from_micros(s * S)
    }

    fn secs(span: Option<TradeSpan>) -> Option<(i64, i64)> {
        span.map(|s| (s.start.micros() / S, s.end.micros() / S))
    }

    #[test]
    fn window_entirely_before_the_cutoff_is_historical_only() {
        let c = Some(t(1_000));
        assert_eq!(secs(live_span(t(100), t(200), c, O)), None);
        assert_eq!(
            secs(historical_span(t(100), t(200), c, O)),
            Some((100, 200))
        );
    }

    #[test]
    fn window_entirely_after_the_cutoff_is_live_only() {
        let c = Some(t(1_000));
        assert_eq!(
            secs(live_span(t(2_000), t(2_100), c, O)),
            Some((2_000, 2_100))
        );
        assert_eq!(secs(historical_span(t(2_000), t(2_100), c, O)), None);
    }

    #[test]
    fn window_straddling_the_cutoff_is_split_with_an_overlap() {
        let c = Some(t(1_000));
        assert_eq!(secs(live_span(t(900), t(1_100), c, O)), Some((990, 1_100)));
        assert_eq!(
            secs(historical_span(t(900), t(1_100), c, O)),
            Some((900, 1_010))
        );
        // Just inside the overlap on either side: both endpoints are read.
        assert_eq!(secs(live_span(t(900), t(995), c, O)), Some((990, 995)));
        assert_eq!(
            secs(historical_span(t(1_005), t(1_100), c, O)),
            Some((1_005, 1_010))
        );
    }

    #[test]
    fn the_cutoff_moving_between_the_reads_is_covered() {
        // The live read used c0 = 1000; by the time it finished the cutoff was 1030, so trades
        // of [990, 1030) may have left /markets/trades during the read: the historical part,
        // cut by c1, covers them.
        let (c0, c1) = (Some(t(1_000)), Some(t(1_030)));
        let live = live_span(t(900), t(1_100), c0, O);
        let hist = historical_span(t(900), t(1_100), c1, O);
        assert_eq!(secs(live), Some((990, 1_100)));
        assert_eq!(secs(hist), Some((900, 1_040)));
        // A window the cutoff overtook entirely while it was read live.
        let live = live_span(t(1_010), t(1_020), c0, O);
        let hist = historical_span(t(1_010), t(1_020), c1, O);
        assert_eq!(secs(live), Some((1_010, 1_020)));
        assert_eq!(secs(hist), Some((1_010, 1_020)));
    }

    #[test]
    fn every_instant_of_the_window_is_read_somewhere() {
        let (c0, c1) = (t(1_000), t(1_003));
        for (a, b) in [
            (0, 500),
            (985, 1_015),
            (995, 1_005),
            (1_020, 1_500),
            (0, 2_000),
        ] {
            let live = live_span(t(a), t(b), Some(c0), O);
            let hist = historical_span(t(a), t(b), Some(c1), O);
            for s in a..=b {
                // A trade in [c0, c1) may have been on either endpoint when each was read, so
                // both must cover it; one older than c0 needs the historical read, one newer
                // than c1 the live read.
                let in_live = live.is_some_and(|l| l.start <= t(s) && t(s) <= l.end);
                let in_hist = hist.is_some_and(|h| h.start <= t(s) && t(s) <= h.end);
                assert!(t(s) < c0 || in_live, "{s} of [{a}, {b}] not read live");
                assert!(
                    t(s) >= c1 || in_hist,
                    "{s} of [{a}, {b}] not read historical"
                );
            }
        }
    }

    #[test]
    fn unknown_cutoff_reads_both_and_empty_windows_nothing() {
        assert_eq!(secs(live_span(t(1), t(2), None, O)), Some((1, 2)));
        assert_eq!(secs(historical_span(t(1), t(2), None, O)), Some((1, 2)));
        assert_eq!(live_span(t(2), t(1), None, O), None);
        assert_eq!(historical_span(t(2), t(1), Some(t(5)), O), None);
    }
}
