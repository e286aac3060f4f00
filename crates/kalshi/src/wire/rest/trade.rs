//! Trades (`GET /markets/trades`, `/historical/trades`).

use super::next_cursor;
use crate::wire::scalar::null_as_default;
use serde::{Deserialize, Serialize};

/// A trade from `GET /markets/trades` or `GET /historical/trades`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestTrade {
    pub trade_id: String,
    pub ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_price_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_price_dollars: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker_outcome_side: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker_book_side: Option<String>,
    /// Deprecated by Kalshi.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker_side: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_block_trade: Option<bool>,
    /// RFC 3339, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// Legacy integer cents / whole contracts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// `GET /markets/trades` and `GET /historical/trades`: one page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradesPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub trades: Vec<RestTrade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl TradesPage {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}

/// `GET /historical/cutoff` (`GetHistoricalCutoffResponse`): where the live tier ends. All
/// three are RFC 3339 instants; the trade cutoff is the one the platform reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoricalCutoff {
    /// Markets settled before it are only on `/historical/markets`.
    #[serde(default)]
    pub market_settled_ts: String,
    /// Trades filled before it are only on `/historical/trades`.
    #[serde(default)]
    pub trades_created_ts: String,
    /// Orders cancelled or executed before it are only on `/historical/orders`.
    #[serde(default)]
    pub orders_updated_ts: String,
}

impl HistoricalCutoff {
    /// `trades_created_ts` as an instant.
    pub fn trades_created(&self) -> Result<kd_core::TimestampUs, kd_core::units::UnitError> {
        kd_core::TimestampUs::parse_rfc3339(&self.trades_created_ts)
    }
}
