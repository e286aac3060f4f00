//! Derived streams, computed from the replayed timeline as it is sent (docs/replay.md
//! "Derived streams"): top-N book snapshots at a fixed interval and trade bars by time, volume
//! or trade count. Prices are integer price units and counts integer hundredths of a contract
//! (`kd_core::units`), never floats.
//!
//! Names: `book_snapshot_{depth}_{interval}` (`book_snapshot_10_1s`), `trade_bar_{interval}`
//! (`trade_bar_1m`), `trade_bar_vol_{contracts}` (`trade_bar_vol_100`),
//! `trade_bar_count_{trades}` (`trade_bar_count_50`); intervals `{n}ms|s|m|h`.
//!
//! Each stream is fed every timeline event in order: [`Derived::before`] with the event's
//! instant first (what closes at a boundary the event passes is emitted before the event),
//! then [`Derived::on`]; [`Derived::finish`] at the end of the range.

use crate::data::{Dataset, Event};
use crate::frames::Frames;
use kd_core::book::Book;
use kd_core::{Count, Price, TimestampUs, Trade};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What a derived stream computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// The best `depth` levels of each side of every market whose top changed, every
    /// `every_us` of exchange time (instants that are multiples of it since the epoch).
    Snapshot { depth: usize, every_us: i64 },
    /// OHLC bars of `[k·every, (k+1)·every)`, per market; empty intervals send nothing.
    TimeBar { every_us: i64 },
    /// A bar closes at the trade that brings its volume to at least this many hundredths of a
    /// contract (trades are never split).
    VolumeBar { volume: i64 },
    /// A bar closes at its `trades`-th trade.
    CountBar { trades: u64 },
}

/// `500ms`, `1s`, `1m`, `1h` → µs.
pub fn parse_interval(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok().filter(|&n| n > 0)?;
    let scale = match unit {
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

impl Spec {
    /// The spec of a stream name (`None`: not a derived stream).
    pub fn parse(name: &str) -> Option<Spec> {
        if let Some(rest) = name.strip_prefix("book_snapshot_") {
            let (depth, every) = rest.split_once('_')?;
            let depth = depth.parse().ok().filter(|&d: &usize| d > 0)?;
            return Some(Spec::Snapshot {
                depth,
                every_us: parse_interval(every)?,
            });
        }
        if let Some(n) = name.strip_prefix("trade_bar_vol_") {
            let contracts: i64 = n.parse().ok().filter(|&n| n > 0)?;
            return Some(Spec::VolumeBar {
                volume: contracts.checked_mul(100)?,
            });
        }
        if let Some(n) = name.strip_prefix("trade_bar_count_") {
            let trades = n.parse().ok().filter(|&n| n > 0)?;
            return Some(Spec::CountBar { trades });
        }
        let every = name.strip_prefix("trade_bar_")?;
        Some(Spec::TimeBar {
            every_us: parse_interval(every)?,
        })
    }
}

/// One market's bar being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: Count,
    pub trades: u64,
    pub first: TimestampUs,
    pub last: TimestampUs,
}

impl Bar {
    fn new(t: &Trade) -> Bar {
        Bar {
            open: t.yes_price,
            high: t.yes_price,
            low: t.yes_price,
            close: t.yes_price,
            volume: t.count,
            trades: 1,
            first: t.exchange_ts,
            last: t.exchange_ts,
        }
    }

    fn add(&mut self, t: &Trade) {
        self.high = self.high.max(t.yes_price);
        self.low = self.low.min(t.yes_price);
        self.close = t.yes_price;
        self.volume = Count::new(self.volume.hundredths() + t.count.hundredths());
        self.trades += 1;
        self.last = t.exchange_ts;
    }
}

/// A derived stream's state.
pub struct Derived {
    name: String,
    spec: Spec,
    /// `None`: every market.
    markets: Option<BTreeSet<String>>,
    books: BTreeMap<String, Book>,
    /// Last top sent per market (snapshots are sent only when it changed).
    sent: BTreeMap<String, Value>,
    dirty: BTreeSet<String>,
    /// Snapshots: the next boundary; time bars: the end of the open interval.
    next: i64,
    bars: BTreeMap<String, Bar>,
    /// Set when subscribed over a session: frames then carry `sid` and a contiguous `seq`.
    pub sid: Option<u64>,
    seq: u64,
}

fn ceil_to(ts: i64, every: i64) -> i64 {
    ts.div_euclid(every) * every + if ts.rem_euclid(every) == 0 { 0 } else { every }
}

impl Derived {
    /// A stream of `spec` for `markets` starting at `from` (snapshots: books as of `from`).
    pub fn new(
        name: &str,
        spec: Spec,
        markets: Option<BTreeSet<String>>,
        initial: BTreeMap<String, Book>,
        from: TimestampUs,
    ) -> Derived {
        let next = match spec {
            Spec::Snapshot { every_us, .. } => ceil_to(from.micros(), every_us),
            _ => i64::MIN,
        };
        Derived {
            name: name.to_string(),
            spec,
            dirty: initial.keys().cloned().collect(),
            books: initial,
            markets,
            sent: BTreeMap::new(),
            next,
            bars: BTreeMap::new(),
            sid: None,
            seq: 0,
        }
    }

    /// The stream's name (`trade_bar_1m`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn emit(&mut self, mut frame: Value, out: &mut Frames) {
        if let Some(sid) = self.sid {
            self.seq += 1;
            frame["sid"] = sid.into();
            frame["seq"] = self.seq.into();
        }
        out.push(&frame.to_string());
    }

    /// The stream `name` over `data` from `from` (`None`: not a derived stream name).
    pub fn for_data(
        name: &str,
        markets: Option<BTreeSet<String>>,
        data: &Dataset,
        from: TimestampUs,
    ) -> Option<Derived> {
        let spec = Spec::parse(name)?;
        let mut initial = BTreeMap::new();
        if matches!(spec, Spec::Snapshot { .. }) {
            let list = match &markets {
                Some(m) => m.iter().cloned().collect(),
                None => data.tickers(),
            };
            for m in list {
                if let Some(b) = data.book_at(&m, from) {
                    initial.insert(m, b);
                }
            }
        }
        Some(Derived::new(name, spec, markets, initial, from))
    }

    fn wants(&self, market: &str) -> bool {
        self.markets.as_ref().is_none_or(|m| m.contains(market))
    }

    /// Emits what closes before an event at `ts`.
    pub fn before(&mut self, ts: TimestampUs, out: &mut Frames) {
        let ts = ts.micros();
        match self.spec {
            Spec::Snapshot { every_us, .. } if ts > self.next => {
                self.snapshots(self.next, out);
                // Nothing changes until this event: the boundaries in between send nothing.
                self.next = ceil_to(ts, every_us);
            }
            Spec::TimeBar { every_us } if ts >= self.next && !self.bars.is_empty() => {
                let start = self.next - every_us;
                self.flush_bars(Some((start, self.next)), true, out);
            }
            _ => {}
        }
    }

    /// Takes one timeline event.
    pub fn on(&mut self, event: &Event, out: &mut Frames) {
        match (event, self.spec) {
            (Event::Delta(d), Spec::Snapshot { .. }) if self.wants(&d.ticker) => {
                if let Some(b) = self.books.get_mut(&d.ticker) {
                    b.apply(d.side, d.price, d.delta);
                    self.dirty.insert(d.ticker.clone());
                }
            }
            (Event::Resync { ticker, book }, Spec::Snapshot { .. }) if self.wants(ticker) => {
                self.books.insert(ticker.clone(), book.clone());
                self.dirty.insert(ticker.clone());
            }
            (Event::Trade(t), Spec::TimeBar { every_us }) if self.wants(&t.ticker) => {
                let start = t.exchange_ts.micros().div_euclid(every_us) * every_us;
                self.next = start + every_us;
                match self.bars.get_mut(&t.ticker) {
                    Some(b) => b.add(t),
                    None => {
                        self.bars.insert(t.ticker.clone(), Bar::new(t));
                    }
                }
            }
            (Event::Trade(t), Spec::VolumeBar { .. } | Spec::CountBar { .. })
                if self.wants(&t.ticker) =>
            {
                let bar = match self.bars.get_mut(&t.ticker) {
                    Some(b) => {
                        b.add(t);
                        b.clone()
                    }
                    None => {
                        let b = Bar::new(t);
                        self.bars.insert(t.ticker.clone(), b.clone());
                        b
                    }
                };
                let full = match self.spec {
                    Spec::VolumeBar { volume } => bar.volume.hundredths() >= volume,
                    Spec::CountBar { trades } => bar.trades >= trades,
                    _ => false,
                };
                if full {
                    self.bars.remove(&t.ticker);
                    let f = self.bar_frame(&t.ticker, &bar, None, true);
                    self.emit(f, out);
                }
            }
            _ => {}
        }
    }

    /// End of the range at `to`: the last boundary's snapshots, the open bars (`complete`
    /// false where the bar's interval or size was not reached).
    pub fn finish(&mut self, to: TimestampUs, out: &mut Frames) {
        match self.spec {
            Spec::Snapshot { .. } => {
                if self.next <= to.micros() {
                    self.snapshots(self.next, out);
                }
            }
            Spec::TimeBar { every_us } => {
                if self.bars.is_empty() {
                    return;
                }
                let start = self.next - every_us;
                let complete = self.next <= to.micros() + 1;
                self.flush_bars(Some((start, self.next)), complete, out);
            }
            _ => self.flush_bars(None, false, out),
        }
    }

    fn flush_bars(&mut self, window: Option<(i64, i64)>, complete: bool, out: &mut Frames) {
        let bars = std::mem::take(&mut self.bars);
        for (ticker, bar) in &bars {
            let f = self.bar_frame(ticker, bar, window, complete);
            self.emit(f, out);
        }
    }

    fn bar_frame(
        &self,
        ticker: &str,
        b: &Bar,
        window: Option<(i64, i64)>,
        complete: bool,
    ) -> Value {
        let (start, end) = window.unwrap_or((b.first.micros(), b.last.micros()));
        let t = |us: i64| TimestampUs::from_micros(us).to_rfc3339();
        json!({
            "type": "trade_bar",
            "channel": self.name,
            "msg": {
                "market_ticker": ticker,
                "start": t(start), "start_us": start,
                "end": t(end), "end_us": end,
                "open": b.open.units(), "high": b.high.units(),
                "low": b.low.units(), "close": b.close.units(),
                "volume": b.volume.hundredths(),
                "volume_fp": b.volume.to_fp(),
                "trades": b.trades,
                "first_trade_us": b.first.micros(), "last_trade_us": b.last.micros(),
                "complete": complete,
            }
        })
    }

    fn snapshots(&mut self, at: i64, out: &mut Frames) {
        let Spec::Snapshot { depth, .. } = self.spec else {
            return;
        };
        for ticker in std::mem::take(&mut self.dirty) {
            let Some(book) = self.books.get(&ticker) else {
                continue;
            };
            let side = |m: &BTreeMap<Price, Count>| -> Value {
                m.iter()
                    .rev()
                    .take(depth)
                    .map(|(p, c)| json!([p.units(), c.hundredths()]))
                    .collect()
            };
            let top = json!({"yes": side(&book.yes), "no": side(&book.no)});
            if self.sent.get(&ticker) == Some(&top) {
                continue;
            }
            let f = json!({
                    "type": "book_snapshot",
                    "channel": self.name,
                    "msg": {
                        "market_ticker": ticker,
                        "ts": TimestampUs::from_micros(at).to_rfc3339(),
                        "ts_us": at,
                        "depth": depth,
                        "yes": top["yes"],
                        "no": top["no"],
                    }
            });
            self.emit(f, out);
            self.sent.insert(ticker, top);
        }
    }
}

#[cfg(test)]
#[path = "derived_tests.rs"]
mod tests;
