//! The exchange itself: markets, books, trades and the schedule that moves markets through
//! their lives. Pure state plus generation; no I/O (the publisher thread drives it).
//!
//! - this file: the exchange's state and its order flow (orders, cancels, trades, tickers);
//! - [`life`]: market life — the schedule, creation, pauses, closes, determination;
//! - [`life`]: market life — the schedule, creation, pauses, closes, determination, fee
//!   updates, repeated toggles, markets that appear or close silently;
//! - [`combo`]: multivariate (combo) events and markets;
//! - [`rest_cache`]: the edge cache REST order books are served from;
//! - [`save`]: what `--state-dir` keeps across restarts.

pub mod combo;
mod life;
pub mod rest_cache;
mod save;

pub use combo::Combo;
pub use save::{SavedBook, SavedMarket, SavedState};

use crate::market::{Action, Hot, MarketState, Status, initial_book, random_size};
use crate::messages::{self, TickerValues, TradeOut};
use crate::publish::{Channel, Item};
use crate::rng::{self, Rng};
use crate::universe::Universe;
use kd_core::records::OccurrenceCounter;
use kd_core::{Count, Price, Record, Side, TimestampUs};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A trade as stored for `GET /markets/trades` (compact: millions of them may accumulate).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TradeRow {
    pub counter: u64,
    pub market: u32,
    pub ts_us: i64,
    pub yes_price: i32,
    pub count: i64,
    pub taker_yes: bool,
}

/// Settings the engine needs (a subset of the simulator configuration).
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    pub seed: u64,
    pub markets: u32,
    pub life_s: i64,
    pub hot_markets: usize,
    pub truth: bool,
    /// Combo markets at start (after the regular ones).
    pub combo_markets: u32,
    /// Age up to which REST order books are served from the edge cache (0: always fresh).
    pub rest_cache_us: i64,
}

#[derive(Debug)]
pub struct Exchange {
    pub seed: u64,
    pub uni: Universe,
    pub markets: Vec<MarketState>,
    pub trades: Vec<TradeRow>,
    pub trades_by_market: HashMap<u32, Vec<u32>>,
    /// Next trade counter (ids are derived from it; never reused).
    pub next_trade: u64,
    /// Last global publish sequence number.
    pub gseq: u64,
    schedule: BinaryHeap<Reverse<(i64, u32, Action)>>,
    hot: Vec<u32>,
    hot_target: usize,
    rng: Rng,
    occ: Option<OccurrenceCounter>,
    life_s: i64,
    /// Markets whose books changed since the last check point.
    pub dirty: Vec<u32>,
    /// Combo markets, by their `MarketState::combo` number.
    pub combos: Vec<Combo>,
    pub combo_events: u32,
    /// Regular markets at start: combo legs are drawn from them.
    regular_markets: u32,
    /// Events whose fee override is set now (`event_fee_update`).
    pub fee_overrides: std::collections::HashSet<u32>,
    /// The REST edge cache (see [`rest_cache`]).
    pub rest_cache: rest_cache::RestCache,
    /// Markets that became listed since the publisher last looked: (market, when, the channel
    /// that announced it — `None` for none). The publisher turns them into truth lines.
    pub listed: Vec<(u32, i64, Option<Channel>)>,
}

impl Exchange {
    pub fn new(cfg: EngineConfig, now_us: i64, uni: Universe) -> Exchange {
        let now_s = now_us.div_euclid(1_000_000);
        let mut markets = Vec::with_capacity(cfg.markets as usize);
        let mut schedule = BinaryHeap::with_capacity(cfg.markets as usize);
        for m in 0..cfg.markets {
            let (st, next) = MarketState::initial(cfg.seed, m, now_s, cfg.life_s);
            if let Some((at_s, action)) = next {
                schedule.push(Reverse((at_s * 1_000_000, m, action)));
            }
            markets.push(st);
        }
        let mut ex = Exchange {
            seed: cfg.seed,
            uni,
            markets,
            trades: Vec::new(),
            trades_by_market: HashMap::new(),
            next_trade: 0,
            gseq: 0,
            schedule,
            hot: Vec::new(),
            hot_target: cfg.hot_markets.max(1),
            rng: Rng::derive(cfg.seed, 0x000E_461E),
            occ: cfg.truth.then(OccurrenceCounter::default),
            life_s: cfg.life_s.max(1),
            dirty: Vec::new(),
            combos: Vec::new(),
            combo_events: 0,
            regular_markets: cfg.markets,
            fee_overrides: Default::default(),
            rest_cache: rest_cache::RestCache::new(cfg.rest_cache_us),
            listed: Vec::new(),
        };
        for _ in 0..cfg.combo_markets {
            let m = ex.markets.len() as u32;
            let (st, next) = MarketState::initial(cfg.seed, m, now_s, cfg.life_s);
            if let Some((at_s, action)) = next {
                ex.schedule.push(Reverse((at_s * 1_000_000, m, action)));
            }
            ex.push_combo(st);
        }
        let n = ex.markets.len();
        if n <= ex.hot_target {
            ex.hot = (0..n as u32)
                .filter(|&m| ex.markets[m as usize].status == Status::Active)
                .collect();
        } else {
            let mut tries = 0;
            while ex.hot.len() < ex.hot_target && tries < ex.hot_target * 20 {
                tries += 1;
                let m = ex.rng.below(n as u64) as u32;
                if ex.markets[m as usize].status == Status::Active && !ex.hot.contains(&m) {
                    ex.hot.push(m);
                }
            }
        }
        ex
    }

    pub fn market_count(&self) -> u32 {
        self.markets.len() as u32
    }

    /// The book of a market, materialised on first use (deterministic initial state).
    pub fn hot_mut(&mut self, m: u32) -> Option<&mut Hot> {
        if self.markets.get(m as usize)?.hot.is_none() {
            let hot = Box::new(Hot {
                book: initial_book(self.seed, &self.uni, m),
                last_ts: 0,
                dirty: false,
                ticker: self.ticker(m),
                market_id: rng::market_id(self.seed, m),
            });
            self.markets[m as usize].hot = Some(hot);
        }
        self.markets[m as usize].hot.as_deref_mut()
    }

    /// Both sides of a market's book now, with the publish sequence it reflects.
    pub fn book_snapshot(&mut self, m: u32) -> Option<(crate::book::Book, u64)> {
        let gseq = self.gseq;
        self.hot_mut(m).map(|h| (h.book.clone(), gseq))
    }

    fn next_ts(hot: &mut Hot, now_us: i64) -> i64 {
        let ts = now_us.max(hot.last_ts + 1);
        hot.last_ts = ts;
        ts
    }

    // Hot-path helper; a parameter struct would only rename the arguments.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        out: &mut Vec<Item>,
        channel: Channel,
        msg_type: &'static str,
        market: u32,
        body: String,
        record: Option<Record>,
        drop_all: bool,
    ) {
        self.gseq += 1;
        let mut item = Item::new(self.gseq, channel, msg_type, market, body);
        item.record = record;
        item.drop_all = drop_all;
        out.push(item);
    }

    /// Generates about `budget` data messages on hot markets.
    pub fn step(&mut self, budget: usize, now_us: i64, drop_all_p: f64, out: &mut Vec<Item>) {
        if self.hot.is_empty() {
            self.refill_hot();
            if self.hot.is_empty() {
                return;
            }
        }
        let start = out.len();
        while out.len() - start < budget {
            let slot = self.rng.below(self.hot.len() as u64) as usize;
            let m = self.hot[slot];
            if self.markets[m as usize].status != Status::Active {
                self.hot.swap_remove(slot);
                self.refill_hot();
                if self.hot.is_empty() {
                    return;
                }
                continue;
            }
            // Slowly rotate the working set through the whole universe.
            if self.markets.len() > self.hot.len() && self.rng.below(2_000) == 0 {
                let cand = self.rng.below(self.markets.len() as u64) as u32;
                if self.markets[cand as usize].status == Status::Active && !self.hot.contains(&cand)
                {
                    self.hot[slot] = cand;
                }
            }
            let roll = self.rng.below(100);
            let drop_all = drop_all_p > 0.0 && self.rng.chance(drop_all_p);
            if roll < 50 {
                self.add_order(m, now_us, drop_all, out);
            } else if roll < 85 {
                self.cancel_order(m, now_us, drop_all, out);
            } else if roll < 97 {
                self.trade(m, now_us, drop_all, out);
            } else {
                self.emit_ticker(m, now_us, 0, drop_all, out);
            }
        }
    }

    fn refill_hot(&mut self) {
        let n = self.markets.len() as u64;
        let mut tries = 0;
        while self.hot.len() < self.hot_target && tries < 64 {
            tries += 1;
            let m = self.rng.below(n) as u32;
            if self
                .markets
                .get(m as usize)
                .is_some_and(|s| s.status == Status::Active)
                && !self.hot.contains(&m)
            {
                self.hot.push(m);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_delta(
        &mut self,
        m: u32,
        side: Side,
        price: i64,
        delta: i64,
        ts: i64,
        drop_all: bool,
        out: &mut Vec<Item>,
    ) {
        let Some(hot) = self.markets[m as usize].hot.as_deref_mut() else {
            return;
        };
        if !hot.book.apply(side, price, delta) {
            return;
        }
        if !hot.dirty {
            hot.dirty = true;
            self.dirty.push(m);
        }
        let body = messages::delta_body(&hot.ticker, &hot.market_id, side, price, delta, ts);
        let record = match self.occ.as_mut() {
            Some(occ) => {
                let p = Price::new(price).unwrap_or(Price::ZERO);
                let n = occ.next(
                    &hot.ticker,
                    TimestampUs::from_micros(ts),
                    side,
                    p,
                    Count::new(delta),
                );
                Some(Record::Delta(messages::delta_record(
                    &hot.ticker,
                    side,
                    price,
                    delta,
                    ts,
                    n,
                )))
            }
            None => None,
        };
        self.push(
            out,
            Channel::OrderbookDelta,
            "orderbook_delta",
            m,
            body,
            record,
            drop_all,
        );
        if side == Side::No
            && let Some(item) = out.last_mut()
        {
            item.no_price = Some(price);
        }
    }

    fn add_order(&mut self, m: u32, now_us: i64, drop_all: bool, out: &mut Vec<Item>) {
        let step = self.uni.ticks(m).step();
        let side = if self.rng.below(2) == 0 {
            Side::Yes
        } else {
            Side::No
        };
        let size = random_size(&mut self.rng);
        let k = self.rng.below(8) as i64;
        let twice = self.rng.below(100) == 0;
        let Some(hot) = self.hot_mut(m) else { return };
        let other = match side {
            Side::Yes => Side::No,
            Side::No => Side::Yes,
        };
        // Never cross: a YES bid must stay below 1 − best NO bid.
        let max_price = match hot.book.best(other) {
            Some((p, _)) => 100_000 - p - step,
            None => 100_000 - step,
        };
        let price = max_price - step * k;
        if price < step {
            return;
        }
        let ts = Self::next_ts(hot, now_us);
        self.emit_delta(m, side, price, size, ts, drop_all, out);
        if twice {
            // Two identical orders in one instant: identical delta tuples, told apart only by
            // their occurrence number.
            self.emit_delta(m, side, price, size, ts, drop_all, out);
        }
    }

    fn cancel_order(&mut self, m: u32, now_us: i64, drop_all: bool, out: &mut Vec<Item>) {
        let side = if self.rng.below(2) == 0 {
            Side::Yes
        } else {
            Side::No
        };
        let pick = self.rng.next_u64();
        let whole = self.rng.below(3) == 0;
        let part = self.rng.next_u64();
        let Some(hot) = self.hot_mut(m) else { return };
        let levels = hot.book.side(side);
        if levels.is_empty() {
            return self.add_order(m, now_us, drop_all, out);
        }
        let (price, size) = levels[(pick % levels.len() as u64) as usize];
        let amount = if whole || size <= 1 {
            size
        } else {
            1 + (part % (size as u64 - 1)) as i64
        };
        let ts = Self::next_ts(hot, now_us);
        self.emit_delta(m, side, price, -amount, ts, drop_all, out);
    }

    fn trade(&mut self, m: u32, now_us: i64, drop_all: bool, out: &mut Vec<Item>) {
        let taker = if self.rng.below(2) == 0 {
            Side::Yes
        } else {
            Side::No
        };
        let want = random_size(&mut self.rng);
        let Some(hot) = self.hot_mut(m) else { return };
        // A YES taker lifts the best NO bid (a YES ask), and vice versa.
        let maker = match taker {
            Side::Yes => Side::No,
            Side::No => Side::Yes,
        };
        let Some((maker_price, resting)) = hot.book.best(maker) else {
            return self.add_order(m, now_us, drop_all, out);
        };
        let count = want.min(resting);
        let ts = Self::next_ts(hot, now_us);
        let yes_price = match taker {
            Side::Yes => 100_000 - maker_price,
            Side::No => maker_price,
        };
        let counter = self.next_trade;
        self.next_trade += 1;
        let trade_id = rng::trade_id(self.seed, counter);
        let ts_ms_us = ts.div_euclid(1_000) * 1_000;
        let (body, record) = {
            let hot = self.markets[m as usize]
                .hot
                .as_deref()
                .expect("materialised above");
            let t = TradeOut {
                trade_id: &trade_id,
                ticker: &hot.ticker,
                market_id: &hot.market_id,
                yes_price,
                count,
                taker,
                ts_us: ts_ms_us,
            };
            (
                messages::trade_body(&t),
                self.occ
                    .is_some()
                    .then(|| Record::Trade(messages::trade_record(&t))),
            )
        };
        self.push(out, Channel::Trade, "trade", m, body, record, drop_all);
        let idx = self.trades.len() as u32;
        self.trades.push(TradeRow {
            counter,
            market: m,
            ts_us: ts_ms_us,
            yes_price: yes_price as i32,
            count,
            taker_yes: taker == Side::Yes,
        });
        self.trades_by_market.entry(m).or_default().push(idx);
        {
            let st = &mut self.markets[m as usize];
            st.previous_price = st.last_price;
            st.last_price = yes_price;
            st.volume += count;
            st.open_interest += count / 2;
        }
        self.emit_delta(m, maker, maker_price, -count, ts, drop_all, out);
        self.emit_ticker(m, now_us, count, drop_all, out);
    }

    fn emit_ticker(
        &mut self,
        m: u32,
        now_us: i64,
        last_trade_size: i64,
        drop_all: bool,
        out: &mut Vec<Item>,
    ) {
        let (last_price, volume, oi) = {
            let st = &self.markets[m as usize];
            (st.last_price, st.volume, st.open_interest)
        };
        let keep_truth = self.occ.is_some();
        let Some(hot) = self.hot_mut(m) else { return };
        let ts = Self::next_ts(hot, now_us);
        let (yes_bid, yes_bid_size) = hot.book.best(Side::Yes).unwrap_or((0, 0));
        let (no_bid, yes_ask_size) = hot.book.best(Side::No).unwrap_or((0, 0));
        let v = TickerValues {
            price: last_price,
            yes_bid,
            yes_ask: 100_000 - no_bid,
            volume,
            open_interest: oi,
            yes_bid_size,
            yes_ask_size,
            last_trade_size,
            ts_us: ts,
        };
        let body = messages::ticker_body(&hot.ticker, &hot.market_id, &v);
        let record = keep_truth.then(|| Record::Ticker(messages::ticker_record(&hot.ticker, &v)));
        self.push(out, Channel::Ticker, "ticker", m, body, record, drop_all);
    }

    /// Books of the markets that changed since the last call, each with a timestamp no delta of
    /// that market precedes or follows ambiguously (later deltas get strictly greater times).
    pub fn take_checkpoint(&mut self, now_us: i64) -> Vec<(u32, i64, crate::book::Book)> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut books = Vec::with_capacity(dirty.len());
        for m in dirty {
            if let Some(hot) = self
                .markets
                .get_mut(m as usize)
                .and_then(|s| s.hot.as_deref_mut())
            {
                hot.dirty = false;
                let ts = Self::next_ts(hot, now_us);
                books.push((m, ts, hot.book.clone()));
            }
        }
        books
    }
}
