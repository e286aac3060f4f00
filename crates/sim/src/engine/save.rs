//! What `--state-dir` keeps of the exchange across restarts.

use super::{Combo, EngineConfig, Exchange, TradeRow, rest_cache::RestCache};
use crate::market::{Action, Hot, MarketState, Status};
use crate::rng::{self, Rng};
use crate::universe::Universe;
use kd_core::Side;
use kd_core::records::OccurrenceCounter;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::HashMap;

/// One market's state as saved in `--state-dir` (a tuple keeps a million of them small).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedMarket(Status, Option<Side>, [i64; 6], [i64; 4]);

/// A hot market's book as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedBook {
    pub market: u32,
    pub last_ts: i64,
    pub yes: crate::book::Levels,
    pub no: crate::book::Levels,
}

/// Everything needed to continue an exchange after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedState {
    pub seed: u64,
    pub next_trade: u64,
    pub markets: Vec<SavedMarket>,
    pub books: Vec<SavedBook>,
    pub trades: Vec<TradeRow>,
    pub schedule: Vec<(i64, u32, Action)>,
    /// Combo markets (absent from saves made before they existed).
    #[serde(default)]
    pub combos: Vec<Combo>,
    #[serde(default)]
    pub combo_events: u32,
    #[serde(default)]
    pub regular_markets: u32,
}

impl Exchange {
    /// The state to save (markets, books, trades, schedule).
    pub fn save(&self) -> SavedState {
        SavedState {
            seed: self.seed,
            next_trade: self.next_trade,
            markets: self
                .markets
                .iter()
                .map(|st| {
                    SavedMarket(
                        st.status,
                        st.result,
                        [
                            st.created_s,
                            st.open_s,
                            st.close_s,
                            st.determined_s,
                            st.settled_s,
                            st.updated_us,
                        ],
                        [
                            st.last_price,
                            st.previous_price,
                            st.volume,
                            st.open_interest,
                        ],
                    )
                })
                .collect(),
            books: self
                .markets
                .iter()
                .enumerate()
                .filter_map(|(m, st)| {
                    st.hot.as_deref().map(|h| SavedBook {
                        market: m as u32,
                        last_ts: h.last_ts,
                        yes: h.book.yes.clone(),
                        no: h.book.no.clone(),
                    })
                })
                .collect(),
            trades: self.trades.clone(),
            schedule: self.schedule.iter().map(|Reverse(e)| *e).collect(),
            combos: self.combos.clone(),
            combo_events: self.combo_events,
            regular_markets: self.regular_markets,
        }
    }

    /// Continues a saved exchange.
    pub fn restore(cfg: EngineConfig, uni: Universe, saved: SavedState) -> Exchange {
        let mut markets: Vec<MarketState> = saved
            .markets
            .into_iter()
            .map(|SavedMarket(status, result, t, v)| MarketState {
                status,
                result,
                created_s: t[0],
                open_s: t[1],
                close_s: t[2],
                determined_s: t[3],
                settled_s: t[4],
                updated_us: t[5],
                last_price: v[0],
                previous_price: v[1],
                volume: v[2],
                open_interest: v[3],
                hot: None,
                combo: None,
            })
            .collect();
        for (k, c) in saved.combos.iter().enumerate() {
            if let Some(st) = markets.get_mut(c.market as usize) {
                st.combo = Some(k as u32);
            }
        }
        let books = saved.books;
        let mut trades_by_market: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, t) in saved.trades.iter().enumerate() {
            trades_by_market.entry(t.market).or_default().push(i as u32);
        }
        let mut ex = Exchange {
            seed: cfg.seed,
            uni,
            markets,
            trades: saved.trades,
            trades_by_market,
            next_trade: saved.next_trade,
            gseq: 0,
            schedule: saved.schedule.into_iter().map(Reverse).collect(),
            hot: Vec::new(),
            hot_target: cfg.hot_markets.max(1),
            rng: Rng::derive(cfg.seed ^ saved.next_trade, 0x000E_461E),
            occ: cfg.truth.then(OccurrenceCounter::default),
            life_s: cfg.life_s.max(1),
            dirty: Vec::new(),
            combos: saved.combos,
            combo_events: saved.combo_events,
            regular_markets: if saved.regular_markets > 0 {
                saved.regular_markets
            } else {
                cfg.markets
            },
            fee_overrides: Default::default(),
            rest_cache: RestCache::new(cfg.rest_cache_us),
            listed: Vec::new(),
        };
        for b in books {
            let ticker = ex.ticker(b.market);
            if let Some(st) = ex.markets.get_mut(b.market as usize) {
                st.hot = Some(Box::new(Hot {
                    book: crate::book::Book {
                        yes: b.yes,
                        no: b.no,
                    },
                    last_ts: b.last_ts,
                    dirty: false,
                    ticker,
                    market_id: rng::market_id(cfg.seed, b.market),
                }));
            }
        }
        // Prefer markets that already had books, then fill up at random.
        let n = ex.markets.len();
        ex.hot = (0..n as u32)
            .filter(|&m| {
                let st = &ex.markets[m as usize];
                st.status == Status::Active && st.hot.is_some()
            })
            .take(ex.hot_target)
            .collect();
        for _ in 0..64 {
            ex.refill_hot();
        }
        ex
    }
}
