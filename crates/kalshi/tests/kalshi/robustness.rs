//! Property tests: no parser panics on any input (arbitrary bytes, mutated real messages,
//! structurally plausible messages with random field values), and records survive a round trip
//! through the wire format exactly.

use kd_core::records::{Level, TradeSource, WirePos};
use kd_core::{Count, OrderbookDelta, Price, Side, SnapshotSource, TimestampUs, Trade};
use kd_kalshi::parse::{self, WsEvent};
use kd_kalshi::wire;
use proptest::prelude::*;

const AT: TimestampUs = TimestampUs::from_micros(1_782_316_200_123_456);
const SAMPLES: &str = include_str!("fixtures/samples.jsonl");

/// The `message` of every sample line, as bytes.
fn sample_messages() -> Vec<(String, Vec<u8>)> {
    SAMPLES
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|v| {
            let source = v["source"].as_str().unwrap_or_default().to_owned();
            let bytes = serde_json::to_vec(&v["message"]).unwrap_or_default();
            (source, bytes)
        })
        .collect()
}

/// Runs every REST parser; each must return (never panic).
fn all_rest(bytes: &[u8]) {
    let _ = parse::parse_exchange_status(bytes);
    let _ = parse::parse_exchange_schedule(bytes);
    let _ = parse::parse_markets_page(bytes);
    let _ = parse::parse_market(bytes);
    let _ = parse::parse_events_page(bytes);
    let _ = parse::parse_event(bytes);
    let _ = parse::parse_series_list(bytes);
    let _ = parse::parse_series(bytes);
    let _ = parse::parse_orderbooks(bytes);
    let _ = parse::parse_historical_trades_page(bytes);
    if let Ok(book) = parse::parse_orderbook(bytes) {
        let _ = parse::orderbook_to_snapshot("T", &book, SnapshotSource::Rest, AT);
    }
    if let Ok(page) = parse::parse_trades_page(bytes) {
        for t in &page.trades {
            let _ = parse::rest_trade_to_record(t, AT);
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop::sample::select(b"{}[]\",:-.0123456789eE\\ntrufalsx ".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match *m {
        Mutation::Flip(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x ^= b | 1;
            }
        }
        Mutation::Delete(i, n) => {
            let start = (i % len).min(bytes.len());
            let end = (start + n).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::Insert(i, b) => bytes.insert((i % len).min(bytes.len()), b),
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

/// A JSON value of a random kind, with strings drawn from number-, time- and side-like text so
/// the unit converters see near-misses, not only garbage.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "-?[0-9]{0,3}(\\.[0-9]{0,7})?".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(Value::from),
        prop::sample::select(vec!["yes", "no", "bid", "ask", "", "YES", "created", "settled"])
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|kv| { serde_json::Value::Object(kv.into_iter().collect()) }),
        ]
    })
}

const TYPES: &[&str] = &[
    "orderbook_snapshot",
    "orderbook_delta",
    "trade",
    "ticker",
    "market_lifecycle_v2",
    "event_lifecycle",
    "subscribed",
    "ok",
    "unsubscribed",
    "error",
    "list_subscriptions",
    "something_new",
];

const FIELDS: &[&str] = &[
    "market_ticker",
    "market_id",
    "price_dollars",
    "delta_fp",
    "side",
    "ts",
    "ts_ms",
    "price",
    "delta",
    "trade_id",
    "yes_price_dollars",
    "no_price_dollars",
    "count_fp",
    "taker_side",
    "taker_outcome_side",
    "taker_book_side",
    "is_block_trade",
    "yes_price",
    "no_price",
    "count",
    "yes_bid_dollars",
    "yes_ask_dollars",
    "volume_fp",
    "open_interest_fp",
    "dollar_volume",
    "yes_bid_size_fp",
    "time",
    "yes_dollars_fp",
    "no_dollars_fp",
    "yes",
    "no",
    "event_type",
    "open_ts",
    "close_ts",
    "determination_ts",
    "settled_ts",
    "settlement_value",
    "result",
    "additional_metadata",
    "event_ticker",
    "series_ticker",
    "channel",
    "sid",
    "code",
    "msg",
    "market_tickers",
];

/// A message with a real type and real field names but random values.
fn plausible_message() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(TYPES),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..10),
    )
        .prop_map(|(ty, sid, seq, fields)| {
            let msg: serde_json::Map<String, serde_json::Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            serde_json::to_vec(&serde_json::json!({
                "type": ty, "sid": sid, "seq": seq, "msg": msg,
            }))
            .unwrap_or_default()
        })
}

fn price() -> impl Strategy<Value = Price> {
    (0i64..=100_000).prop_filter_map("valid price", |u| Price::new(u).ok())
}

fn count() -> impl Strategy<Value = Count> {
    (-10_000_000i64..10_000_000).prop_map(Count::new)
}

fn timestamp() -> impl Strategy<Value = TimestampUs> {
    // Every time the parser accepts: from `kd_core::validate::PLAUSIBLE_FROM` (2015-01-01) to
    // the receipt time; times outside are refused at the edge (`trade_times_and_tickers_are_validated`).
    (1_420_070_400_000_000i64..=AT.micros()).prop_map(TimestampUs::from_micros)
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Yes), Just(Side::No)]
}

fn market_ticker() -> impl Strategy<Value = String> {
    "[A-Z0-9]{1,10}(-[A-Z0-9.]{1,8}){0,3}"
}

/// One of the samples (its source, `ws` or a REST name, and its bytes) with `mutations` applied.
fn mutated_sample(index: &prop::sample::Index, mutations: &[Mutation]) -> (String, Vec<u8>) {
    let samples = sample_messages();
    let (source, mut bytes) = index.get(&samples).clone();
    for m in mutations {
        apply(&mut bytes, m);
    }
    (source, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse::parse_ws(&bytes, AT);
        all_rest(&bytes);
    }

    /// The text parser (the gatherer's path for text frames) gives exactly what the bytes
    /// parser gives, for arbitrary text and for mutated samples that are still text.
    #[test]
    fn text_and_bytes_parsers_agree(text in any::<String>()) {
        prop_assert_eq!(
            format!("{:?}", parse::parse_ws_text(&text, AT)),
            format!("{:?}", parse::parse_ws(text.as_bytes(), AT))
        );
    }

    #[test]
    fn text_and_bytes_parsers_agree_on_mutated_samples(
        index in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let (source, bytes) = mutated_sample(&index, &mutations);
        if let (Ok(text), "ws") = (std::str::from_utf8(&bytes), source.as_str()) {
            prop_assert_eq!(
                format!("{:?}", parse::parse_ws_text(text, AT)),
                format!("{:?}", parse::parse_ws(&bytes, AT))
            );
        }
    }

    #[test]
    fn mutated_samples_never_panic(
        index in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (source, bytes) = mutated_sample(&index, &mutations);
        match source.as_str() {
            "ws" => { let _ = parse::parse_ws(&bytes, AT); }
            _ => all_rest(&bytes),
        }
    }

    #[test]
    fn plausible_messages_give_a_value_or_a_typed_error(bytes in plausible_message()) {
        match parse::parse_ws(&bytes, AT) {
            Ok(event) => { let _ = event.kind_name(); }
            Err(e) => {
                // Every error has a label and a message; a known type is named unless the
                // envelope itself was bad.
                prop_assert!(!e.kind().is_empty());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn delta_round_trip(
        ticker in market_ticker(),
        side in side(),
        price in price(),
        delta in count(),
        ts in timestamp(),
        sid in any::<u64>(),
        seq in any::<u64>(),
    ) {
        let msg = wire::OrderbookDeltaMsg {
            market_ticker: Some(ticker.as_str().into()),
            price_dollars: Some(price.to_dollars().into()),
            delta_fp: Some(delta.to_fp().into()),
            side: Some(side.as_str().into()),
            ts: Some(wire::WireNum::Text(ts.to_rfc3339().into())),
            ts_ms: Some(ts.millis()),
            ..Default::default()
        };
        let envelope = wire::Envelope {
            msg_type: "orderbook_delta".into(),
            id: None,
            sid: Some(sid),
            seq: Some(seq),
            msg: Some(msg),
        };
        let bytes = serde_json::to_vec(&envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = parse::parse_ws(&bytes, AT).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = OrderbookDelta {
            ticker,
            exchange_ts: ts,
            side,
            price,
            delta,
            occurrence: 0,
            received_at: AT,
            pos: WirePos { sid: Some(sid), seq: Some(seq) },
        };
        prop_assert_eq!(parsed, WsEvent::Delta { sid, seq: Some(seq), delta: expected });
    }

    #[test]
    fn legacy_delta_round_trip(cents in 0i64..=100, contracts in -100_000i64..100_000, secs in 1_420_070_400i64..1_782_316_200) {
        let s = format!(
            r#"{{"type":"orderbook_delta","sid":1,"msg":{{"market_ticker":"M","price":{cents},"delta":{contracts},"side":"yes","ts":{secs}}}}}"#
        );
        let Ok(WsEvent::Delta { delta, seq: None, .. }) = parse::parse_ws(s.as_bytes(), AT) else {
            return Err(TestCaseError::fail(s));
        };
        prop_assert_eq!(delta.price.units(), cents * 1_000);
        prop_assert_eq!(delta.delta.hundredths(), contracts * 100);
        prop_assert_eq!(delta.exchange_ts.micros(), secs * 1_000_000);
    }

    #[test]
    fn snapshot_round_trip(
        yes in prop::collection::btree_map(0i64..=100_000, 1i64..1_000_000, 0..20),
        no in prop::collection::btree_map(0i64..=100_000, 1i64..1_000_000, 0..20),
    ) {
        let side = |levels: &std::collections::BTreeMap<i64, i64>| -> Option<Vec<wire::WireLevel<'static>>> {
            if levels.is_empty() {
                return None; // Kalshi omits an empty side.
            }
            // Sent in descending order: the parser must sort.
            Some(levels.iter().rev().map(|(p, c)| wire::WireLevel(
                wire::WireNum::Text(Price::new(*p).unwrap_or(Price::ZERO).to_dollars().into()),
                wire::WireNum::Text(Count::new(*c).to_fp().into()),
            )).collect())
        };
        let msg = wire::OrderbookSnapshotMsg {
            market_ticker: Some("M".into()),
            yes_dollars_fp: side(&yes),
            no_dollars_fp: side(&no),
            ..Default::default()
        };
        let envelope = wire::Envelope { msg_type: "orderbook_snapshot".into(), id: None, sid: Some(1), seq: Some(1), msg: Some(msg) };
        let bytes = serde_json::to_vec(&envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(WsEvent::Snapshot { snapshot, .. }) = parse::parse_ws(&bytes, AT) else {
            return Err(TestCaseError::fail("not a snapshot"));
        };
        let levels = |m: &std::collections::BTreeMap<i64, i64>| -> Vec<Level> {
            m.iter().map(|(p, c)| Level { price: Price::new(*p).unwrap_or(Price::ZERO), size: Count::new(*c) }).collect()
        };
        prop_assert_eq!(snapshot.yes, levels(&yes));
        prop_assert_eq!(snapshot.no, levels(&no));
    }

    #[test]
    fn trade_round_trip_ws_and_rest(
        ticker in market_ticker(),
        yes in price(),
        count in (1i64..10_000_000).prop_map(Count::new),
        ts in timestamp(),
        taker in side(),
        block in any::<bool>(),
    ) {
        let expected = |source, exchange_ts, pos| Trade {
            trade_id: "id-1".into(),
            ticker: ticker.clone(),
            exchange_ts,
            yes_price: yes,
            no_price: yes.complement(),
            count,
            taker_side: Some(taker),
            is_block_trade: block,
            source,
            received_at: AT,
            pos,
        };
        let msg = wire::TradeMsg {
            trade_id: Some("id-1".into()),
            market_ticker: Some(ticker.as_str().into()),
            yes_price_dollars: Some(yes.to_dollars().into()),
            no_price_dollars: Some(yes.complement().to_dollars().into()),
            count_fp: Some(count.to_fp().into()),
            taker_outcome_side: Some(taker.as_str().into()),
            is_block_trade: Some(block),
            ts_ms: Some(ts.millis()),
            ..Default::default()
        };
        let envelope = wire::Envelope { msg_type: "trade".into(), id: None, sid: Some(2), seq: Some(5), msg: Some(msg) };
        let bytes = serde_json::to_vec(&envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(WsEvent::Trade { trade, .. }) = parse::parse_ws(&bytes, AT) else {
            return Err(TestCaseError::fail("not a trade"));
        };
        let ms = TimestampUs::from_micros(ts.millis() * 1_000);
        prop_assert_eq!(trade, expected(TradeSource::Ws, ms, WirePos { sid: Some(2), seq: Some(5) }));

        let rest = wire::RestTrade {
            trade_id: "id-1".into(),
            ticker: ticker.clone(),
            count_fp: Some(count.to_fp()),
            yes_price_dollars: Some(yes.to_dollars()),
            no_price_dollars: Some(yes.complement().to_dollars()),
            taker_outcome_side: Some(taker.as_str().into()),
            is_block_trade: Some(block),
            created_time: Some(ts.to_rfc3339()),
            ..Default::default()
        };
        let page = wire::TradesPage { trades: vec![rest], cursor: Some(String::new()) };
        let bytes = serde_json::to_vec(&page).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let page = parse::parse_trades_page(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let trade = parse::rest_trade_to_record(&page.trades[0], AT).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(trade, expected(TradeSource::Rest, ts, WirePos::default()));
    }
}

#[test]
fn rest_market_round_trips_through_serialize() -> Result<(), Box<dyn std::error::Error>> {
    for (source, bytes) in sample_messages() {
        if source != "rest" {
            continue;
        }
        if let Ok(page) = parse::parse_markets_page(&bytes)
            && !page.markets.is_empty()
        {
            let again = parse::parse_markets_page(&serde_json::to_vec(&page)?)?;
            assert_eq!(again, page);
            // None fields are skipped, not written as null.
            assert!(!serde_json::to_string(&page.markets[0])?.contains("null"));
        }
    }
    Ok(())
}

/// A trade frame with the given id, ticker and `ts_ms`.
fn trade_frame(id: &str, ticker: &str, ts_ms: i64) -> String {
    serde_json::json!({
        "type": "trade", "sid": 1, "seq": 2,
        "msg": {
            "trade_id": id, "market_ticker": ticker,
            "yes_price_dollars": "0.4200", "no_price_dollars": "0.5800", "count_fp": "3.00",
            "taker_outcome_side": "yes", "ts_ms": ts_ms
        }
    })
    .to_string()
}

#[test]
fn the_issue_cases_are_refused_at_the_edge() {
    // Issue 17 case 1: the parser used to accept both.
    for frame in [
        trade_frame("t1", "KX-M", 9_223_372_036_854_775),
        trade_frame("t1", "KX-\u{0}M", AT.millis()),
        trade_frame("t\u{0}1", "KX-M", AT.millis()),
    ] {
        match parse::parse_ws_text(&frame, AT) {
            Err(e) => assert_eq!(e.kind(), "implausible", "{e}"),
            Ok(other) => panic!("accepted {other:?} from {frame}"),
        }
    }
    assert!(parse::parse_ws_text(&trade_frame("t1", "KX-M", AT.millis()), AT).is_ok());
}

proptest! {
    /// Exactly the exchange times from 2015-01-01 to a day after receipt pass, and a control
    /// character anywhere in the ticker is refused.
    #[test]
    fn trade_times_and_tickers_are_validated(
        ts_ms in any::<i64>().prop_map(|v| v / 1_000),
        near in -400_000_000_000_i64..200_000_000_i64,
        c in any::<char>(),
    ) {
        let lo = kd_core::validate::PLAUSIBLE_FROM.micros();
        let hi = AT.micros() + kd_core::validate::PLAUSIBLE_AHEAD_US;
        for ms in [ts_ms, AT.millis() + near] {
            let ok = parse::parse_ws_text(&trade_frame("t", "KX-M", ms), AT).is_ok();
            let us = ms.checked_mul(1_000);
            prop_assert_eq!(ok, us.is_some_and(|us| us >= lo && us <= hi), "ts_ms {}", ms);
        }
        let ticker = format!("KX-{c}M");
        let parsed = parse::parse_ws_text(&trade_frame("t", &ticker, AT.millis()), AT);
        prop_assert_eq!(parsed.is_ok(), !c.is_control());
    }
}
