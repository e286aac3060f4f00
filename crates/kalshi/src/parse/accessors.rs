//! Exact accessors on REST wire structs: current field first, legacy integer second, errors that
//! name the field. The structs keep Kalshi's text; these convert it on demand.

use super::convert::{count, price};
use super::error::{FieldError, RestParseError};
use crate::wire::rest::{ExchangeStatus, Market};
use kd_core::{Count, Price, TimestampUs};

fn rfc3339(
    text: Option<&str>,
    what: &'static str,
    field: &'static str,
) -> Result<Option<TimestampUs>, RestParseError> {
    text.map(|t| {
        TimestampUs::parse_rfc3339(t)
            .map_err(|source| RestParseError::field(what, FieldError::Unit { field, source }))
    })
    .transpose()
}

impl ExchangeStatus {
    /// `exchange_estimated_resume_time`, when given.
    pub fn estimated_resume_time(&self) -> Result<Option<TimestampUs>, RestParseError> {
        rfc3339(
            self.exchange_estimated_resume_time.as_deref(),
            "exchange_status",
            "exchange_estimated_resume_time",
        )
    }
}

macro_rules! market_price {
    ($(#[$doc:meta])* $name:ident, $dollars:ident, $cents:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<Option<Price>, RestParseError> {
            price(self.$dollars.as_deref(), stringify!($dollars), self.$cents, stringify!($cents))
                .map_err(|e| RestParseError::field("market", e))
        }
    };
}

macro_rules! market_count {
    ($(#[$doc:meta])* $name:ident, $fp:ident, $contracts:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<Option<Count>, RestParseError> {
            count(self.$fp.as_deref(), stringify!($fp), self.$contracts, stringify!($contracts))
                .map_err(|e| RestParseError::field("market", e))
        }
    };
}

macro_rules! market_time {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<Option<TimestampUs>, RestParseError> {
            rfc3339(self.$field.as_deref(), "market", stringify!($field))
        }
    };
}

impl Market {
    market_price!(/// Best YES bid.
        yes_bid, yes_bid_dollars, yes_bid);
    market_price!(/// Best YES ask.
        yes_ask, yes_ask_dollars, yes_ask);
    market_price!(/// Best NO bid.
        no_bid, no_bid_dollars, no_bid);
    market_price!(/// Best NO ask.
        no_ask, no_ask_dollars, no_ask);
    market_price!(/// Last traded YES price.
        last_price, last_price_dollars, last_price);
    market_price!(/// Settlement value once determined.
        settlement_value_price, settlement_value_dollars, settlement_value);
    market_count!(/// Contracts traded, all time.
        volume_count, volume_fp, volume);
    market_count!(/// Contracts traded in the last 24 h.
        volume_24h_count, volume_24h_fp, volume_24h);
    market_count!(/// Open interest.
        open_interest_count, open_interest_fp, open_interest);
    market_time!(/// `created_time`.
        created_at, created_time);
    market_time!(/// `updated_time`.
        updated_at, updated_time);
    market_time!(/// `open_time`.
        opens_at, open_time);
    market_time!(/// `close_time`.
        closes_at, close_time);
    market_time!(/// `expected_expiration_time`.
        expected_expiration_at, expected_expiration_time);
    market_time!(/// `latest_expiration_time`.
        latest_expiration_at, latest_expiration_time);
    market_time!(/// `settlement_ts`.
        settled_at, settlement_ts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_accessors_current_then_legacy() -> Result<(), RestParseError> {
        let m = Market {
            ticker: "M".into(),
            yes_bid_dollars: Some("0.2700".into()),
            yes_bid: Some(99),
            yes_ask: Some(28),
            volume_fp: Some("10155.43".into()),
            open_time: Some("2025-10-13T14:00:00Z".into()),
            close_time: Some("tomorrow".into()),
            ..Market::default()
        };
        assert_eq!(m.yes_bid()?.map(Price::units), Some(27_000));
        assert_eq!(m.yes_ask()?.map(Price::units), Some(28_000));
        assert_eq!(m.no_bid()?, None);
        assert_eq!(m.volume_count()?.map(Count::hundredths), Some(1_015_543));
        assert_eq!(m.opens_at()?.map(TimestampUs::secs), Some(1_760_364_000));
        let err = m.closes_at().err();
        assert!(matches!(
            err,
            Some(RestParseError::Field {
                what: "market",
                field: "close_time",
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn resume_time() -> Result<(), RestParseError> {
        let s = ExchangeStatus {
            exchange_active: false,
            trading_active: false,
            exchange_estimated_resume_time: Some("2026-11-28T08:00:00Z".into()),
            intra_exchange_transfers_active: None,
            exchange_index_statuses: None,
        };
        assert_eq!(
            s.estimated_resume_time()?.map(TimestampUs::micros),
            Some(1_795_852_800_000_000)
        );
        Ok(())
    }
}
