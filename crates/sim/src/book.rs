//! One market's order book: both sides are bids (YES bids and NO bids), in integer units.
//!
//! Levels are kept in small sorted vectors: a book has tens of levels, where a vector beats a
//! tree both in speed and in memory — and the simulator may hold thousands of hot books.

use kd_core::records::Level;
use kd_core::{Count, Price, Side};

/// Price levels of one side, ascending by price: `(price units, size hundredths)`, size > 0.
pub type Levels = Vec<(i64, i64)>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    pub yes: Levels,
    pub no: Levels,
}

impl Book {
    pub fn side(&self, side: Side) -> &Levels {
        match side {
            Side::Yes => &self.yes,
            Side::No => &self.no,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Levels {
        match side {
            Side::Yes => &mut self.yes,
            Side::No => &mut self.no,
        }
    }

    /// Best (highest) bid of a side.
    pub fn best(&self, side: Side) -> Option<(i64, i64)> {
        self.side(side).last().copied()
    }

    /// Size resting at a price (0 when none).
    pub fn size_at(&self, side: Side, price: i64) -> i64 {
        let levels = self.side(side);
        levels
            .binary_search_by_key(&price, |l| l.0)
            .map_or(0, |i| levels[i].1)
    }

    /// Applies a size change; a level that reaches zero disappears. Returns false (and changes
    /// nothing) if the change would make a level negative.
    pub fn apply(&mut self, side: Side, price: i64, delta: i64) -> bool {
        let levels = self.side_mut(side);
        match levels.binary_search_by_key(&price, |l| l.0) {
            Ok(i) => {
                let size = levels[i].1 + delta;
                if size < 0 {
                    return false;
                }
                if size == 0 {
                    levels.remove(i);
                } else {
                    levels[i].1 = size;
                }
                true
            }
            Err(i) => {
                if delta < 0 {
                    return false;
                }
                if delta > 0 {
                    levels.insert(i, (price, delta));
                }
                true
            }
        }
    }

    /// The side as kd-core levels (ascending by price).
    pub fn levels(&self, side: Side) -> Vec<Level> {
        self.side(side)
            .iter()
            .filter_map(|&(p, s)| {
                Some(Level {
                    price: Price::new(p).ok()?,
                    size: Count::new(s),
                })
            })
            .collect()
    }

    /// Builds a book from kd-core levels (what a client rebuilds), for comparisons.
    pub fn from_levels(yes: &[Level], no: &[Level]) -> Book {
        let conv = |ls: &[Level]| {
            let mut v: Levels = ls
                .iter()
                .map(|l| (l.price.units(), l.size.hundredths()))
                .collect();
            v.sort_unstable();
            v
        };
        Book {
            yes: conv(yes),
            no: conv(no),
        }
    }

    /// The `[["0.5200","12.50"], …]` pairs of one side, best-last (ascending) like Kalshi.
    pub fn write_pairs(&self, side: Side, depth: usize, out: &mut String) {
        use std::fmt::Write;
        let levels = self.side(side);
        let start = if depth == 0 {
            0
        } else {
            levels.len().saturating_sub(depth)
        };
        out.push('[');
        for (i, &(p, s)) in levels[start..].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let price = Price::new(p).map(Price::to_dollars).unwrap_or_default();
            let _ = write!(out, "[\"{price}\",\"{}\"]", Count::new(s).to_fp());
        }
        out.push(']');
    }

    /// The NO side's pairs in YES-leg pricing (`use_yes_price`): a NO bid at p is written at
    /// 1 − p; pairs ascending by the price written, like every other list.
    pub fn write_pairs_yes_leg(&self, out: &mut String) {
        use std::fmt::Write;
        out.push('[');
        for (i, &(p, s)) in self.no.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let price = Price::new(100_000 - p)
                .map(Price::to_dollars)
                .unwrap_or_default();
            let _ = write!(out, "[\"{price}\",\"{}\"]", Count::new(s).to_fp());
        }
        out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_adds_removes_and_refuses_negative() {
        let mut b = Book::default();
        assert!(b.apply(Side::Yes, 40_000, 500));
        assert!(b.apply(Side::Yes, 41_000, 100));
        assert_eq!(b.best(Side::Yes), Some((41_000, 100)));
        assert!(!b.apply(Side::Yes, 41_000, -200));
        assert!(b.apply(Side::Yes, 41_000, -100));
        assert_eq!(b.best(Side::Yes), Some((40_000, 500)));
        assert!(!b.apply(Side::No, 1, -1));
        let mut s = String::new();
        b.write_pairs(Side::Yes, 0, &mut s);
        assert_eq!(s, r#"[["0.4000","5.00"]]"#);
        assert!(b.apply(Side::No, 30_000, 100));
        assert!(b.apply(Side::No, 35_000, 200));
        let mut s = String::new();
        b.write_pairs_yes_leg(&mut s);
        assert_eq!(s, r#"[["0.6500","2.00"],["0.7000","1.00"]]"#);
    }
}
