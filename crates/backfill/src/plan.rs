//! What a backfill covers, as pure arithmetic: the range cut into chunks and the watermark of
//! a market. Which endpoint holds which part of a chunk is the REST client's cutoff rule
//! ([`kd_kalshi::rest::cutoff`]), the same one the gatherer's repair follows.

use kd_core::TimestampUs;
use kd_core::backoff::BackoffPolicy;
use kd_kalshi::rest::TradeSpan;
use std::time::Duration;

/// Which markets to backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ticker(String),
    Event(String),
    Series(String),
    /// Every combo (multivariate) market: `GET /markets?mve_filter=only`.
    Combos,
}

/// One backfill: markets, time range and pace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillPlan {
    pub target: Target,
    /// First instant included.
    pub from: TimestampUs,
    /// First instant excluded.
    pub to: TimestampUs,
    /// Length of one resumable unit of work (a watermark step).
    pub chunk: Duration,
    /// Most REST requests per second (0: unpaced).
    pub requests_per_sec: u32,
    /// Trades per REST page (1..=1000).
    pub page_limit: u32,
    /// Backoff between REST retries when the server gives no `retry_after_ms` (DESIGN §6:
    /// 1 s → 5 min, [`BackoffPolicy::REGISTRY`]; tests shrink it).
    pub rest_backoff: BackoffPolicy,
}

/// How far behind "now" a watermark may be set: trades of the last minute may still be
/// arriving at the exchange's REST endpoint, so their chunk is fetched again next run.
pub const SETTLE: Duration = Duration::from_secs(60);

/// A half-open time range `[start, end)` in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub start: TimestampUs,
    pub end: TimestampUs,
}

impl Chunk {
    /// The query bounds in Unix seconds, both inclusive as Kalshi reads them: they cover the
    /// chunk and at most a second around it (records outside are filtered after parsing).
    pub fn query_secs(&self) -> (i64, i64) {
        let min = self.start.micros().div_euclid(1_000_000);
        let max = (self.end.micros() - 1).div_euclid(1_000_000);
        (min, max)
    }

    /// The chunk as an inclusive span (for the cutoff rule).
    pub fn span(&self) -> TradeSpan {
        TradeSpan {
            start: self.start,
            end: TimestampUs::from_micros(self.end.micros() - 1),
        }
    }

    /// Whether an exchange time falls in the chunk.
    pub fn contains(&self, ts: TimestampUs) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// The chunks of `[start, to)`, `len` long (the last one shorter).
pub fn chunks(start: TimestampUs, to: TimestampUs, len: Duration) -> Vec<Chunk> {
    let step = i64::try_from(len.as_micros()).unwrap_or(i64::MAX).max(1);
    let mut out = Vec::new();
    let mut a = start.micros();
    while a < to.micros() {
        let b = a.saturating_add(step).min(to.micros());
        out.push(Chunk {
            start: TimestampUs::from_micros(a),
            end: TimestampUs::from_micros(b),
        });
        a = b;
    }
    out
}

/// The production watermark of one market's backfill from `from`: the end of the last chunk
/// known complete. Tied to `from` so backfills of different ranges do not mix; a later run with
/// the same `--from` and a later `--to` continues where the previous one stopped.
pub fn watermark_name(ticker: &str, from: TimestampUs) -> String {
    format!("backfill:trades:{ticker}:{}", from.micros())
}

/// The watermark to store after completing `chunk`, never past `now − SETTLE`.
pub fn watermark_after(chunk: &Chunk, now: TimestampUs) -> TimestampUs {
    let settle = i64::try_from(SETTLE.as_micros()).unwrap_or(0);
    TimestampUs::from_micros(chunk.end.micros().min(now.micros() - settle))
}

/// The query bounds of an inclusive span in Unix seconds, both inclusive as Kalshi reads them.
pub fn span_secs(span: &TradeSpan) -> (i64, i64) {
    (
        span.start.micros().div_euclid(1_000_000),
        span.end.micros().div_euclid(1_000_000),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn chunks_cover_the_range_exactly() {
        let c = chunks(
            TimestampUs::from_micros(10 * S),
            TimestampUs::from_micros(35 * S),
            Duration::from_secs(10),
        );
        let bounds: Vec<(i64, i64)> = c
            .iter()
            .map(|c| (c.start.micros() / S, c.end.micros() / S))
            .collect();
        assert_eq!(bounds, vec![(10, 20), (20, 30), (30, 35)]);
        assert!(
            chunks(
                TimestampUs::from_micros(5),
                TimestampUs::from_micros(5),
                Duration::from_secs(1)
            )
            .is_empty()
        );
    }

    #[test]
    fn query_seconds_cover_the_chunk() {
        let c = Chunk {
            start: TimestampUs::from_micros(10 * S + 500),
            end: TimestampUs::from_micros(20 * S),
        };
        assert_eq!(c.query_secs(), (10, 19));
        let c = Chunk {
            start: TimestampUs::from_micros(10 * S),
            end: TimestampUs::from_micros(20 * S + 1),
        };
        assert_eq!(c.query_secs(), (10, 20));
        assert!(c.contains(TimestampUs::from_micros(20 * S)));
        assert!(!c.contains(TimestampUs::from_micros(20 * S + 1)));
    }

    #[test]
    fn the_watermark_stays_behind_now() {
        let c = Chunk {
            start: TimestampUs::from_micros(0),
            end: TimestampUs::from_micros(1_000 * S),
        };
        assert_eq!(
            watermark_after(&c, TimestampUs::from_micros(2_000 * S)).micros(),
            1_000 * S
        );
        assert_eq!(
            watermark_after(&c, TimestampUs::from_micros(1_030 * S)).micros(),
            970 * S
        );
    }

    #[test]
    fn a_chunk_span_reads_the_same_seconds() {
        let c = Chunk {
            start: TimestampUs::from_micros(10 * S + 500),
            end: TimestampUs::from_micros(20 * S),
        };
        assert_eq!(span_secs(&c.span()), c.query_secs());
        let c = Chunk {
            start: TimestampUs::from_micros(10 * S),
            end: TimestampUs::from_micros(20 * S + 1),
        };
        assert_eq!(span_secs(&c.span()), c.query_secs());
    }

    #[test]
    fn watermark_names_keep_ranges_apart() {
        assert_ne!(
            watermark_name("KX-A", TimestampUs::from_micros(1)),
            watermark_name("KX-A", TimestampUs::from_micros(2))
        );
    }
}
