//! Metadata rows (series, events, markets) and the production market status.
//!
//! The store keeps a few columns people query by, plus the full Kalshi object as JSON text
//! (`raw`), so nothing Kalshi sends is lost when it adds fields.

use kd_core::TimestampUs;

/// The 4-value production status of a market, derived from Kalshi's status.
///
/// | Kalshi `status` | production |
/// |---|---|
/// | `initialized`, `unopened` | `unopened` |
/// | `active`, `open` | `open` |
/// | `inactive`, `paused`, `closed`, `determined`, `disputed`, `amended` | `closed` |
/// | `finalized`, `settled` | `settled` |
///
/// `inactive` (trading paused by the exchange) counts as closed: no orders are accepted; the
/// market returns to `open` when Kalshi reactivates it. Anything else maps to `None` (stored as
/// NULL, counted as an error) — a new Kalshi status is never guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductionStatus {
    Unopened,
    Open,
    Closed,
    Settled,
}

impl ProductionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProductionStatus::Unopened => "unopened",
            ProductionStatus::Open => "open",
            ProductionStatus::Closed => "closed",
            ProductionStatus::Settled => "settled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unopened" => Some(ProductionStatus::Unopened),
            "open" => Some(ProductionStatus::Open),
            "closed" => Some(ProductionStatus::Closed),
            "settled" => Some(ProductionStatus::Settled),
            _ => None,
        }
    }

    /// Maps a Kalshi market status (see the table above).
    pub fn from_kalshi(status: &str) -> Option<Self> {
        match status {
            "initialized" | "unopened" => Some(ProductionStatus::Unopened),
            "active" | "open" => Some(ProductionStatus::Open),
            "inactive" | "paused" | "closed" | "determined" | "disputed" | "amended" => {
                Some(ProductionStatus::Closed)
            }
            "finalized" | "settled" => Some(ProductionStatus::Settled),
            _ => None,
        }
    }
}

/// A series (`GET /series`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRow {
    pub ticker: String,
    pub title: Option<String>,
    pub category: Option<String>,
    pub frequency: Option<String>,
    /// The Kalshi object as JSON.
    pub raw: String,
}

/// An event (`GET /events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub event_ticker: String,
    pub series_ticker: Option<String>,
    pub title: Option<String>,
    pub category: Option<String>,
    pub raw: String,
}

/// A market (`GET /markets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketRow {
    pub ticker: String,
    pub event_ticker: Option<String>,
    pub title: Option<String>,
    /// Kalshi's status as sent (`active`, `determined`, …).
    pub kalshi_status: String,
    /// Derived with [`ProductionStatus::from_kalshi`]; `None` for an unknown Kalshi status.
    pub status: Option<ProductionStatus>,
    pub open_time: Option<TimestampUs>,
    pub close_time: Option<TimestampUs>,
    /// `yes` / `no` / … once determined.
    pub result: Option<String>,
    pub raw: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kalshi_statuses_map_to_four_values() {
        use ProductionStatus::*;
        for (k, p) in [
            ("initialized", Unopened),
            ("unopened", Unopened),
            ("active", Open),
            ("open", Open),
            ("inactive", Closed),
            ("closed", Closed),
            ("determined", Closed),
            ("disputed", Closed),
            ("amended", Closed),
            ("finalized", Settled),
            ("settled", Settled),
        ] {
            assert_eq!(ProductionStatus::from_kalshi(k), Some(p), "{k}");
            assert_eq!(ProductionStatus::parse(p.as_str()), Some(p));
        }
        assert_eq!(ProductionStatus::from_kalshi("brand_new"), None);
    }
}
