//! The hand-written message writer ([`crate::wire`], [`crate::json_write`]) against the
//! serde path it replaced (kd-kalshi's wire structs through `serde_json`): the same bytes for
//! arbitrary tickers, ids and values, and what it writes parses back (serde_json, and
//! kd-kalshi's own WebSocket parser) to the values it was given.

use crate::data::Event;
use crate::wire;
use kd_core::book::Book;
use kd_core::records::TradeSource;
use kd_core::{Count, OrderbookDelta, Price, Side, Ticker, TimestampUs, Trade};
use kd_kalshi::parse::{WsEvent, parse_ws};
use kd_kalshi::wire::ws::{OrderbookDeltaMsg, OrderbookSnapshotMsg, TickerMsg, TradeMsg};
use kd_kalshi::wire::{WireNum, WireStr};
use proptest::prelude::*;
use std::borrow::Cow;

// ---- The serde path as it was before the hand-written writer (the oracle). ----

fn s(text: String) -> Option<WireStr<'static>> {
    Some(WireStr(Cow::Owned(text)))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_string())
}

fn side_price(side: Side, price: Price, yes_leg: bool) -> Price {
    if yes_leg && side == Side::No {
        price.complement()
    } else {
        price
    }
}

/// The `msg` object of an event.
fn serde_body(e: &Event, yes_leg: bool) -> String {
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
        Event::Resync { ticker, book } => serde_snapshot_body(ticker, book, yes_leg),
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
        Event::Uncovered { start, end } => wire::uncovered_body(*start, *end),
    }
}

/// `orderbook_snapshot.msg` of a book (levels ascending by price, as Kalshi sends them).
fn serde_snapshot_body(ticker: &str, book: &Book, yes_leg: bool) -> String {
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

// ---- Strategies. ----

fn any_side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Yes), Just(Side::No)]
}

fn any_price() -> impl Strategy<Value = Price> {
    (0_i64..=100_000).prop_map(|u| Price::new(u).unwrap_or(Price::ZERO))
}

fn any_count() -> impl Strategy<Value = Count> {
    prop_oneof![
        (-1_000_000_i64..1_000_000).prop_map(Count::new),
        any::<i64>().prop_map(Count::new),
    ]
}

fn any_ts() -> impl Strategy<Value = TimestampUs> {
    prop_oneof![
        // Around now (the times Kalshi sends), and any instant at all.
        (1_700_000_000_000_000_i64..1_900_000_000_000_000).prop_map(TimestampUs::from_micros),
        any::<i64>().prop_map(TimestampUs::from_micros),
    ]
}

/// Any text, with the characters JSON must escape over-represented.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9-]{1,40}",
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\u{1}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('é'),
                Just('K')
            ],
            0..12
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn delta(ticker: String, ts: TimestampUs, side: Side, price: Price, d: Count) -> OrderbookDelta {
    OrderbookDelta {
        ticker,
        exchange_ts: ts,
        side,
        price,
        delta: d,
        occurrence: 0,
        received_at: ts,
        pos: Default::default(),
    }
}

fn any_trade() -> impl Strategy<Value = Trade> {
    (
        any_text(),
        any_text(),
        any_ts(),
        any_price(),
        any_price(),
        any_count(),
        proptest::option::of(any_side()),
        any::<bool>(),
    )
        .prop_map(|(id, ticker, ts, yes, no, count, taker, block)| Trade {
            trade_id: id,
            ticker,
            exchange_ts: ts,
            yes_price: yes,
            no_price: no,
            count,
            taker_side: taker,
            is_block_trade: block,
            source: TradeSource::Ws,
            received_at: ts,
            pos: Default::default(),
        })
}

fn any_ticker() -> impl Strategy<Value = Ticker> {
    let p = || proptest::option::of(any_price());
    let c = || proptest::option::of(any_count());
    (
        (any_text(), any_ts(), p(), p(), p()),
        (c(), c(), proptest::option::of(any::<i64>())),
        (proptest::option::of(any::<i64>()), c(), c(), c()),
    )
        .prop_map(
            |((ticker, ts, price, bid, ask), (vol, oi, dv), (doi, bs, asz, lts))| Ticker {
                ticker,
                exchange_ts: ts,
                price,
                yes_bid: bid,
                yes_ask: ask,
                volume: vol,
                open_interest: oi,
                dollar_volume: dv,
                dollar_open_interest: doi,
                yes_bid_size: bs,
                yes_ask_size: asz,
                last_trade_size: lts,
                received_at: ts,
                pos: Default::default(),
            },
        )
}

fn any_book() -> impl Strategy<Value = Book> {
    let side = || proptest::collection::btree_map(any_price(), any_count(), 0..6);
    (side(), side()).prop_map(|(yes, no)| Book { yes, no })
}

fn check(event: &Event) -> Result<(), TestCaseError> {
    for yes_leg in [false, true] {
        let ours = wire::body(event, yes_leg);
        prop_assert_eq!(&ours, &serde_body(event, yes_leg));
        prop_assert!(serde_json::from_str::<serde_json::Value>(&ours).is_ok());
    }
    Ok(())
}

proptest! {
    #[test]
    fn deltas_are_the_bytes_serde_wrote(
        t in any_text(), ts in any_ts(), side in any_side(), p in any_price(), d in any_count()
    ) {
        check(&Event::Delta(delta(t, ts, side, p, d)))?;
    }

    #[test]
    fn trades_are_the_bytes_serde_wrote(t in any_trade()) {
        check(&Event::Trade(t))?;
    }

    #[test]
    fn tickers_are_the_bytes_serde_wrote(t in any_ticker()) {
        check(&Event::Ticker(t))?;
    }

    #[test]
    fn snapshots_are_the_bytes_serde_wrote(t in any_text(), book in any_book()) {
        check(&Event::Resync { ticker: t, book })?;
    }

    #[test]
    fn strings_round_trip_through_serde_json(t in any_text()) {
        let mut out = Vec::new();
        crate::json_write::string(&mut out, &t);
        prop_assert_eq!(serde_json::to_vec(&t).unwrap_or_default(), out.clone());
        let back: String = serde_json::from_slice(&out).unwrap_or_default();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn numbers_are_what_serde_and_kd_core_write(n in any::<i64>(), ts in any_ts(), c in any_count()) {
        let mut out = Vec::new();
        crate::json_write::int(&mut out, n);
        prop_assert_eq!(out, n.to_string().into_bytes());
        let mut out = Vec::new();
        crate::json_write::rfc3339(&mut out, ts);
        prop_assert_eq!(out, format!("\"{}\"", ts.to_rfc3339()).into_bytes());
        let mut out = Vec::new();
        crate::json_write::fp(&mut out, c);
        prop_assert_eq!(out, format!("\"{}\"", c.to_fp()).into_bytes());
    }

    /// Kalshi's own parser (the gatherer's) reads a replayed delta back as the record it was,
    /// in its envelope with `sid` and `seq`.
    #[test]
    fn deltas_parse_back_with_kd_kalshi(
        t in "[A-Z0-9-]{1,40}", us in 1_700_000_000_000_000_i64..1_900_000_000_000_000,
        side in any_side(), p in any_price(),
        d in (-1_000_000_i64..1_000_000).prop_filter("non-zero", |d| *d != 0).prop_map(Count::new),
        sid in 1_u64..1000, seq in any::<u64>(),
    ) {
        // Times the parser accepts (it refuses times before 2015 or after receipt).
        let ts = TimestampUs::from_micros(us);
        let want = delta(t, ts, side, p, d);
        let mut buf = Vec::new();
        wire::write_head(&mut buf, "orderbook_delta", Some(sid), Some(seq));
        wire::write_body(&mut buf, &Event::Delta(want.clone()), false);
        buf.push(b'}');
        match parse_ws(&buf, ts) {
            Ok(WsEvent::Delta { sid: s, seq: q, delta: got }) => {
                prop_assert_eq!(s, sid);
                prop_assert_eq!(q, Some(seq));
                prop_assert_eq!(
                    (got.ticker, got.exchange_ts, got.side, got.price, got.delta),
                    (want.ticker, want.exchange_ts, want.side, want.price, want.delta)
                );
            }
            other => prop_assert!(false, "{:?} from {}", other, String::from_utf8_lossy(&buf)),
        }
    }
}

#[test]
fn envelopes_are_what_the_old_frame_wrote() {
    assert_eq!(
        wire::frame("trade", Some(3), Some(17), "{}"),
        r#"{"type":"trade","sid":3,"seq":17,"msg":{}}"#
    );
    assert_eq!(
        wire::frame("ticker", Some(2), None, "{}"),
        r#"{"type":"ticker","sid":2,"msg":{}}"#
    );
    assert_eq!(
        wire::frame("replay_end", None, None, "{}"),
        r#"{"type":"replay_end","msg":{}}"#
    );
}
