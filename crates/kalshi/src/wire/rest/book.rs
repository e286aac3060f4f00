//! REST order books (`/markets/{ticker}/orderbook`, `/markets/orderbooks`).

use crate::wire::scalar::{RestLevel, null_as_default};
use serde::{Deserialize, Serialize};

/// An order book as REST sends it: both sides are bids, `[price, count]` pairs.
///
/// Current: `yes_dollars`/`no_dollars` with `[dollars, count_fp]` strings. Legacy (`orderbook`
/// instead of `orderbook_fp`): `yes`/`no` with integer cents and counts. A side may be absent or
/// `null`; both mean no levels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderbookFp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_dollars: Option<Vec<RestLevel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_dollars: Option<Vec<RestLevel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes: Option<Vec<RestLevel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no: Option<Vec<RestLevel>>,
}

/// `GET /markets/{ticker}/orderbook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook_fp: Option<OrderbookFp>,
    /// Legacy name of the same object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook: Option<OrderbookFp>,
}

/// One entry of `GET /markets/orderbooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketOrderbook {
    pub ticker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook_fp: Option<OrderbookFp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook: Option<OrderbookFp>,
}

/// `GET /markets/orderbooks?tickers=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbooksResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub orderbooks: Vec<MarketOrderbook>,
}

impl OrderbookResponse {
    /// The book, whichever name it came under (`orderbook_fp` preferred).
    pub fn book(&self) -> Option<&OrderbookFp> {
        self.orderbook_fp.as_ref().or(self.orderbook.as_ref())
    }
}

impl MarketOrderbook {
    /// The book, whichever name it came under (`orderbook_fp` preferred).
    pub fn book(&self) -> Option<&OrderbookFp> {
        self.orderbook_fp.as_ref().or(self.orderbook.as_ref())
    }
}
