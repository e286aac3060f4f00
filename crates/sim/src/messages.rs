//! The `msg` objects of data messages, written by hand (this is the hot path), and the records
//! a correct gatherer makes of them — the ground truth.
//!
//! Lifecycle bodies are written with their keys already sorted, so the wire text *is* the
//! canonical payload whichever way a reader re-serialises it.

use kd_core::records::{
    LIFECYCLE_BUCKET_US, Lifecycle, OrderbookDelta, Ticker, Trade, TradeSource, WirePos,
};
use kd_core::{Count, Price, Side, TimestampUs};
use std::fmt::Write;

fn dollars(units: i64) -> String {
    Price::new(units.clamp(0, 100_000))
        .map(Price::to_dollars)
        .unwrap_or_default()
}

fn price(units: i64) -> Price {
    Price::new(units.clamp(0, 100_000)).unwrap_or(Price::ZERO)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// The `"price_dollars":"…"` member of a delta body, as written (YES-leg repricing swaps it).
pub fn price_field(units: i64) -> String {
    format!("\"price_dollars\":\"{}\"", dollars(units))
}

/// `orderbook_delta` msg.
pub fn delta_body(
    ticker: &str,
    market_id: &str,
    side: Side,
    price_units: i64,
    delta: i64,
    ts_us: i64,
) -> String {
    let mut out = String::with_capacity(220);
    let _ = write!(
        out,
        "{{\"market_ticker\":\"{ticker}\",\"market_id\":\"{market_id}\",\"price_dollars\":\"{}\",\"delta_fp\":\"{}\",\"side\":\"{}\",\"ts\":\"{}\",\"ts_ms\":{}}}",
        dollars(price_units),
        Count::new(delta).to_fp(),
        side.as_str(),
        TimestampUs::from_micros(ts_us).to_rfc3339(),
        ts_us.div_euclid(1_000)
    );
    out
}

pub fn delta_record(
    ticker: &str,
    side: Side,
    price_units: i64,
    delta: i64,
    ts_us: i64,
    occurrence: u32,
) -> OrderbookDelta {
    let ts = TimestampUs::from_micros(ts_us);
    OrderbookDelta {
        ticker: ticker.to_string(),
        exchange_ts: ts,
        side,
        price: price(price_units),
        delta: Count::new(delta),
        occurrence,
        received_at: ts,
        pos: WirePos::default(),
    }
}

/// A trade as published (`ts_ms` precision: `ts_us` is a whole millisecond).
#[derive(Debug, Clone)]
pub struct TradeOut<'a> {
    pub trade_id: &'a str,
    pub ticker: &'a str,
    pub market_id: &'a str,
    pub yes_price: i64,
    pub count: i64,
    pub taker: Side,
    pub ts_us: i64,
}

pub fn trade_body(t: &TradeOut<'_>) -> String {
    let mut out = String::with_capacity(320);
    let book_side = match t.taker {
        Side::Yes => "bid",
        Side::No => "ask",
    };
    let _ = write!(
        out,
        "{{\"trade_id\":\"{}\",\"market_ticker\":\"{}\",\"market_id\":\"{}\",\"yes_price_dollars\":\"{}\",\"no_price_dollars\":\"{}\",\"count_fp\":\"{}\",\"taker_side\":\"{}\",\"taker_outcome_side\":\"{}\",\"taker_book_side\":\"{book_side}\",\"is_block_trade\":false,\"ts\":{},\"ts_ms\":{}}}",
        t.trade_id,
        t.ticker,
        t.market_id,
        dollars(t.yes_price),
        dollars(100_000 - t.yes_price),
        Count::new(t.count).to_fp(),
        t.taker.as_str(),
        t.taker.as_str(),
        t.ts_us.div_euclid(1_000_000),
        t.ts_us.div_euclid(1_000)
    );
    out
}

pub fn trade_record(t: &TradeOut<'_>) -> Trade {
    let ts = TimestampUs::from_micros(t.ts_us.div_euclid(1_000) * 1_000);
    Trade {
        trade_id: t.trade_id.to_string(),
        ticker: t.ticker.to_string(),
        exchange_ts: ts,
        yes_price: price(t.yes_price),
        no_price: price(100_000 - t.yes_price),
        count: Count::new(t.count),
        taker_side: Some(t.taker),
        is_block_trade: false,
        source: TradeSource::Ws,
        received_at: ts,
        pos: WirePos::default(),
    }
}

/// The values a ticker message carries (units and hundredths).
#[derive(Debug, Clone, Copy)]
pub struct TickerValues {
    pub price: i64,
    pub yes_bid: i64,
    pub yes_ask: i64,
    pub volume: i64,
    pub open_interest: i64,
    pub yes_bid_size: i64,
    pub yes_ask_size: i64,
    pub last_trade_size: i64,
    pub ts_us: i64,
}

impl TickerValues {
    fn dollar_volume(&self) -> i64 {
        self.volume / 100
    }

    fn dollar_open_interest(&self) -> i64 {
        self.open_interest / 100
    }
}

pub fn ticker_body(ticker: &str, market_id: &str, v: &TickerValues) -> String {
    let mut out = String::with_capacity(420);
    let ts = TimestampUs::from_micros(v.ts_us);
    let _ = write!(
        out,
        "{{\"market_id\":\"{market_id}\",\"market_ticker\":\"{ticker}\",\"price_dollars\":\"{}\",\"yes_bid_dollars\":\"{}\",\"yes_ask_dollars\":\"{}\",\"volume_fp\":\"{}\",\"open_interest_fp\":\"{}\",\"dollar_volume\":{},\"dollar_open_interest\":{},\"yes_bid_size_fp\":\"{}\",\"yes_ask_size_fp\":\"{}\",\"last_trade_size_fp\":\"{}\",\"ts\":{},\"ts_ms\":{},\"time\":\"{}\"}}",
        dollars(v.price),
        dollars(v.yes_bid),
        dollars(v.yes_ask),
        Count::new(v.volume).to_fp(),
        Count::new(v.open_interest).to_fp(),
        v.dollar_volume(),
        v.dollar_open_interest(),
        Count::new(v.yes_bid_size).to_fp(),
        Count::new(v.yes_ask_size).to_fp(),
        Count::new(v.last_trade_size).to_fp(),
        ts.secs(),
        ts.millis(),
        ts.to_rfc3339_secs()
    );
    out
}

pub fn ticker_record(ticker: &str, v: &TickerValues) -> Ticker {
    let ts = TimestampUs::from_micros(v.ts_us.div_euclid(1_000) * 1_000);
    Ticker {
        ticker: ticker.to_string(),
        exchange_ts: ts,
        price: Some(price(v.price)),
        yes_bid: Some(price(v.yes_bid)),
        yes_ask: Some(price(v.yes_ask)),
        volume: Some(Count::new(v.volume)),
        open_interest: Some(Count::new(v.open_interest)),
        dollar_volume: Some(v.dollar_volume()),
        dollar_open_interest: Some(v.dollar_open_interest()),
        yes_bid_size: Some(Count::new(v.yes_bid_size)),
        yes_ask_size: Some(Count::new(v.yes_ask_size)),
        last_trade_size: Some(Count::new(v.last_trade_size)),
        received_at: ts,
        pos: WirePos::default(),
    }
}

/// Static metadata a `created` lifecycle message carries.
#[derive(Debug, Clone)]
pub struct CreatedMeta {
    pub name: String,
    pub title: String,
    pub yes_sub_title: String,
    pub no_sub_title: String,
    pub rules_primary: String,
    pub event_ticker: String,
    pub expected_expiration_ts: i64,
    pub floor_strike: u32,
    pub open_ts: i64,
    pub close_ts: i64,
    pub price_level_structure: &'static str,
}

/// A `market_lifecycle_v2` msg, keys sorted.
#[derive(Debug, Clone)]
pub enum LifecycleOut {
    Created(Box<CreatedMeta>),
    Activated,
    Deactivated,
    CloseDateUpdated { close_ts: i64 },
    Determined { result: Side, determination_ts: i64 },
    Settled { settled_ts: i64 },
}

impl LifecycleOut {
    pub const fn event_type(&self) -> &'static str {
        match self {
            LifecycleOut::Created(_) => "created",
            LifecycleOut::Activated => "activated",
            LifecycleOut::Deactivated => "deactivated",
            LifecycleOut::CloseDateUpdated { .. } => "close_date_updated",
            LifecycleOut::Determined { .. } => "determined",
            LifecycleOut::Settled { .. } => "settled",
        }
    }

    pub fn body(&self, ticker: &str) -> String {
        let t = json_str(ticker);
        match self {
            LifecycleOut::Created(m) => format!(
                "{{\"additional_metadata\":{{\"can_close_early\":true,\"event_ticker\":{},\"expected_expiration_ts\":{},\"floor_strike\":{},\"name\":{},\"no_sub_title\":{},\"rules_primary\":{},\"rules_secondary\":\"\",\"strike_type\":\"greater\",\"title\":{},\"yes_sub_title\":{}}},\"close_ts\":{},\"event_type\":\"created\",\"market_ticker\":{t},\"open_ts\":{},\"price_level_structure\":\"{}\"}}",
                json_str(&m.event_ticker),
                m.expected_expiration_ts,
                m.floor_strike,
                json_str(&m.name),
                json_str(&m.no_sub_title),
                json_str(&m.rules_primary),
                json_str(&m.title),
                json_str(&m.yes_sub_title),
                m.close_ts,
                m.open_ts,
                m.price_level_structure
            ),
            LifecycleOut::Activated => {
                format!(
                    "{{\"event_type\":\"activated\",\"is_deactivated\":false,\"market_ticker\":{t}}}"
                )
            }
            LifecycleOut::Deactivated => {
                format!(
                    "{{\"event_type\":\"deactivated\",\"is_deactivated\":true,\"market_ticker\":{t}}}"
                )
            }
            LifecycleOut::CloseDateUpdated { close_ts } => {
                format!(
                    "{{\"close_ts\":{close_ts},\"event_type\":\"close_date_updated\",\"market_ticker\":{t}}}"
                )
            }
            LifecycleOut::Determined {
                result,
                determination_ts,
            } => format!(
                "{{\"determination_ts\":{determination_ts},\"event_type\":\"determined\",\"market_ticker\":{t},\"result\":\"{}\",\"settlement_value\":\"{}\"}}",
                result.as_str(),
                if *result == Side::Yes {
                    "1.0000"
                } else {
                    "0.0000"
                }
            ),
            LifecycleOut::Settled { settled_ts } => {
                format!(
                    "{{\"event_type\":\"settled\",\"market_ticker\":{t},\"settled_ts\":{settled_ts}}}"
                )
            }
        }
    }

    /// The exchange time a gatherer files this message under (kd-core's lifecycle rule):
    /// the payload's own time for the event type, else the publish time bucketed.
    pub fn exchange_ts(&self, publish_us: i64) -> TimestampUs {
        let secs = |s: i64| TimestampUs::from_micros(s.saturating_mul(1_000_000));
        match self {
            LifecycleOut::Created(m) => secs(m.open_ts),
            LifecycleOut::CloseDateUpdated { close_ts } => secs(*close_ts),
            LifecycleOut::Determined {
                determination_ts, ..
            } => secs(*determination_ts),
            LifecycleOut::Settled { settled_ts } => secs(*settled_ts),
            LifecycleOut::Activated | LifecycleOut::Deactivated => TimestampUs::from_micros(
                publish_us.div_euclid(LIFECYCLE_BUCKET_US) * LIFECYCLE_BUCKET_US,
            ),
        }
    }

    pub fn record(&self, ticker: &str, body: &str, publish_us: i64) -> Lifecycle {
        self.record_as("market_lifecycle_v2", ticker, body, publish_us)
    }

    /// The record, with `kind` the message type it came in (`market_lifecycle_v2`, or
    /// `multivariate_market_lifecycle` for a combo market).
    pub fn record_as(&self, kind: &str, ticker: &str, body: &str, publish_us: i64) -> Lifecycle {
        let ts = self.exchange_ts(publish_us);
        Lifecycle {
            subject: ticker.to_string(),
            kind: kind.to_string(),
            event_type: self.event_type().to_string(),
            exchange_ts: ts,
            payload: canonical(body),
            // In the ground truth, when the exchange published it: a lifecycle record's own
            // time is the event's (e.g. a future open time), and `verify` needs the instant
            // the message was sent to judge it against the gatherers' gap windows.
            received_at: TimestampUs::from_micros(publish_us),
            pos: WirePos::default(),
        }
    }
}

/// An `event_lifecycle` msg (an event was created), keys sorted (asyncapi
/// `eventLifecyclePayload`).
pub fn event_created_body(event_ticker: &str, series_ticker: &str, title: &str) -> String {
    format!(
        "{{\"collateral_return_type\":\"\",\"event_ticker\":{},\"exchange_index\":0,\"series_ticker\":{},\"subtitle\":\"\",\"title\":{}}}",
        json_str(event_ticker),
        json_str(series_ticker),
        json_str(title)
    )
}

/// An `event_fee_update` msg, keys sorted (asyncapi `eventFeeUpdatePayload`): the override set
/// to `(fee type, multiplier)`, or cleared (both `null`).
pub fn fee_update_body(event_ticker: &str, set: Option<(&str, u32)>) -> String {
    match set {
        Some((fee_type, mult)) => format!(
            "{{\"event_ticker\":{},\"fee_multiplier_override\":{mult},\"fee_type_override\":{}}}",
            json_str(event_ticker),
            json_str(fee_type)
        ),
        None => format!(
            "{{\"event_ticker\":{},\"fee_multiplier_override\":null,\"fee_type_override\":null}}",
            json_str(event_ticker)
        ),
    }
}

/// The record of a message about an event (`event_lifecycle`, `event_fee_update`): it carries
/// no time of its own, so it is filed under the publish minute (kd-core's lifecycle rule);
/// `received_at` keeps the publish instant, as for market lifecycle records.
pub fn event_record(
    kind: &str,
    event_type: &str,
    event_ticker: &str,
    body: &str,
    publish_us: i64,
) -> Lifecycle {
    Lifecycle {
        subject: event_ticker.to_string(),
        kind: kind.to_string(),
        event_type: event_type.to_string(),
        exchange_ts: TimestampUs::from_micros(
            publish_us.div_euclid(LIFECYCLE_BUCKET_US) * LIFECYCLE_BUCKET_US,
        ),
        payload: canonical(body),
        received_at: TimestampUs::from_micros(publish_us),
        pos: WirePos::default(),
    }
}

/// Re-serialises JSON with object keys sorted at every depth (the canonical payload form).
pub fn canonical(json: &str) -> String {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => sort(v).to_string(),
        Err(_) => json.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_bodies_are_already_canonical() {
        let meta = CreatedMeta {
            name: "x".into(),
            title: "t \"q\"".into(),
            yes_sub_title: "y".into(),
            no_sub_title: "n".into(),
            rules_primary: "r".into(),
            event_ticker: "E".into(),
            expected_expiration_ts: 3,
            floor_strike: 5,
            open_ts: 1,
            close_ts: 2,
            price_level_structure: "linear_cent",
        };
        for l in [
            LifecycleOut::Created(Box::new(meta)),
            LifecycleOut::Activated,
            LifecycleOut::Deactivated,
            LifecycleOut::CloseDateUpdated { close_ts: 9 },
            LifecycleOut::Determined {
                result: Side::No,
                determination_ts: 9,
            },
            LifecycleOut::Settled { settled_ts: 9 },
        ] {
            let body = l.body("M-1");
            assert_eq!(canonical(&body), body);
        }
        for body in [
            event_created_body("E", "S", "t"),
            fee_update_body("E", Some(("flat", 2))),
            fee_update_body("E", None),
        ] {
            assert_eq!(canonical(&body), body);
        }
    }

    #[test]
    fn delta_body_parses_back_exactly() {
        let body = delta_body("M", "id", Side::No, 52_550, -5, 1_782_316_195_033_836);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["price_dollars"], "0.5255");
        assert_eq!(v["delta_fp"], "-0.05");
        assert_eq!(v["ts"], "2026-06-24T15:49:55.033836Z");
        assert_eq!(v["ts_ms"], 1_782_316_195_033_i64);
    }
}
