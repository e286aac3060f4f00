//! Records back into Kalshi's wire shapes (the current format of WIRE.md: dollar-string prices,
//! `_fp` contract counts, `ts_ms`), written by hand into a reused buffer ([`crate::json_write`])
//! with the field names and order of kd-kalshi's wire structs, so the replay and the parser
//! agree on every field (`wire_tests` checks the bytes against serde through those structs).

use crate::data::Event;
use crate::json_write as w;
use kd_core::book::Book;
use kd_core::{Count, Price, Side, TimestampUs};
use kd_kalshi::ws::Channel;

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

/// The `msg` object of an event, appended to `out`.
pub fn write_body(out: &mut Vec<u8>, e: &Event, yes_leg: bool) {
    match e {
        Event::Delta(d) => {
            out.extend_from_slice(b"{\"market_ticker\":");
            w::string(out, &d.ticker);
            out.extend_from_slice(b",\"price_dollars\":");
            w::dollars(out, side_price(d.side, d.price, yes_leg));
            out.extend_from_slice(b",\"delta_fp\":");
            w::fp(out, d.delta);
            out.extend_from_slice(match d.side {
                Side::Yes => b",\"side\":\"yes\",\"ts\":",
                Side::No => b",\"side\":\"no\",\"ts\":",
            });
            w::rfc3339(out, d.exchange_ts);
            out.extend_from_slice(b",\"ts_ms\":");
            w::int(out, d.exchange_ts.millis());
            out.push(b'}');
        }
        Event::Resync { ticker, book } => write_snapshot_body(out, ticker, book, yes_leg),
        Event::Trade(t) => {
            out.extend_from_slice(b"{\"trade_id\":");
            w::string(out, &t.trade_id);
            out.extend_from_slice(b",\"market_ticker\":");
            w::string(out, &t.ticker);
            out.extend_from_slice(b",\"yes_price_dollars\":");
            w::dollars(out, t.yes_price);
            out.extend_from_slice(b",\"no_price_dollars\":");
            w::dollars(out, t.no_price);
            out.extend_from_slice(b",\"count_fp\":");
            w::fp(out, t.count);
            out.extend_from_slice(match t.taker_side {
                // taker_side (deprecated), taker_outcome_side, taker_book_side.
                Some(Side::Yes) => {
                    b",\"taker_side\":\"yes\",\"taker_outcome_side\":\"yes\",\"taker_book_side\":\"bid\""
                }
                Some(Side::No) => {
                    b",\"taker_side\":\"no\",\"taker_outcome_side\":\"no\",\"taker_book_side\":\"ask\""
                }
                None => b"",
            });
            out.extend_from_slice(if t.is_block_trade {
                b",\"is_block_trade\":true,\"ts\":"
            } else {
                b",\"is_block_trade\":false,\"ts\":"
            });
            w::int(out, t.exchange_ts.secs());
            out.extend_from_slice(b",\"ts_ms\":");
            w::int(out, t.exchange_ts.millis());
            out.push(b'}');
        }
        Event::Ticker(t) => {
            out.extend_from_slice(b"{\"market_ticker\":");
            w::string(out, &t.ticker);
            let price = |out: &mut Vec<u8>, name: &str, p: Option<Price>| {
                if let Some(p) = p {
                    out.push(b',');
                    w::key(out, name);
                    w::dollars(out, p);
                }
            };
            let count = |out: &mut Vec<u8>, name: &str, c: Option<Count>| {
                if let Some(c) = c {
                    out.push(b',');
                    w::key(out, name);
                    w::fp(out, c);
                }
            };
            let whole = |out: &mut Vec<u8>, name: &str, n: Option<i64>| {
                if let Some(n) = n {
                    out.push(b',');
                    w::key(out, name);
                    w::int(out, n);
                }
            };
            price(out, "price_dollars", t.price);
            price(out, "yes_bid_dollars", t.yes_bid);
            price(out, "yes_ask_dollars", t.yes_ask);
            count(out, "volume_fp", t.volume);
            count(out, "open_interest_fp", t.open_interest);
            whole(out, "dollar_volume", t.dollar_volume);
            whole(out, "dollar_open_interest", t.dollar_open_interest);
            count(out, "yes_bid_size_fp", t.yes_bid_size);
            count(out, "yes_ask_size_fp", t.yes_ask_size);
            count(out, "last_trade_size_fp", t.last_trade_size);
            out.extend_from_slice(b",\"ts\":");
            w::int(out, t.exchange_ts.secs());
            out.extend_from_slice(b",\"ts_ms\":");
            w::int(out, t.exchange_ts.millis());
            out.push(b'}');
        }
        // The stored payload is the message's `msg` object (canonical JSON).
        Event::Lifecycle(l) => out.extend_from_slice(l.payload.as_bytes()),
        Event::Uncovered { start, end } => {
            out.extend_from_slice(uncovered_body(*start, *end).as_bytes());
        }
    }
}

/// The `msg` object of an event.
pub fn body(e: &Event, yes_leg: bool) -> String {
    let mut out = Vec::with_capacity(160);
    write_body(&mut out, e, yes_leg);
    text(out)
}

/// The writers only append valid UTF-8 (whole `str`s and ASCII).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

/// `orderbook_snapshot.msg` of a book (levels ascending by price, as Kalshi sends them; a
/// side without levels is absent), appended to `out`.
pub fn write_snapshot_body(out: &mut Vec<u8>, ticker: &str, book: &Book, yes_leg: bool) {
    out.extend_from_slice(b"{\"market_ticker\":");
    w::string(out, ticker);
    let level = |out: &mut Vec<u8>, first: &mut bool, side: Side, p: Price, c: Count| {
        out.extend_from_slice(if *first { b"[" } else { b",[" });
        *first = false;
        w::dollars(out, side_price(side, p, yes_leg));
        out.push(b',');
        w::fp(out, c);
        out.push(b']');
    };
    if !book.yes.is_empty() {
        out.extend_from_slice(b",\"yes_dollars_fp\":[");
        let mut first = true;
        for (p, c) in &book.yes {
            level(out, &mut first, Side::Yes, *p, *c);
        }
        out.push(b']');
    }
    if !book.no.is_empty() {
        out.extend_from_slice(b",\"no_dollars_fp\":[");
        let mut first = true;
        // In YES-leg pricing the NO side's prices are 1 − p: still ascending when reversed.
        if yes_leg {
            for (p, c) in book.no.iter().rev() {
                level(out, &mut first, Side::No, *p, *c);
            }
        } else {
            for (p, c) in &book.no {
                level(out, &mut first, Side::No, *p, *c);
            }
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// `orderbook_snapshot.msg` of a book.
pub fn snapshot_body(ticker: &str, book: &Book, yes_leg: bool) -> String {
    let mut out = Vec::with_capacity(64 + 24 * (book.yes.len() + book.no.len()));
    write_snapshot_body(&mut out, ticker, book, yes_leg);
    text(out)
}

/// The head of one envelope, up to its `msg`: `{"type":…,"sid"?,"seq"?,"msg":` (the caller
/// writes the body and the closing `}`).
pub fn write_head(out: &mut Vec<u8>, msg_type: &str, sid: Option<u64>, seq: Option<u64>) {
    out.extend_from_slice(b"{\"type\":");
    w::string(out, msg_type);
    if let Some(sid) = sid {
        out.extend_from_slice(b",\"sid\":");
        w::uint(out, sid);
    }
    if let Some(seq) = seq {
        out.extend_from_slice(b",\"seq\":");
        w::uint(out, seq);
    }
    out.extend_from_slice(b",\"msg\":");
}

/// One envelope: `{"type","sid"?,"seq"?,"msg"}`.
pub fn frame(msg_type: &str, sid: Option<u64>, seq: Option<u64>, body: &str) -> String {
    let mut out = Vec::with_capacity(body.len() + 64);
    write_head(&mut out, msg_type, sid, seq);
    out.extend_from_slice(body.as_bytes());
    out.push(b'}');
    text(out)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
