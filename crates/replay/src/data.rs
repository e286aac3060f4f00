//! What a replay serves: every stored message of the range as one timeline in exchange-time
//! order, the books at any instant of it, and the windows no gatherer covered.
//!
//! The timeline is computed once at start and shared by every connection (each connection only
//! keeps a cursor into it), so N clients cost one copy of the data.

use kd_core::book::{Book, MarketHistory, histories};
use kd_core::{Gap, Lifecycle, OrderbookDelta, SnapshotSource, Ticker, TimestampUs, Trade};
use kd_production::MarketRow;
use std::collections::BTreeMap;

/// One message of the timeline.
#[derive(Debug, Clone)]
pub enum Event {
    Delta(OrderbookDelta),
    Trade(Trade),
    Ticker(Ticker),
    Lifecycle(Lifecycle),
    /// A stored WebSocket snapshot that disagrees with the book the replayed deltas built
    /// (production missed or had extra deltas before it): sent as an `orderbook_snapshot`, which
    /// a Kalshi client takes as a reset, so the replayed book follows what production holds.
    Resync {
        ticker: String,
        book: Book,
    },
    /// Start of a window no gatherer covered ([`uncovered`]).
    Uncovered {
        start: TimestampUs,
        end: TimestampUs,
    },
}

impl Event {
    /// The market the message is about (`None`: not per market).
    pub fn market(&self) -> Option<&str> {
        match self {
            Event::Delta(d) => Some(&d.ticker),
            Event::Trade(t) => Some(&t.ticker),
            Event::Ticker(t) => Some(&t.ticker),
            Event::Lifecycle(l) => Some(&l.subject),
            Event::Resync { ticker, .. } => Some(ticker),
            Event::Uncovered { .. } => None,
        }
    }
}

/// The replayed range, ready to serve.
pub struct Dataset {
    pub from: TimestampUs,
    pub to: TimestampUs,
    /// `(exchange_ts, event)`, sorted by time; events of one instant keep a fixed order.
    pub timeline: Vec<(TimestampUs, Event)>,
    /// Snapshots and deltas per market up to `to`, for books at any instant.
    pub books: BTreeMap<String, MarketHistory>,
    /// Every trade of the range, by time (REST `/markets/trades`).
    pub trades: Vec<Trade>,
    pub markets: Vec<MarketRow>,
    /// Windows no gatherer covered, sorted.
    pub uncovered: Vec<(TimestampUs, TimestampUs)>,
    /// Gatherers production was fed by.
    pub gatherers: Vec<String>,
}

pub use crate::source::{DataError, Loaded, Source};

impl Dataset {
    /// Reads `[from, to]` from `source` (snapshots and deltas from before `from` too, so
    /// books at `from` can be rebuilt) and builds the timeline.
    pub async fn load(
        source: &Source,
        from: TimestampUs,
        to: TimestampUs,
        tickers: &[String],
    ) -> Result<Dataset, DataError> {
        let loaded = source.load(from, to, tickers).await?;
        Ok(Dataset::build(loaded, from, to))
    }

    /// Reads `[from, to]` from production at `url`.
    pub async fn from_production(
        url: &str,
        from: TimestampUs,
        to: TimestampUs,
    ) -> Result<Dataset, DataError> {
        Dataset::load(&Source::Production(url.to_string()), from, to, &[]).await
    }

    /// The dataset of what a source read (the same whichever source it was).
    pub fn build(loaded: Loaded, from: TimestampUs, to: TimestampUs) -> Dataset {
        let Loaded {
            books,
            rest,
            markets,
        } = loaded;
        let gaps: Vec<Gap> = rest.gaps.into_iter().filter(|g| g.end >= from).collect();
        let uncovered = uncovered(&gaps, &rest.gatherers, from, to);
        let mut data = Dataset {
            from,
            to,
            timeline: Vec::new(),
            books: histories(books.snapshots.clone(), books.deltas.clone()),
            trades: rest.trades,
            markets,
            uncovered,
            gatherers: rest.gatherers,
        };
        data.trades
            .sort_by(|a, b| (a.exchange_ts, &a.trade_id).cmp(&(b.exchange_ts, &b.trade_id)));
        data.build_timeline(books.snapshots, books.deltas, rest.tickers, rest.lifecycle);
        data
    }

    /// Merges the tables into one exchange-time order. Within one instant: deltas, then
    /// resyncs (a snapshot at T already holds the deltas at T), trades, tickers, lifecycle.
    fn build_timeline(
        &mut self,
        snapshots: Vec<kd_core::OrderbookSnapshot>,
        mut deltas: Vec<OrderbookDelta>,
        tickers: Vec<Ticker>,
        lifecycle: Vec<Lifecycle>,
    ) {
        let (from, to) = (self.from, self.to);
        let inside = |ts: TimestampUs| ts > from && ts <= to;
        deltas.retain(|d| inside(d.exchange_ts));
        deltas.sort_by_key(|d| (d.exchange_ts, d.occurrence));
        let mut tl: Vec<(TimestampUs, u8, Event)> = Vec::new();
        tl.extend(
            deltas
                .into_iter()
                .map(|d| (d.exchange_ts, 0, Event::Delta(d))),
        );
        tl.extend(self.resyncs(&snapshots, &tl));
        tl.extend(
            self.trades
                .iter()
                .filter(|t| inside(t.exchange_ts))
                .cloned()
                .map(|t| (t.exchange_ts, 2, Event::Trade(t))),
        );
        tl.extend(
            tickers
                .into_iter()
                .filter(|t| inside(t.exchange_ts))
                .map(|t| (t.exchange_ts, 3, Event::Ticker(t))),
        );
        tl.extend(
            lifecycle
                .into_iter()
                .filter(|l| inside(l.exchange_ts))
                .map(|l| (l.exchange_ts, 4, Event::Lifecycle(l))),
        );
        tl.extend(
            self.uncovered
                .iter()
                .map(|&(start, end)| (start.max(from), 5, Event::Uncovered { start, end })),
        );
        // Stable: deltas keep their (time, occurrence) order inside their rank.
        tl.sort_by_key(|(ts, rank, _)| (*ts, *rank));
        self.timeline = tl.into_iter().map(|(ts, _, e)| (ts, e)).collect();
    }

    /// The stored WebSocket snapshots of the range that disagree with the book built from the
    /// snapshot at `from` and the deltas since (`deltas`: rank-0 entries, in order).
    fn resyncs(
        &self,
        snapshots: &[kd_core::OrderbookSnapshot],
        deltas: &[(TimestampUs, u8, Event)],
    ) -> Vec<(TimestampUs, u8, Event)> {
        let mut books: BTreeMap<&str, Option<Book>> = self
            .books
            .iter()
            .map(|(t, h)| (t.as_str(), h.at(self.from).map(|r| r.book)))
            .collect();
        let mut snaps: Vec<&kd_core::OrderbookSnapshot> = snapshots
            .iter()
            .filter(|s| s.source == SnapshotSource::Ws)
            .filter(|s| s.exchange_ts > self.from && s.exchange_ts <= self.to)
            .collect();
        snaps.sort_by_key(|s| s.exchange_ts);
        let mut out = Vec::new();
        let mut d = deltas.iter().peekable();
        for s in snaps {
            // Deltas at the snapshot's instant are in it (the rebuild rule of kd_core::book).
            while let Some((ts, _, Event::Delta(delta))) = d.peek() {
                if *ts > s.exchange_ts {
                    break;
                }
                if let Some(Some(book)) = books.get_mut(delta.ticker.as_str()) {
                    book.apply(delta.side, delta.price, delta.delta);
                }
                d.next();
            }
            let snap = Book::from_snapshot(s);
            let slot = books.entry(s.ticker.as_str()).or_insert(None);
            if slot.as_ref() != Some(&snap) {
                out.push((
                    s.exchange_ts,
                    1,
                    Event::Resync {
                        ticker: s.ticker.clone(),
                        book: snap.clone(),
                    },
                ));
            }
            *slot = Some(snap);
        }
        out
    }

    /// The book of `ticker` at `at` (`None`: no snapshot precedes it).
    pub fn book_at(&self, ticker: &str, at: TimestampUs) -> Option<Book> {
        self.books.get(ticker)?.at(at).map(|r| r.book)
    }

    /// Every market ticker known to the range (metadata, books, trades).
    pub fn tickers(&self) -> Vec<String> {
        let mut all: Vec<String> = self.markets.iter().map(|m| m.ticker.clone()).collect();
        all.extend(self.books.keys().cloned());
        all.sort();
        all.dedup();
        all
    }
}

/// The windows no gatherer covered, within `[from, to]`.
///
/// Definition (simple on purpose): a gatherer is *down* during the union of its gap records
/// (any reason, any market or channel, feed-wide or not). A window is uncovered where every
/// gatherer production was fed by is down at once. With no gatherer known, nothing is
/// announced.
pub fn uncovered(
    gaps: &[Gap],
    gatherers: &[String],
    from: TimestampUs,
    to: TimestampUs,
) -> Vec<(TimestampUs, TimestampUs)> {
    if gatherers.is_empty() {
        return Vec::new();
    }
    let mut common: Option<Vec<(i64, i64)>> = None;
    for g in gatherers {
        let mut mine: Vec<(i64, i64)> = gaps
            .iter()
            .filter(|x| &x.gatherer == g)
            .map(|x| {
                (
                    x.start.micros().max(from.micros()),
                    x.end.micros().min(to.micros()),
                )
            })
            .filter(|(a, b)| a < b)
            .collect();
        mine.sort();
        let mine = union(mine);
        common = Some(match common {
            None => mine,
            Some(c) => intersect(&c, &mine),
        });
    }
    common
        .unwrap_or_default()
        .into_iter()
        .map(|(a, b)| (TimestampUs::from_micros(a), TimestampUs::from_micros(b)))
        .collect()
}

fn union(sorted: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn intersect(x: &[(i64, i64)], y: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(&(a0, a1)), Some(&(b0, b1))) = (x.get(i), y.get(j)) {
        let (s, e) = (a0.max(b0), a1.min(b1));
        if s < e {
            out.push((s, e));
        }
        if a1 < b1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(g: &str, a: i64, b: i64) -> Gap {
        Gap {
            gatherer: g.into(),
            gap_id: format!("{a}"),
            ticker: None,
            tickers: Vec::new(),
            channel: "orderbook_delta".into(),
            start: TimestampUs::from_micros(a),
            end: TimestampUs::from_micros(b),
            reason: "downtime".into(),
            repair: "none".into(),
        }
    }

    #[test]
    fn uncovered_only_where_every_gatherer_had_a_gap() {
        let names = vec!["a".to_string(), "b".to_string()];
        let gaps = [
            gap("a", 10, 50),
            gap("b", 40, 60),
            gap("b", 0, 5),
            gap("a", 70, 80),
        ];
        let t = TimestampUs::from_micros;
        assert_eq!(uncovered(&gaps, &names, t(0), t(100)), vec![(t(40), t(50))]);
        // One gatherer alone covered the rest.
        assert!(uncovered(&gaps[..1], &names, t(0), t(100)).is_empty());
        // Clipped to the range.
        assert_eq!(
            uncovered(&gaps, &names, t(45), t(100)),
            vec![(t(45), t(50))]
        );
    }
}
