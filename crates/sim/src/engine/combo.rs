//! Multivariate (combo) events and markets, as Kalshi runs them since 2026 (WIRE.md "2026
//! changes"): tickers `KXMVESIM-E{event}-M{market}` in series `KXMVESIM`, REST fields
//! `mve_collection_ticker` and `mve_selected_legs`, lifecycle only on
//! `multivariate_market_lifecycle`. They trade like any market (books, trades, tickers).
//!
//! A combo market lives in the same index space as every other market (so books, the hot set,
//! trades and the schedule need nothing special); [`Exchange::ticker`] and
//! [`Exchange::market_index`] name and find it through the combo table.

use super::Exchange;
use crate::market::{Action, MarketState};
use crate::messages::{self, CreatedMeta, LifecycleOut};
use crate::publish::{Channel, Item};
use crate::rng::Rng;
use kd_core::{Record, Side};
use serde::{Deserialize, Serialize};

/// Series of every combo event.
pub const COMBO_SERIES: &str = "KXMVESIM";
/// The multivariate event collection every combo belongs to (`mve_collection_ticker`).
pub const COMBO_COLLECTION: &str = "KXMVESIM-R";
/// Combo markets per combo event.
const MARKETS_PER_EVENT: u32 = 3;

/// One combo market: its event and the legs (regular markets and the side each selects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combo {
    pub market: u32,
    pub event: u32,
    pub legs: Vec<(u32, Side)>,
}

pub fn combo_event_ticker(event: u32) -> String {
    format!("{COMBO_SERIES}-E{event}")
}

impl Exchange {
    /// A market's ticker (combo markets have their own form).
    pub fn ticker(&self, m: u32) -> String {
        match self.combo_of(m) {
            Some(c) => format!("{}-M{m}", combo_event_ticker(c.event)),
            None => self.uni.market_ticker(m),
        }
    }

    pub fn combo_of(&self, m: u32) -> Option<&Combo> {
        let k = self.markets.get(m as usize)?.combo?;
        self.combos.get(k as usize)
    }

    pub fn is_combo(&self, m: u32) -> bool {
        self.markets
            .get(m as usize)
            .is_some_and(|s| s.combo.is_some())
    }

    /// The index of the market a ticker names, if it exists.
    pub fn market_index(&self, ticker: &str) -> Option<u32> {
        if ticker.starts_with(COMBO_SERIES) {
            let (_, m) = ticker.rsplit_once("-M")?;
            let m: u32 = m.parse().ok()?;
            return (self.is_combo(m) && self.ticker(m) == ticker).then_some(m);
        }
        self.uni
            .parse_market(ticker, self.market_count())
            .filter(|&m| !self.is_combo(m))
    }

    /// The event ticker of a market.
    pub fn event_ticker_of(&self, m: u32) -> String {
        match self.combo_of(m) {
            Some(c) => combo_event_ticker(c.event),
            None => self.uni.event_ticker(self.uni.event_of(m)),
        }
    }

    /// The combo event a ticker names.
    pub fn parse_combo_event(&self, ticker: &str) -> Option<u32> {
        let e: u32 = ticker
            .strip_prefix(COMBO_SERIES)?
            .strip_prefix("-E")?
            .parse()
            .ok()?;
        (e < self.combo_events && combo_event_ticker(e) == ticker).then_some(e)
    }

    /// Markets of combo event `e`, ascending.
    pub fn combo_event_markets(&self, e: u32) -> impl Iterator<Item = u32> + '_ {
        self.combos
            .iter()
            .filter(move |c| c.event == e)
            .map(|c| c.market)
    }

    /// Appends combo market number `self.combos.len()` with state `st`; a new combo event
    /// starts every few markets. Returns the market index and whether its event is new.
    pub(super) fn push_combo(&mut self, mut st: MarketState) -> (u32, bool) {
        let k = self.combos.len() as u32;
        let m = self.markets.len() as u32;
        let event = k / MARKETS_PER_EVENT;
        let new_event = event >= self.combo_events;
        self.combo_events = self.combo_events.max(event + 1);
        // Legs: two regular markets of the universe at start, each with a side.
        let mut r = Rng::derive(self.seed, 0xC0B0_0000_0000 | u64::from(k));
        let regular = self.regular_markets.max(1);
        let legs = (0..2)
            .map(|_| {
                let side = if r.below(2) == 0 { Side::Yes } else { Side::No };
                (r.below(u64::from(regular)) as u32, side)
            })
            .collect();
        st.combo = Some(k);
        self.markets.push(st);
        self.combos.push(Combo {
            market: m,
            event,
            legs,
        });
        (m, new_event)
    }

    /// A combo market created while running: `event_lifecycle` for a new combo event, then
    /// `created`, both on `multivariate_market_lifecycle` only.
    pub(super) fn create_combo(&mut self, now_us: i64, out: &mut Vec<Item>) {
        let now_s = now_us.div_euclid(1_000_000);
        let st = MarketState::created(now_s, self.life_s);
        let open_us = st.open_s * 1_000_000;
        let (m, new_event) = self.push_combo(st);
        let event = combo_event_ticker(self.combos[self.combos.len() - 1].event);
        if new_event {
            let title = format!("Simulated combo {event}");
            let body = messages::event_created_body(&event, COMBO_SERIES, &title);
            let record = self.occ.is_some().then(|| {
                Record::Lifecycle(messages::event_record(
                    "event_lifecycle",
                    "created",
                    &event,
                    &body,
                    now_us,
                ))
            });
            self.push(
                out,
                Channel::MultivariateLifecycle,
                "event_lifecycle",
                u32::MAX,
                body,
                record,
                false,
            );
        }
        let meta = self.created_meta(m, &event);
        self.listed
            .push((m, now_us, Some(Channel::MultivariateLifecycle)));
        self.lifecycle(m, LifecycleOut::Created(Box::new(meta)), now_us, out);
        self.schedule_at(open_us, m, Action::Open);
    }

    /// What a `created` message says about market `m` of event `event`.
    pub(super) fn created_meta(&self, m: u32, event: &str) -> CreatedMeta {
        let st = &self.markets[m as usize];
        let strike = self.uni.strike(m);
        let e = self.uni.event_of(m);
        CreatedMeta {
            name: format!("Strike {strike}"),
            title: format!("Will simulated event {e} be above {strike}?"),
            yes_sub_title: format!("Above {strike}"),
            no_sub_title: format!("Not above {strike}"),
            rules_primary: format!("Resolves Yes if simulated event {e} is above {strike}."),
            event_ticker: event.to_string(),
            expected_expiration_ts: st.close_s + 600,
            floor_strike: strike,
            open_ts: st.open_s,
            close_ts: st.close_s,
            price_level_structure: self.uni.ticks(m).name(),
        }
    }
}
