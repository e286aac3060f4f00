//! Per-market state, kept small: a million cold markets cost a few tens of bytes each; only the
//! hot working set carries an order book.

use crate::book::Book;
use crate::rng::Rng;
use crate::universe::Universe;
use kd_core::Side;
use serde::{Deserialize, Serialize};

/// Kalshi's market status values, as REST returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    Initialized,
    Active,
    Inactive,
    Closed,
    Determined,
    Finalized,
}

impl Status {
    /// The `status` value in REST market objects.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Initialized => "initialized",
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Closed => "closed",
            Status::Determined => "determined",
            Status::Finalized => "finalized",
        }
    }

    /// Whether this status passes a `status=` filter of `GET /markets` (whose values differ
    /// from the returned ones: unopened, open, paused, closed, settled). `None`: unknown filter.
    pub fn matches_filter(self, filter: &str) -> Option<bool> {
        Some(match filter {
            "unopened" => self == Status::Initialized,
            "open" => self == Status::Active,
            "paused" => self == Status::Inactive,
            "closed" => matches!(self, Status::Closed | Status::Determined),
            "settled" => self == Status::Finalized,
            _ => return None,
        })
    }

    /// The event-level status an event has when its market has this one.
    pub const fn event_filter(self) -> &'static str {
        match self {
            Status::Initialized => "unopened",
            Status::Active | Status::Inactive => "open",
            Status::Closed | Status::Determined => "closed",
            Status::Finalized => "settled",
        }
    }
}

/// A market's order-book life: present only while the market is (or was) hot.
#[derive(Debug, Clone, Default)]
pub struct Hot {
    pub book: Book,
    /// Last exchange timestamp (µs) used on this market: the next one is strictly greater.
    pub last_ts: i64,
    /// Changed since the last ground-truth check point.
    pub dirty: bool,
    /// Cached so the hot path formats no ticker or id.
    pub ticker: String,
    pub market_id: String,
}

#[derive(Debug, Clone)]
pub struct MarketState {
    pub status: Status,
    /// `Some(Side::Yes)` once determined yes, …
    pub result: Option<Side>,
    pub created_s: i64,
    pub open_s: i64,
    pub close_s: i64,
    pub determined_s: i64,
    pub settled_s: i64,
    /// Last metadata change (µs), for `updated_time` and `min_updated_ts`.
    pub updated_us: i64,
    /// Units of the last trade price (0: none yet).
    pub last_price: i64,
    pub previous_price: i64,
    /// Hundredths of a contract.
    pub volume: i64,
    pub open_interest: i64,
    pub hot: Option<Box<Hot>>,
    /// A multivariate (combo) market: its index in the exchange's combo table.
    pub combo: Option<u32>,
}

/// What the scheduler does when a market's time comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    Open,
    Close,
    Determine,
    Settle,
    Reactivate,
    /// A pause of an active market (the repeated-toggle bursts).
    Deactivate,
}

impl MarketState {
    /// The state of an initial market `m` at start (deterministic from the seed), and its first
    /// scheduled action.
    pub fn initial(
        seed: u64,
        m: u32,
        now_s: i64,
        life_s: i64,
    ) -> (MarketState, Option<(i64, Action)>) {
        let mut r = Rng::derive(seed, 0x1000_0000_0000 | u64::from(m));
        let u = r.below(100);
        let life = life_s.max(1);
        let mut st = MarketState {
            status: Status::Active,
            result: None,
            created_s: now_s - 86_400 * (1 + r.range_i64(0, 30)),
            open_s: 0,
            close_s: 0,
            determined_s: 0,
            settled_s: 0,
            updated_us: 0,
            last_price: 0,
            previous_price: 0,
            volume: 0,
            open_interest: 0,
            hot: None,
            combo: None,
        };
        st.open_s = st.created_s + 3_600;
        let next = if u < 2 {
            st.status = Status::Initialized;
            st.created_s = now_s - 60;
            st.open_s = now_s + r.range_i64(life / 4, life);
            st.close_s = st.open_s + life;
            Some((st.open_s, Action::Open))
        } else if u < 5 {
            st.status = Status::Finalized;
            st.close_s = now_s - r.range_i64(life, 30 * life);
            st.determined_s = st.close_s + 60;
            st.settled_s = st.determined_s + 60;
            st.result = Some(if r.below(2) == 0 { Side::Yes } else { Side::No });
            None
        } else if u < 6 {
            st.status = Status::Closed;
            st.close_s = now_s - 1;
            Some((now_s + (life / 20).max(1), Action::Determine))
        } else {
            st.close_s = if u < 11 {
                now_s + r.range_i64(life / 2, 2 * life)
            } else {
                now_s + r.range_i64(2 * life, 1_000 * life)
            };
            Some((st.close_s, Action::Close))
        };
        if st.open_s > st.close_s {
            st.open_s = st.close_s - 60;
        }
        st.updated_us = st.created_s * 1_000_000;
        st.last_price = 1_000 * (20 + r.range_i64(0, 60));
        st.previous_price = st.last_price;
        st.volume = 100 * r.range_i64(0, 100_000);
        st.open_interest = st.volume / 3;
        (st, next)
    }

    /// A market created while running.
    pub fn created(now_s: i64, life_s: i64) -> MarketState {
        let open_s = now_s + (life_s / 10).max(1);
        MarketState {
            status: Status::Initialized,
            result: None,
            created_s: now_s,
            open_s,
            close_s: open_s + life_s.max(2),
            determined_s: 0,
            settled_s: 0,
            updated_us: now_s * 1_000_000,
            last_price: 0,
            previous_price: 0,
            volume: 0,
            open_interest: 0,
            hot: None,
            combo: None,
        }
    }
}

/// The book a market has when it first becomes hot (deterministic from the seed).
pub fn initial_book(seed: u64, uni: &Universe, m: u32) -> Book {
    let mut r = Rng::derive(seed, 0x2000_0000_0000 | u64::from(m));
    let step = uni.ticks(m).step();
    let mid = (r.range_i64(15_000, 85_000) / step) * step;
    let mut book = Book::default();
    for (side, best) in [
        (Side::Yes, mid - step * (1 + r.range_i64(0, 1))),
        (Side::No, 100_000 - mid - step * (1 + r.range_i64(0, 1))),
    ] {
        let mut price = best;
        for _ in 0..r.range_i64(3, 12) {
            if price < step {
                break;
            }
            book.apply(side, price, random_size(&mut r));
            price -= step * r.range_i64(1, 3);
        }
    }
    book
}

/// A resting size in hundredths: mostly whole contracts, some fractional (`"12.50"`).
pub fn random_size(r: &mut Rng) -> i64 {
    let whole = 100 * r.range_i64(1, 500);
    if r.below(4) == 0 {
        whole + r.range_i64(1, 99)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_books_do_not_cross() {
        let uni = Universe::new(2, 10);
        for m in 0..500 {
            let b = initial_book(9, &uni, m);
            if let (Some(y), Some(n)) = (b.best(Side::Yes), b.best(Side::No)) {
                assert!(y.0 + n.0 < 100_000, "market {m}");
            }
            assert!(
                b.yes
                    .iter()
                    .chain(b.no.iter())
                    .all(|l| l.1 > 0 && l.0 > 0 && l.0 < 100_000)
            );
        }
    }

    #[test]
    fn status_filters_differ_from_values() {
        assert_eq!(Status::Active.matches_filter("open"), Some(true));
        assert_eq!(Status::Active.matches_filter("active"), None);
        assert_eq!(Status::Finalized.matches_filter("settled"), Some(true));
    }
}
