//! `parse_ws` case by case: envelope handling, each error variant, legacy and odd shapes.

use kd_core::{Side, TimestampUs};
use kd_kalshi::parse::{SubscriptionInfo, WsEvent, WsParseError, parse_ws};

const AT: TimestampUs = TimestampUs::from_micros(1_700_000_000_000_000);

fn parse(s: &str) -> Result<WsEvent, WsParseError> {
    parse_ws(s.as_bytes(), AT)
}

fn delta_with(msg: &str) -> String {
    format!(r#"{{"type":"orderbook_delta","sid":3,"seq":9,"msg":{{{msg}}}}}"#)
}

const GOOD_DELTA: &str = r#""market_ticker":"M-1","price_dollars":"0.5255","delta_fp":"1.50","side":"no","ts_ms":1700000000123"#;

#[test]
fn delta_current_format() -> Result<(), WsParseError> {
    let WsEvent::Delta { sid, seq, delta } = parse(&delta_with(GOOD_DELTA))? else {
        panic!("not a delta");
    };
    assert_eq!((sid, seq), (3, Some(9)));
    assert_eq!(
        (delta.side, delta.price.units(), delta.delta.hundredths()),
        (Side::No, 52_550, 150)
    );
    assert_eq!(delta.exchange_ts.micros(), 1_700_000_000_123_000);
    Ok(())
}

#[test]
fn msg_before_type_and_unknown_fields() -> Result<(), WsParseError> {
    let s = format!(
        r#"{{"msg":{{{GOOD_DELTA},"brand_new":[1,{{"x":null}}]}},"extra":true,"seq":9,"type":"orderbook_delta","sid":3}}"#
    );
    assert!(matches!(
        parse(&s)?,
        WsEvent::Delta {
            sid: 3,
            seq: Some(9),
            ..
        }
    ));
    Ok(())
}

#[test]
fn escaped_strings_are_unescaped() -> Result<(), WsParseError> {
    let s = delta_with(
        r#""market_ticker":"M\u002d1","price_dollars":"0.5255","delta_fp":"1.50","side":"n\u006f","ts_ms":1700000000123"#,
    );
    let WsEvent::Delta { delta, .. } = parse(&s)? else {
        panic!("not a delta");
    };
    assert_eq!((delta.ticker.as_str(), delta.side), ("M-1", Side::No));
    Ok(())
}

#[test]
fn error_variants_name_type_and_field() {
    let cases: Vec<(String, &str, Option<&str>, Option<&str>)> = vec![
        ("not json".into(), "json", None, None),
        ("[1,2]".into(), "json", None, None),
        (r#"{"sid":1}"#.into(), "missing_field", Some("envelope"), Some("type")),
        (r#"{"type":5}"#.into(), "json", None, None),
        (
            r#"{"type":"orderbook_delta","sid":1}"#.into(),
            "missing_field",
            Some("orderbook_delta"),
            Some("msg"),
        ),
        (
            r#"{"type":"orderbook_delta","sid":1,"msg":[]}"#.into(),
            "shape",
            Some("orderbook_delta"),
            None,
        ),
        (
            r#"{"type":"orderbook_delta","sid":-1,"msg":{}}"#.into(),
            "shape",
            Some("orderbook_delta"),
            None,
        ),
        (
            r#"{"type":"orderbook_delta","msg":{"market_ticker":"M"}}"#.into(),
            "missing_field",
            Some("orderbook_delta"),
            Some("sid"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"0.5","delta_fp":"1","ts_ms":1"#),
            "missing_field",
            Some("orderbook_delta"),
            Some("side"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"0.5","delta_fp":"1","side":"maybe","ts_ms":1"#),
            "invalid_value",
            Some("orderbook_delta"),
            Some("side"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"1.5","delta_fp":"1","side":"yes","ts_ms":1"#),
            "field",
            Some("orderbook_delta"),
            Some("price_dollars"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"0.123456","delta_fp":"1","side":"yes","ts_ms":1"#),
            "field",
            Some("orderbook_delta"),
            Some("price_dollars"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"0.5","delta_fp":"1.001","side":"yes","ts_ms":1"#),
            "field",
            Some("orderbook_delta"),
            Some("delta_fp"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"0.5","delta_fp":"1","side":"yes""#),
            "missing_field",
            Some("orderbook_delta"),
            Some("ts_ms"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":"0.5","delta_fp":"1","side":"yes","ts":"noon""#),
            "field",
            Some("orderbook_delta"),
            Some("ts"),
        ),
        (
            delta_with(r#""market_ticker":"M","price_dollars":0.5,"delta_fp":"1","side":"yes","ts_ms":1"#),
            "shape",
            Some("orderbook_delta"),
            None,
        ),
        (
            r#"{"type":"trade","sid":1,"msg":{"market_ticker":"M","yes_price_dollars":"0.5","count_fp":"1","ts_ms":1}}"#.into(),
            "missing_field",
            Some("trade"),
            Some("trade_id"),
        ),
        (
            r#"{"type":"trade","sid":1,"msg":{"trade_id":"t","market_ticker":"M","count_fp":"1","ts_ms":1}}"#.into(),
            "missing_field",
            Some("trade"),
            Some("yes_price_dollars"),
        ),
        (
            r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"M","volume_fp":"x","ts_ms":1}}"#.into(),
            "field",
            Some("ticker"),
            Some("volume_fp"),
        ),
        (
            r#"{"type":"orderbook_snapshot","sid":1,"msg":{"market_ticker":"M","yes_dollars_fp":[["0.5"]]}}"#.into(),
            "shape",
            Some("orderbook_snapshot"),
            None,
        ),
        (
            r#"{"type":"orderbook_snapshot","sid":1,"msg":{"market_ticker":"M","no_dollars_fp":[["2.00","1.00"]]}}"#.into(),
            "field",
            Some("orderbook_snapshot"),
            Some("no_dollars_fp"),
        ),
        (
            r#"{"type":"market_lifecycle_v2","sid":1,"msg":{"event_type":"created"}}"#.into(),
            "missing_field",
            Some("market_lifecycle_v2"),
            Some("market_ticker"),
        ),
        (
            r#"{"type":"market_lifecycle_v2","sid":1,"msg":{"market_ticker":"M","event_type":"settled","settled_ts":"soon"}}"#.into(),
            "field",
            Some("market_lifecycle_v2"),
            Some("settled_ts"),
        ),
        (
            r#"{"type":"event_lifecycle","sid":1,"msg":{"title":"t"}}"#.into(),
            "missing_field",
            Some("event_lifecycle"),
            Some("event_ticker"),
        ),
        (
            r#"{"type":"error","id":1,"msg":{"msg":"x"}}"#.into(),
            "missing_field",
            Some("error"),
            Some("code"),
        ),
        (
            r#"{"type":"subscribed","id":1,"msg":{"sid":1}}"#.into(),
            "missing_field",
            Some("subscribed"),
            Some("channel"),
        ),
        (
            r#"{"type":"ok","type":"ok"}"#.into(),
            "shape",
            Some("ok"),
            None,
        ),
        (
            format!("{} trailing", delta_with(GOOD_DELTA)),
            "shape",
            Some("orderbook_delta"),
            None,
        ),
    ];
    for (input, kind, msg_type, field) in cases {
        match parse(&input) {
            Ok(v) => panic!("{input}: parsed to {v:?}"),
            Err(e) => {
                assert_eq!(e.kind(), kind, "{input}: {e}");
                assert_eq!(e.msg_type(), msg_type, "{input}: {e}");
                assert_eq!(e.field_name(), field, "{input}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn unknown_types_are_values_even_with_odd_msgs() -> Result<(), WsParseError> {
    for s in [
        r#"{"type":"fill","sid":4,"msg":{"anything":[1,2,{"deep":true}]}}"#,
        r#"{"msg":"scalar first","type":"communications"}"#,
        r#"{"type":"pyth_value"}"#,
    ] {
        assert!(matches!(parse(s)?, WsEvent::Unknown { .. }), "{s}");
    }
    Ok(())
}

#[test]
fn list_subscriptions_both_spellings() -> Result<(), WsParseError> {
    let expected = WsEvent::ListSubscriptions {
        id: Some(3),
        subscriptions: vec![
            SubscriptionInfo {
                channel: "orderbook_delta".into(),
                sid: 1,
            },
            SubscriptionInfo {
                channel: "ticker".into(),
                sid: 2,
            },
        ],
    };
    let list = r#"[{"channel":"orderbook_delta","sid":1},{"channel":"ticker","sid":2}]"#;
    assert_eq!(
        parse(&format!(r#"{{"id":3,"type":"ok","msg":{list}}}"#))?,
        expected
    );
    assert_eq!(
        parse(&format!(
            r#"{{"id":3,"type":"list_subscriptions","msg":{list}}}"#
        ))?,
        expected
    );
    assert_eq!(
        parse(r#"{"id":3,"type":"list_subscriptions","msg":[]}"#)?,
        WsEvent::ListSubscriptions {
            id: Some(3),
            subscriptions: vec![]
        }
    );
    Ok(())
}

#[test]
fn ok_and_unsubscribed_shapes() -> Result<(), WsParseError> {
    assert_eq!(
        parse(r#"{"id":5,"type":"ok"}"#)?,
        WsEvent::Ok {
            id: Some(5),
            sid: None,
            seq: None,
            market_tickers: vec![]
        }
    );
    assert_eq!(
        parse(r#"{"id":5,"sid":2,"seq":3,"type":"ok","msg":{"index_ids":["BRTI"]}}"#)?,
        WsEvent::Ok {
            id: Some(5),
            sid: Some(2),
            seq: Some(3),
            market_tickers: vec![]
        }
    );
    assert_eq!(
        parse(r#"{"type":"unsubscribed","sid":2,"msg":{"whatever":1}}"#)?,
        WsEvent::Unsubscribed {
            id: None,
            sid: Some(2),
            seq: None
        }
    );
    Ok(())
}

#[test]
fn error_with_market_tickers_and_sequence() -> Result<(), WsParseError> {
    let e = parse(
        r#"{"id":9,"sid":4,"seq":12,"type":"error","msg":{"code":10,"msg":"Channel error","market_ticker":"A","market_tickers":["B","A"]}}"#,
    )?;
    assert_eq!(
        e,
        WsEvent::Error {
            id: Some(9),
            sid: Some(4),
            seq: Some(12),
            code: 10,
            msg: "Channel error".into(),
            market_tickers: vec!["B".into(), "A".into()],
        }
    );
    assert_eq!(
        (e.sid(), e.seq(), e.kind_name()),
        (Some(4), Some(12), "error")
    );
    Ok(())
}

#[test]
fn get_snapshot_reply_carries_the_command_id() -> Result<(), WsParseError> {
    let s = r#"{"type":"orderbook_snapshot","id":44,"sid":1,"seq":20,"msg":{"market_ticker":"M","market_id":"x","yes_dollars_fp":[["0.9000","1.00"],["0.1000","2.00"]]}}"#;
    let WsEvent::Snapshot {
        id, seq, snapshot, ..
    } = parse(s)?
    else {
        panic!("not a snapshot");
    };
    assert_eq!((id, seq), (Some(44), Some(20)));
    assert_eq!(
        snapshot.yes[0].price.units(),
        10_000,
        "levels sorted ascending"
    );
    assert!(snapshot.no.is_empty());
    Ok(())
}

#[test]
fn legacy_snapshot_sides() -> Result<(), WsParseError> {
    let s = r#"{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"M","yes":[[8,300],[22,333]],"no_dollars":[["0.54",20]]}}"#;
    let WsEvent::Snapshot { snapshot, .. } = parse(s)? else {
        panic!("not a snapshot");
    };
    assert_eq!(
        (
            snapshot.yes[1].price.units(),
            snapshot.yes[1].size.hundredths()
        ),
        (22_000, 33_300)
    );
    assert_eq!(
        (
            snapshot.no[0].price.units(),
            snapshot.no[0].size.hundredths()
        ),
        (54_000, 2_000)
    );
    Ok(())
}

#[test]
fn trade_time_fallback_and_block_trade() -> Result<(), WsParseError> {
    let s = r#"{"type":"trade","sid":1,"seq":2,"msg":{"trade_id":"t","market_ticker":"M","yes_price_dollars":"0.3000","count_fp":"0.50","taker_book_side":"ask","is_block_trade":true,"ts":1700000001}}"#;
    let WsEvent::Trade { trade, .. } = parse(s)? else {
        panic!("not a trade");
    };
    assert_eq!(trade.exchange_ts.micros(), 1_700_000_001_000_000);
    assert_eq!(trade.no_price.units(), 70_000, "no price derived from yes");
    assert_eq!(trade.taker_side, Some(Side::No));
    assert!(trade.is_block_trade);
    assert_eq!(trade.count.hundredths(), 50);
    Ok(())
}

#[test]
fn every_lifecycle_message_is_filed_at_its_receipt_on_the_exchange_clock()
-> Result<(), WsParseError> {
    // The payload's own times are the event's (a close date, a future open): never the
    // identity's time. Not bucketed either: two toggles within a minute stay two.
    for s in [
        r#"{"type":"market_lifecycle_v2","sid":13,"seq":9,"msg":{"market_ticker":"M","event_type":"close_date_updated","close_ts":1800000000}}"#,
        r#"{"type":"market_lifecycle_v2","sid":13,"seq":9,"msg":{"market_ticker":"M","event_type":"created","open_ts":1600000000}}"#,
        r#"{"type":"market_lifecycle_v2","sid":13,"seq":9,"msg":{"market_ticker":"M","event_type":"deactivated","is_deactivated":true}}"#,
    ] {
        let Some(kd_core::Record::Lifecycle(l)) = parse(s)?.into_record() else {
            panic!("not lifecycle: {s}");
        };
        assert_eq!(l.exchange_ts, AT, "{s}");
    }
    let s = r#"{"type":"market_lifecycle_v2","sid":13,"seq":9,"msg":{"market_ticker":"M","event_type":"close_date_updated","close_ts":1800000000}}"#;
    let WsEvent::MarketLifecycle { info, .. } = parse(s)? else {
        panic!("not lifecycle");
    };
    assert_eq!(info.close_ts.map(|t| t.secs()), Some(1_800_000_000));
    Ok(())
}

#[test]
fn multivariate_lifecycle_is_a_market_lifecycle_of_its_own_kind() -> Result<(), WsParseError> {
    let s = r#"{"type":"multivariate_market_lifecycle","sid":14,"seq":7,"msg":{"market_ticker":"KXMVE-TEST-EVENT-M1","exchange_index":0,"open_ts":1773936000,"close_ts":1774022400,"additional_metadata":{"name":"MVE One","title":"Market 1","yes_sub_title":"YES 1","no_sub_title":"NO 1","rules_primary":"Rule 1","rules_secondary":"Rule 2","can_close_early":true,"event_ticker":"KXMVE-TEST-EVENT","expected_expiration_ts":1774029600},"event_type":"created"}}"#;
    let event = parse(s)?;
    assert_eq!(event.kind_name(), "multivariate_market_lifecycle");
    let WsEvent::MarketLifecycle {
        sid,
        seq,
        lifecycle,
        info,
    } = event
    else {
        panic!("not a market lifecycle");
    };
    assert_eq!((sid, seq), (14, Some(7)));
    assert_eq!(lifecycle.kind, "multivariate_market_lifecycle");
    assert_eq!(lifecycle.subject, "KXMVE-TEST-EVENT-M1");
    assert_eq!(info.event_type, "created");
    assert_eq!(info.event_ticker.as_deref(), Some("KXMVE-TEST-EVENT"));
    assert_eq!(info.open_ts.map(|t| t.secs()), Some(1_773_936_000));
    // The same message on market_lifecycle_v2 is another record (the kind is hashed).
    let v2 = s.replacen("multivariate_market_lifecycle", "market_lifecycle_v2", 1);
    let Some(kd_core::Record::Lifecycle(other)) = parse(&v2)?.into_record() else {
        panic!("not lifecycle");
    };
    assert_eq!(other.payload, lifecycle.payload);
    assert_ne!(other.payload_hash(), lifecycle.payload_hash());
    // Missing ticker: a typed error naming the type, as on the other channel.
    let bad = parse(
        r#"{"type":"multivariate_market_lifecycle","sid":14,"msg":{"event_type":"created"}}"#,
    );
    assert!(
        matches!(
            bad,
            Err(WsParseError::MissingField {
                msg_type: "multivariate_market_lifecycle",
                ..
            })
        ),
        "{bad:?}"
    );
    Ok(())
}

#[test]
fn event_fee_update_is_a_lifecycle_record_of_the_event() -> Result<(), WsParseError> {
    for (s, fee) in [
        (
            r#"{"type":"event_fee_update","sid":5,"seq":9,"msg":{"event_ticker":"KXBTCD-26MAY2018","fee_type_override":"quadratic","fee_multiplier_override":1}}"#,
            r#""fee_type_override":"quadratic""#,
        ),
        (
            r#"{"type":"event_fee_update","sid":5,"seq":10,"msg":{"event_ticker":"KXBTCD-26MAY2018","fee_type_override":null,"fee_multiplier_override":null}}"#,
            r#""fee_type_override":null"#,
        ),
    ] {
        let event = parse(s)?;
        assert_eq!(event.kind_name(), "event_fee_update");
        let Some(kd_core::Record::Lifecycle(l)) = event.into_record() else {
            panic!("not lifecycle: {s}");
        };
        assert_eq!(
            (l.subject.as_str(), l.kind.as_str(), l.event_type.as_str()),
            ("KXBTCD-26MAY2018", "event_fee_update", "event_fee_update")
        );
        assert!(l.payload.contains(fee), "{}", l.payload);
        assert_eq!(l.exchange_ts, AT);
    }
    let bad = parse(r#"{"type":"event_fee_update","sid":5,"msg":["KX"]}"#);
    assert!(
        matches!(
            bad,
            Err(WsParseError::Shape {
                msg_type: "event_fee_update",
                ..
            })
        ),
        "{bad:?}"
    );
    Ok(())
}

#[test]
fn lifecycle_payload_is_key_order_independent() -> Result<(), WsParseError> {
    let a = r#"{"type":"market_lifecycle_v2","sid":1,"seq":1,"msg":{"market_ticker":"M","event_type":"activated","z":1,"a":{"y":2,"b":3}}}"#;
    let b = r#"{"seq":7,"msg":{"a":{"b":3,"y":2},"z":1,"event_type":"activated","market_ticker":"M"},"sid":2,"type":"market_lifecycle_v2"}"#;
    let (
        WsEvent::MarketLifecycle { lifecycle: la, .. },
        WsEvent::MarketLifecycle { lifecycle: lb, .. },
    ) = (parse(a)?, parse(b)?)
    else {
        panic!("not lifecycle");
    };
    assert_eq!(la.payload, lb.payload);
    assert_eq!(la.payload_hash(), lb.payload_hash());
    assert_ne!(la.pos, lb.pos);
    Ok(())
}

#[test]
fn into_record_for_data_messages_only() -> Result<(), WsParseError> {
    let delta = parse(&delta_with(GOOD_DELTA))?.into_record();
    assert!(matches!(delta, Some(kd_core::Record::Delta(_))));
    let lifecycle = parse(
        r#"{"type":"event_lifecycle","sid":1,"seq":1,"msg":{"event_ticker":"E","series_ticker":"S"}}"#,
    )?
    .into_record();
    assert!(matches!(lifecycle, Some(kd_core::Record::Lifecycle(_))));
    assert_eq!(parse(r#"{"id":5,"type":"ok"}"#)?.into_record(), None);
    assert_eq!(parse(r#"{"type":"brand_new"}"#)?.into_record(), None);
    Ok(())
}
