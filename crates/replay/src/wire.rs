//! Records back into Kalshi's wire shapes (the current format of WIRE.md: dollar-string prices,
//! `_fp` contract counts, `ts_ms`), written through kd-kalshi's wire structs so the replay and
//! the parser agree on every field name.

use crate::data::Event;
use kd_core::book::Book;
use kd_core::{Price, Side, TimestampUs};
use kd_kalshi::wire::ws::{OrderbookDeltaMsg, OrderbookSnapshotMsg, TickerMsg, TradeMsg};
use kd_kalshi::wire::{WireNum, WireStr};
use kd_kalshi::ws::Channel;
use std::borrow::Cow;

fn s(text: String) -> Option<WireStr<'static>> {
    Some(WireStr(Cow::Owned(text)))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_string())
}

/// NO-side price as sent: NO-bid pricing, or YES-leg pricing (1 − p) when the subscription
/// asked `use_yes_price: true` (WIRE.md "2026 changes").
fn side_price(side: Side, price: Price, yes_leg: bool) -> Price {
    if yes_leg && side == Side::No {
        price.complement()
    } else {
        price
    }
}

/// The channel a message belongs to.
pub fn channel_of(e: &Event) -> Option<Channel> {
    Some(match e {
        Event::Delta(_) | Event::Resync { .. } => Channel::OrderbookDelta,
        Event::Trade(_) => Channel::Trade,
        Event::Ticker(_) => Channel::Ticker,
        Event::Lifecycle(l) if l.kind == "multivariate_market_lifecycle" => {
            Channel::MultivariateMarketLifecycle
        }
        Event::Lifecycle(_) => Channel::MarketLifecycleV2,
        Event::Uncovered { .. } => return None,
    })
}

/// Kalshi's message `type` of an event.
pub fn type_of(e: &Event) -> &str {
    match e {
        Event::Delta(_) => "orderbook_delta",
        Event::Resync { .. } => "orderbook_snapshot",
        Event::Trade(_) => "trade",
        Event::Ticker(_) => "ticker",
        Event::Lifecycle(l) => &l.kind,
        Event::Uncovered { .. } => UNCOVERED_TYPE,
    }
}

/// The `type` of the replay's own message for a window no gatherer covered.
pub const UNCOVERED_TYPE: &str = "replay_gap";
/// The `type` of the replay's own message when the range ends.
pub const END_TYPE: &str = "replay_end";

/// The `msg` object of an event.
pub fn body(e: &Event, yes_leg: bool) -> String {
    match e {
        Event::Delta(d) => {
            let ts = d.exchange_ts;
            json(&OrderbookDeltaMsg {
                market_ticker: s(d.ticker.clone()),
                price_dollars: s(side_price(d.side, d.price, yes_leg).to_dollars()),
                delta_fp: s(d.delta.to_fp()),
                side: s(d.side.as_str().to_string()),
                ts: Some(WireNum::Text(Cow::Owned(ts.to_rfc3339()))),
                ts_ms: Some(ts.millis()),
                ..Default::default()
            })
        }
        Event::Resync { ticker, book } => snapshot_body(ticker, book, yes_leg),
        Event::Trade(t) => {
            let taker = t.taker_side.map(|x| x.as_str().to_string());
            json(&TradeMsg {
                trade_id: s(t.trade_id.clone()),
                market_ticker: s(t.ticker.clone()),
                yes_price_dollars: s(t.yes_price.to_dollars()),
                no_price_dollars: s(t.no_price.to_dollars()),
                count_fp: s(t.count.to_fp()),
                taker_outcome_side: taker.clone().and_then(s),
                taker_book_side: t
                    .taker_side
                    .map(|x| if x == Side::Yes { "bid" } else { "ask" }.to_string())
                    .and_then(s),
                taker_side: taker.and_then(s),
                is_block_trade: Some(t.is_block_trade),
                ts: Some(WireNum::Int(t.exchange_ts.secs())),
                ts_ms: Some(t.exchange_ts.millis()),
                ..Default::default()
            })
        }
        Event::Ticker(t) => {
            let p = |x: Option<Price>| x.map(Price::to_dollars).and_then(s);
            let c = |x: Option<kd_core::Count>| x.map(|c| c.to_fp()).and_then(s);
            json(&TickerMsg {
                market_ticker: s(t.ticker.clone()),
                price_dollars: p(t.price),
                yes_bid_dollars: p(t.yes_bid),
                yes_ask_dollars: p(t.yes_ask),
                volume_fp: c(t.volume),
                open_interest_fp: c(t.open_interest),
                dollar_volume: t.dollar_volume,
                dollar_open_interest: t.dollar_open_interest,
                yes_bid_size_fp: c(t.yes_bid_size),
                yes_ask_size_fp: c(t.yes_ask_size),
                last_trade_size_fp: c(t.last_trade_size),
                ts: Some(WireNum::Int(t.exchange_ts.secs())),
                ts_ms: Some(t.exchange_ts.millis()),
                ..Default::default()
            })
        }
        // The stored payload is the message's `msg` object (canonical JSON).
        Event::Lifecycle(l) => l.payload.clone(),
        Event::Uncovered { start, end } => uncovered_body(*start, *end),
    }
}

/// `replay_gap.msg`: the window, in Kalshi's time formats.
pub fn uncovered_body(start: TimestampUs, end: TimestampUs) -> String {
    serde_json::json!({
        "start": start.to_rfc3339(),
        "end": end.to_rfc3339(),
        "start_ms": start.millis(),
        "end_ms": end.millis(),
        "reason": "no gatherer covered this window: messages of it may be missing",
    })
    .to_string()
}

/// `orderbook_snapshot.msg` of a book (levels ascending by price, as Kalshi sends them).
pub fn snapshot_body(ticker: &str, book: &Book, yes_leg: bool) -> String {
    let levels = |side: Side| -> Vec<kd_kalshi::wire::WireLevel<'static>> {
        let map = match side {
            Side::Yes => &book.yes,
            Side::No => &book.no,
        };
        let mut v: Vec<_> = map
            .iter()
            .map(|(p, c)| {
                kd_kalshi::wire::WireLevel(
                    WireNum::Text(Cow::Owned(side_price(side, *p, yes_leg).to_dollars())),
                    WireNum::Text(Cow::Owned(c.to_fp())),
                )
            })
            .collect();
        if yes_leg && side == Side::No {
            v.reverse();
        }
        v
    };
    let (yes, no) = (levels(Side::Yes), levels(Side::No));
    json(&OrderbookSnapshotMsg {
        market_ticker: s(ticker.to_string()),
        yes_dollars_fp: (!yes.is_empty()).then_some(yes),
        no_dollars_fp: (!no.is_empty()).then_some(no),
        ..Default::default()
    })
}

/// One envelope: `{"type","sid"?,"seq"?,"msg"}`.
pub fn frame(msg_type: &str, sid: Option<u64>, seq: Option<u64>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    out.push_str("{\"type\":\"");
    out.push_str(msg_type);
    out.push('"');
    if let Some(sid) = sid {
        out.push_str(",\"sid\":");
        out.push_str(&sid.to_string());
    }
    if let Some(seq) = seq {
        out.push_str(",\"seq\":");
        out.push_str(&seq.to_string());
    }
    out.push_str(",\"msg\":");
    out.push_str(body);
    out.push('}');
    out
}
