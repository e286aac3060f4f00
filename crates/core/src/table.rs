//! The closed set of record tables. Table names in SQL and URLs come only from here, never
//! from input (a request naming an unknown table is rejected before any query is built).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Trades,
    Deltas,
    Snapshots,
    Tickers,
    Lifecycle,
    Gaps,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Trades,
        Table::Deltas,
        Table::Snapshots,
        Table::Tickers,
        Table::Lifecycle,
        Table::Gaps,
    ];

    /// The name used in URLs, metrics labels and as the base of SQL table names.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Trades => "trades",
            Table::Deltas => "deltas",
            Table::Snapshots => "snapshots",
            Table::Tickers => "tickers",
            Table::Lifecycle => "lifecycle",
            Table::Gaps => "gaps",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_rejected() {
        for t in Table::ALL {
            assert_eq!(Table::parse(t.name()), Some(t));
        }
        assert_eq!(Table::parse("trades; DROP TABLE x"), None);
    }
}
