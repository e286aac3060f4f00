//! Market life: the schedule of transitions, markets created while running, pauses and early
//! closes, fee overrides, and the lifecycle messages they publish — on `market_lifecycle_v2`,
//! or on `multivariate_market_lifecycle` for combo markets (never both).

use super::Exchange;
use crate::market::{Action, MarketState, Status};
use crate::messages::{self, LifecycleOut};
use crate::publish::{Channel, Item};
use kd_core::{Record, Side};
use std::cmp::Reverse;

/// The fee override an `event_fee_update` sets (asyncapi's enum; a whole-number multiplier).
const FEE_OVERRIDE: (&str, u32) = ("quadratic_with_maker_fees", 2);
/// Spacing of the four messages of a repeated-toggle burst (all within about 10 s).
const TOGGLE_STEP_US: i64 = 2_500_000;

impl Exchange {
    pub(super) fn lifecycle(
        &mut self,
        m: u32,
        what: LifecycleOut,
        now_us: i64,
        out: &mut Vec<Item>,
    ) {
        let ticker = self.ticker(m);
        let body = what.body(&ticker);
        let (channel, kind) = if self.is_combo(m) {
            (
                Channel::MultivariateLifecycle,
                "multivariate_market_lifecycle",
            )
        } else {
            (Channel::Lifecycle, "market_lifecycle_v2")
        };
        let record = self
            .occ
            .is_some()
            .then(|| Record::Lifecycle(what.record_as(kind, &ticker, &body, now_us)));
        if let Some(st) = self.markets.get_mut(m as usize) {
            st.updated_us = now_us;
        }
        self.push(out, channel, kind, m, body, record, false);
    }

    /// Puts a market that just opened into the hot set (replacing a random one when full).
    fn make_hot(&mut self, m: u32) {
        if self.hot.len() < self.hot_target {
            self.hot.push(m);
        } else if !self.hot.is_empty() {
            let slot = self.rng.below(self.hot.len() as u64) as usize;
            self.hot[slot] = m;
        }
    }

    /// A random active market of the hot set, if one is drawn.
    fn random_active_hot(&mut self) -> Option<u32> {
        if self.hot.is_empty() {
            return None;
        }
        let m = self.hot[self.rng.below(self.hot.len() as u64) as usize];
        (self.markets[m as usize].status == Status::Active).then_some(m)
    }

    /// Runs every scheduled transition due by `now_us`.
    pub fn run_due(&mut self, now_us: i64, out: &mut Vec<Item>) {
        while let Some(Reverse((due, m, action))) = self.schedule.peek().copied() {
            if due > now_us {
                break;
            }
            self.schedule.pop();
            self.transition(m, action, now_us, out);
        }
    }

    pub(super) fn schedule_at(&mut self, at_us: i64, m: u32, action: Action) {
        self.schedule.push(Reverse((at_us, m, action)));
    }

    fn transition(&mut self, m: u32, action: Action, now_us: i64, out: &mut Vec<Item>) {
        let now_s = now_us.div_euclid(1_000_000);
        let gap = (self.life_s / 20).max(1) * 1_000_000;
        let Some(st) = self.markets.get_mut(m as usize) else {
            return;
        };
        match (action, st.status) {
            (Action::Open, Status::Initialized) => {
                st.status = Status::Active;
                let close_us = st.close_s * 1_000_000;
                self.lifecycle(m, LifecycleOut::Activated, now_us, out);
                self.schedule_at(close_us.max(now_us + 1), m, Action::Close);
                self.make_hot(m);
            }
            (Action::Reactivate, Status::Inactive) => {
                st.status = Status::Active;
                self.lifecycle(m, LifecycleOut::Activated, now_us, out);
            }
            (Action::Deactivate, Status::Active) => {
                st.status = Status::Inactive;
                self.lifecycle(m, LifecycleOut::Deactivated, now_us, out);
            }
            (Action::Close, Status::Active | Status::Inactive) => {
                // A stale entry (the close date moved) is ignored.
                if st.close_s * 1_000_000 > now_us {
                    return;
                }
                st.status = Status::Closed;
                st.updated_us = now_us;
                self.schedule_at(now_us + gap, m, Action::Determine);
            }
            (Action::Determine, Status::Closed) => {
                let result = if self.rng.below(2) == 0 {
                    Side::Yes
                } else {
                    Side::No
                };
                let st = &mut self.markets[m as usize];
                st.status = Status::Determined;
                st.result = Some(result);
                st.determined_s = now_s;
                self.lifecycle(
                    m,
                    LifecycleOut::Determined {
                        result,
                        determination_ts: now_s,
                    },
                    now_us,
                    out,
                );
                self.schedule_at(now_us + gap, m, Action::Settle);
            }
            (Action::Settle, Status::Determined) => {
                st.status = Status::Finalized;
                st.settled_s = now_s;
                self.lifecycle(m, LifecycleOut::Settled { settled_ts: now_s }, now_us, out);
                let ticker = self.ticker(m);
                if let Some(occ) = self.occ.as_mut() {
                    occ.forget(&ticker);
                }
            }
            _ => {}
        }
    }

    /// One tick of market life: a new market, and now and then a pause or an early close.
    pub fn life_tick(&mut self, now_us: i64, out: &mut Vec<Item>) {
        let now_s = now_us.div_euclid(1_000_000);
        if self.markets.len() < u32::MAX as usize - 1 {
            let m = self.markets.len() as u32;
            let st = MarketState::created(now_s, self.life_s);
            let open_us = st.open_s * 1_000_000;
            self.markets.push(st);
            let meta = self.created_meta(m, &self.event_ticker_of(m));
            self.listed.push((m, now_us, Some(Channel::Lifecycle)));
            self.lifecycle(m, LifecycleOut::Created(Box::new(meta)), now_us, out);
            self.schedule_at(open_us, m, Action::Open);
        }
        if self.rng.below(4) == 0
            && let Some(m) = self.random_active_hot()
        {
            if self.rng.below(2) == 0 {
                self.markets[m as usize].status = Status::Inactive;
                self.lifecycle(m, LifecycleOut::Deactivated, now_us, out);
                self.schedule_at(
                    now_us + (self.life_s / 30).max(1) * 1_000_000,
                    m,
                    Action::Reactivate,
                );
            } else {
                let close_s = now_s + (self.life_s / 10).max(1);
                if close_s < self.markets[m as usize].close_s {
                    self.markets[m as usize].close_s = close_s;
                    self.lifecycle(
                        m,
                        LifecycleOut::CloseDateUpdated { close_ts: close_s },
                        now_us,
                        out,
                    );
                    self.schedule_at(close_s * 1_000_000, m, Action::Close);
                }
            }
        }
    }

    /// A combo market created while running (see [`super::combo`]).
    pub fn combo_tick(&mut self, now_us: i64, out: &mut Vec<Item>) {
        if self.markets.len() < u32::MAX as usize - 1 {
            self.create_combo(now_us, out);
        }
    }

    /// A burst of repeated pauses on one market: `deactivated`, `activated`, `deactivated`,
    /// `activated`, 2.5 s apart — two real changes of each kind within one minute.
    pub fn toggle_tick(&mut self, now_us: i64, out: &mut Vec<Item>) {
        let Some(m) = self.random_active_hot() else {
            return;
        };
        self.markets[m as usize].status = Status::Inactive;
        self.lifecycle(m, LifecycleOut::Deactivated, now_us, out);
        self.schedule_at(now_us + TOGGLE_STEP_US, m, Action::Reactivate);
        self.schedule_at(now_us + 2 * TOGGLE_STEP_US, m, Action::Deactivate);
        self.schedule_at(now_us + 3 * TOGGLE_STEP_US, m, Action::Reactivate);
    }

    /// An `event_fee_update` on `market_lifecycle_v2`: a random event's fee override is set, or
    /// cleared if it was set (REST `EventData` shows the override while it is set).
    pub fn fee_tick(&mut self, now_us: i64, out: &mut Vec<Item>) {
        let e = self.rng.below(u64::from(self.uni.events)) as u32;
        let ticker = self.uni.event_ticker(e);
        let set = !self.fee_overrides.remove(&e);
        if set {
            self.fee_overrides.insert(e);
        }
        let body = messages::fee_update_body(&ticker, set.then_some(FEE_OVERRIDE));
        let record = self.occ.is_some().then(|| {
            Record::Lifecycle(messages::event_record(
                "event_fee_update",
                "event_fee_update",
                &ticker,
                &body,
                now_us,
            ))
        });
        self.push(
            out,
            Channel::Lifecycle,
            "event_fee_update",
            u32::MAX,
            body,
            record,
            false,
        );
    }

    /// A market appears on REST already open, with no `created` or `activated` message, and a
    /// random active market closes early with no message — the cases only a REST reconcile
    /// finds.
    pub fn silent_tick(&mut self, now_us: i64) {
        let now_s = now_us.div_euclid(1_000_000);
        if self.markets.len() < u32::MAX as usize - 1 {
            let m = self.markets.len() as u32;
            let mut st = MarketState::created(now_s, self.life_s);
            st.open_s = now_s;
            st.status = Status::Active;
            let close_us = st.close_s * 1_000_000;
            self.markets.push(st);
            self.listed.push((m, now_us, None));
            self.schedule_at(close_us, m, Action::Close);
            self.make_hot(m);
        }
        if let Some(m) = self.random_active_hot() {
            let gap = (self.life_s / 20).max(1) * 1_000_000;
            let st = &mut self.markets[m as usize];
            st.status = Status::Closed;
            st.close_s = now_s;
            st.updated_us = now_us;
            self.schedule_at(now_us + gap, m, Action::Determine);
        }
    }
}
