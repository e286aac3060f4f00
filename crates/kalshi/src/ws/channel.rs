//! The channels of Kalshi's WebSocket that a capture subscribes to.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One WebSocket channel. The names are Kalshi's; a channel this crate does not know is kept
/// as [`Channel::Other`] (the exchange adds channels, and a reply naming one must not fail).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Order-book snapshots and deltas; needs market tickers.
    OrderbookDelta,
    /// Public trades (all markets when no tickers are given).
    Trade,
    /// Top-of-book and volume (all markets when no tickers are given).
    Ticker,
    /// Lifecycle of ordinary markets and events (no market filter).
    MarketLifecycleV2,
    /// Lifecycle of multivariate (combo) markets, which left `market_lifecycle_v2` in March
    /// 2026 (WIRE.md, "2026 changes").
    MultivariateMarketLifecycle,
    /// Any other name, as sent.
    Other(String),
}

impl Channel {
    /// Kalshi's name of the channel.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::OrderbookDelta => "orderbook_delta",
            Channel::Trade => "trade",
            Channel::Ticker => "ticker",
            Channel::MarketLifecycleV2 => "market_lifecycle_v2",
            Channel::MultivariateMarketLifecycle => "multivariate_market_lifecycle",
            Channel::Other(name) => name,
        }
    }

    /// The channel of a wire name; never fails (unknown names become [`Channel::Other`]).
    pub fn parse(name: &str) -> Channel {
        match name {
            "orderbook_delta" => Channel::OrderbookDelta,
            "trade" => Channel::Trade,
            "ticker" => Channel::Ticker,
            "market_lifecycle_v2" => Channel::MarketLifecycleV2,
            "multivariate_market_lifecycle" => Channel::MultivariateMarketLifecycle,
            other => Channel::Other(other.to_owned()),
        }
    }

    /// Whether `subscribe` must name markets for this channel (WIRE.md: required for
    /// `orderbook_delta`, optional for the rest).
    pub fn needs_markets(&self) -> bool {
        matches!(self, Channel::OrderbookDelta)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Channel::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in [
            Channel::OrderbookDelta,
            Channel::Trade,
            Channel::Ticker,
            Channel::MarketLifecycleV2,
            Channel::MultivariateMarketLifecycle,
            Channel::Other("fill".into()),
        ] {
            assert_eq!(Channel::parse(c.as_str()), c);
        }
        assert!(Channel::OrderbookDelta.needs_markets());
        assert!(!Channel::Trade.needs_markets());
    }

    #[test]
    fn serde_uses_the_wire_name() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::to_string(&Channel::MarketLifecycleV2)?,
            "\"market_lifecycle_v2\""
        );
        let c: Channel = serde_json::from_str("\"communications\"")?;
        assert_eq!(c, Channel::Other("communications".into()));
        Ok(())
    }
}
