//! Every line of the captured samples (`fixtures/samples.jsonl`, a copy of
//! `shared/kalshi-api/samples.jsonl`) parses to the variant its `expect` names, and the values
//! come out exact.

use kd_core::records::TradeSource;
use kd_core::{Side, SnapshotSource, TimestampUs};
use kd_kalshi::parse::{self, WsEvent};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SAMPLES: &str = include_str!("fixtures/samples.jsonl");
const RECEIVED: TimestampUs = TimestampUs::from_micros(1_782_316_200_123_456);

struct Sample {
    source: String,
    expect: String,
    message: String,
}

fn samples() -> Result<Vec<Sample>, serde_json::Error> {
    SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line)?;
            Ok(Sample {
                source: v["source"].as_str().unwrap_or_default().to_owned(),
                expect: v["expect"].as_str().unwrap_or_default().to_owned(),
                message: serde_json::to_string(&v["message"])?,
            })
        })
        .collect()
}

fn ws_samples(expect: &str) -> Result<Vec<WsEvent>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for s in samples()?
        .into_iter()
        .filter(|s| s.source == "ws" && s.expect == expect)
    {
        out.push(parse::parse_ws(s.message.as_bytes(), RECEIVED)?);
    }
    Ok(out)
}

/// Parses a REST sample with the parser its `expect` names; returns a debug rendering.
fn parse_rest(expect: &str, body: &[u8]) -> Result<String, parse::RestParseError> {
    Ok(match expect {
        "exchange_status" => format!("{:?}", parse::parse_exchange_status(body)?),
        "markets_page" => format!("{:?}", parse::parse_markets_page(body)?),
        "orderbook" => format!("{:?}", parse::parse_orderbook(body)?),
        "trades_page" => format!("{:?}", parse::parse_trades_page(body)?),
        other => panic!("sample expects an unknown REST variant {other}"),
    })
}

#[test]
fn every_sample_parses_to_its_expected_variant() -> TestResult {
    let all = samples()?;
    assert!(all.len() >= 30, "fixture truncated: {} lines", all.len());
    for s in &all {
        match s.source.as_str() {
            "ws" => {
                let event = parse::parse_ws(s.message.as_bytes(), RECEIVED)
                    .map_err(|e| format!("{}: {e}", s.message))?;
                assert_eq!(event.kind_name(), s.expect, "{}", s.message);
            }
            "rest" => {
                parse_rest(&s.expect, s.message.as_bytes())
                    .map_err(|e| format!("{}: {e}", s.message))?;
            }
            other => panic!("unknown sample source {other}"),
        }
    }
    Ok(())
}

#[test]
fn snapshots_exact_sorted_and_empty_sides() -> TestResult {
    let events = ws_samples("orderbook_snapshot")?;
    let WsEvent::Snapshot {
        sid,
        seq,
        id,
        snapshot,
    } = &events[0]
    else {
        panic!("not a snapshot: {:?}", events[0]);
    };
    assert_eq!((*sid, *seq, *id), (1, Some(1), None));
    assert_eq!(snapshot.ticker, "KXHIGHNY-26JUN24-T82");
    assert_eq!(snapshot.source, SnapshotSource::Ws);
    assert_eq!(snapshot.exchange_ts, RECEIVED);
    let yes: Vec<(i64, i64)> = snapshot
        .yes
        .iter()
        .map(|l| (l.price.units(), l.size.hundredths()))
        .collect();
    assert_eq!(yes, vec![(8_000, 30_000), (10_000, 1_250)]);
    let no: Vec<(i64, i64)> = snapshot
        .no
        .iter()
        .map(|l| (l.price.units(), l.size.hundredths()))
        .collect();
    assert_eq!(no, vec![(54_000, 2_000), (56_000, 14_600)]);
    let WsEvent::Snapshot {
        snapshot: empty, ..
    } = &events[1]
    else {
        panic!("not a snapshot");
    };
    assert!(empty.yes.is_empty() && empty.no.is_empty());
    Ok(())
}

#[test]
fn deltas_current_and_legacy() -> TestResult {
    let events = ws_samples("orderbook_delta")?;
    let deltas: Vec<_> = events
        .iter()
        .map(|e| match e {
            WsEvent::Delta { sid, seq, delta } => (*sid, *seq, delta.clone()),
            other => panic!("not a delta: {other:?}"),
        })
        .collect();
    let (sid, seq, d) = &deltas[0];
    assert_eq!((*sid, *seq), (1, Some(2)));
    assert_eq!(d.exchange_ts.micros(), 1_782_316_195_033_836);
    assert_eq!(
        (d.side, d.price.units(), d.delta.hundredths()),
        (Side::Yes, 10_000, 700)
    );
    assert_eq!(d.occurrence, 0);
    assert_eq!(d.received_at, RECEIVED);
    assert_eq!((d.pos.sid, d.pos.seq), (Some(1), Some(2)));
    let d = &deltas[1].2;
    assert_eq!(
        (d.side, d.price.units(), d.delta.hundredths()),
        (Side::No, 4_000, -5)
    );
    // Three-decimal price, no RFC ts: ts_ms; a ticker with a dot.
    let d = &deltas[2].2;
    assert_eq!(d.ticker, "FED-23DEC-T3.00");
    assert_eq!((d.price.units(), d.delta.hundredths()), (96_000, -5_400));
    assert_eq!(d.exchange_ts.micros(), 1_669_149_841_000_000);
    // Legacy: integer cents, whole contracts, integer-seconds ts.
    let d = &deltas[3].2;
    assert_eq!((d.price.units(), d.delta.hundredths()), (52_000, -5_000));
    assert_eq!(d.exchange_ts.micros(), 1_705_328_200_000_000);
    Ok(())
}

#[test]
fn trades_current_and_legacy() -> TestResult {
    let events = ws_samples("trade")?;
    let trades: Vec<_> = events
        .iter()
        .map(|e| match e {
            WsEvent::Trade { seq, trade, .. } => (*seq, trade.clone()),
            other => panic!("not a trade: {other:?}"),
        })
        .collect();
    let (seq, t) = &trades[0];
    assert_eq!(*seq, Some(1));
    assert_eq!(t.trade_id, "cd6c95cc-46e1-4654-faa5-1636dec2e5fe");
    assert_eq!(t.ticker, "KXBTCD-26MAY3017-T73499.99");
    assert_eq!((t.yes_price.units(), t.no_price.units()), (42_000, 58_000));
    assert_eq!(t.count.hundredths(), 300);
    assert_eq!(t.exchange_ts.micros(), 1_780_096_775_004_000);
    assert_eq!(t.taker_side, Some(Side::Yes));
    assert!(!t.is_block_trade);
    assert_eq!(t.source, TradeSource::Ws);
    // No taker_outcome_side: the deprecated taker_side is used.
    assert_eq!(trades[1].1.taker_side, Some(Side::No));
    assert_eq!(trades[1].1.count.hundredths(), 13_600);
    // Legacy: no seq, cents, whole contracts, seconds.
    let (seq, t) = &trades[2];
    assert_eq!(*seq, None);
    assert_eq!((t.yes_price.units(), t.no_price.units()), (52_000, 48_000));
    assert_eq!(t.count.hundredths(), 10_000);
    assert_eq!(t.exchange_ts.micros(), 1_705_328_200_000_000);
    Ok(())
}

#[test]
fn tickers_current_and_legacy() -> TestResult {
    let events = ws_samples("ticker")?;
    let WsEvent::Ticker { sid, ticker: t } = &events[0] else {
        panic!("not a ticker");
    };
    assert_eq!(*sid, 11);
    assert_eq!(t.price.map(|p| p.units()), Some(48_000));
    assert_eq!(t.yes_bid.map(|p| p.units()), Some(45_000));
    assert_eq!(t.yes_ask.map(|p| p.units()), Some(53_000));
    assert_eq!(t.volume.map(|c| c.hundredths()), Some(3_389_600));
    assert_eq!(t.open_interest.map(|c| c.hundredths()), Some(2_042_200));
    assert_eq!(
        (t.dollar_volume, t.dollar_open_interest),
        (Some(16_948), Some(10_211))
    );
    assert_eq!(t.yes_bid_size.map(|c| c.hundredths()), Some(30_000));
    assert_eq!(t.last_trade_size.map(|c| c.hundredths()), Some(2_500));
    assert_eq!(t.exchange_ts.micros(), 1_669_149_841_000_000);
    assert_eq!(t.pos.seq, None);
    let WsEvent::Ticker { ticker: t, .. } = &events[1] else {
        panic!("not a ticker");
    };
    assert_eq!(t.price.map(|p| p.units()), Some(52_000));
    assert_eq!(t.volume.map(|c| c.hundredths()), Some(12_500_000));
    assert_eq!(t.yes_bid_size, None);
    assert_eq!(t.exchange_ts.micros(), 1_705_328_200_000_000);
    Ok(())
}

#[test]
fn lifecycle_times_payloads_and_info() -> TestResult {
    let events = ws_samples("market_lifecycle_v2")?;
    let get = |i: usize| match &events[i] {
        WsEvent::MarketLifecycle {
            lifecycle, info, ..
        } => (lifecycle.clone(), info.clone()),
        other => panic!("not lifecycle: {other:?}"),
    };
    let (l, info) = get(0);
    assert_eq!(
        (l.kind.as_str(), l.event_type.as_str()),
        ("market_lifecycle_v2", "created")
    );
    assert_eq!(l.subject, "KXFED-27APR-T4.50");
    // Every lifecycle record is filed at its receipt on the exchange clock (docs/decisions.md,
    // "Lifecycle identities"); the payload's own times stay in `info`.
    assert_eq!(l.exchange_ts, RECEIVED);
    assert_eq!(
        info.open_ts.map(|t| t.micros()),
        Some(1_760_364_000_000_000)
    );
    assert_eq!(info.event_ticker.as_deref(), Some("KXFED-27APR"));
    assert_eq!(
        info.close_ts.map(|t| t.micros()),
        Some(1_824_919_500_000_000)
    );
    assert_eq!(
        info.expected_expiration_ts.map(|t| t.secs()),
        Some(1_824_920_700)
    );
    // Payload: sorted keys, no whitespace, equal to the message's msg as a value.
    assert!(
        l.payload
            .starts_with(r#"{"additional_metadata":{"can_close_early":true,"#)
    );
    let original: Value = serde_json::from_str(&samples()?[12].message)?;
    assert_eq!(serde_json::from_str::<Value>(&l.payload)?, original["msg"]);

    let (l, info) = get(1);
    assert_eq!(l.event_type, "determined");
    assert_eq!(l.exchange_ts, RECEIVED);
    assert_eq!(info.determination_ts.map(|t| t.secs()), Some(1_824_919_800));
    assert_eq!(info.result.as_deref(), Some("yes"));
    assert_eq!(info.settlement_value.map(|p| p.units()), Some(100_000));

    let (l, _) = get(2);
    assert_eq!(
        (l.event_type.as_str(), l.exchange_ts),
        ("settled", RECEIVED)
    );

    // No payload time: the receipt too (no minute bucket any more).
    let (l, info) = get(3);
    assert_eq!(info.is_deactivated, Some(true));
    assert_eq!(l.exchange_ts, RECEIVED);
    let (l, _) = get(4);
    assert_eq!(l.event_type, "metadata_updated");
    assert_eq!(
        l.payload,
        r#"{"event_type":"metadata_updated","floor_strike":4.5,"market_ticker":"KXFED-27APR-T4.50","strike_type":"greater"}"#
    );

    let events = ws_samples("event_lifecycle")?;
    let WsEvent::EventLifecycle {
        lifecycle,
        event_ticker,
        series_ticker,
        seq,
        ..
    } = &events[0]
    else {
        panic!("not an event lifecycle");
    };
    assert_eq!(event_ticker, "KXFED-27JUN");
    assert_eq!(series_ticker.as_deref(), Some("KXFED"));
    assert_eq!(*seq, Some(5));
    assert_eq!(
        (lifecycle.kind.as_str(), lifecycle.event_type.as_str()),
        ("event_lifecycle", "created")
    );
    Ok(())
}

#[test]
fn responses() -> TestResult {
    assert_eq!(
        ws_samples("subscribed")?,
        vec![WsEvent::Subscribed {
            id: Some(1),
            channel: "orderbook_delta".into(),
            sid: 1
        }]
    );
    assert_eq!(
        ws_samples("ok")?,
        vec![WsEvent::Ok {
            id: Some(124),
            sid: Some(1),
            seq: Some(4),
            market_tickers: vec!["KXHIGHNY-26JUN24-T82".into(), "KXHIGHNY-26JUN24-T83".into()],
        }]
    );
    assert_eq!(
        ws_samples("unsubscribed")?,
        vec![WsEvent::Unsubscribed {
            id: Some(125),
            sid: Some(2),
            seq: Some(7)
        }]
    );
    let errors = ws_samples("error")?;
    assert!(
        matches!(&errors[0], WsEvent::Error { id: Some(126), code: 8, msg, .. } if msg == "Unknown channel name")
    );
    assert!(matches!(&errors[1], WsEvent::Error { code: 26, .. }));
    assert_eq!(
        ws_samples("unknown")?,
        vec![WsEvent::Unknown {
            type_name: "cfbenchmarks_value".into(),
            sid: Some(9),
            seq: Some(1)
        }]
    );
    Ok(())
}

#[test]
fn rest_samples_values() -> TestResult {
    let all = samples()?;
    let rest: Vec<&Sample> = all.iter().filter(|s| s.source == "rest").collect();
    let status = parse::parse_exchange_status(rest[1].message.as_bytes())?;
    assert!(!status.exchange_active);
    assert_eq!(
        status.exchange_estimated_resume_time.as_deref(),
        Some("2026-11-28T08:00:00Z")
    );

    let page = parse::parse_markets_page(rest[2].message.as_bytes())?;
    assert_eq!(
        page.next_cursor(),
        Some("CgwIj66QxwYQsOCSqgMSEUtYRkVELTI3QVBSLVQ0LjI1")
    );
    let m = &page.markets[0];
    assert_eq!(m.ticker, "KXFED-27APR-T4.25");
    assert_eq!(m.status.as_deref(), Some("active"));
    assert_eq!(m.yes_bid_size_fp.as_deref(), Some("31.54"));
    assert_eq!(m.price_ranges.len(), 1);
    assert_eq!(
        m.floor_strike.as_ref().map(ToString::to_string).as_deref(),
        Some("4.25")
    );
    let empty = parse::parse_markets_page(rest[3].message.as_bytes())?;
    assert_eq!(empty.next_cursor(), None);
    assert!(empty.markets.is_empty());

    let book = parse::parse_orderbook(rest[4].message.as_bytes())?;
    let snap =
        parse::orderbook_to_snapshot("KXFED-27APR-T4.25", &book, SnapshotSource::Rest, RECEIVED)?;
    let yes: Vec<(i64, i64)> = snap
        .yes
        .iter()
        .map(|l| (l.price.units(), l.size.hundredths()))
        .collect();
    assert_eq!(yes, vec![(11_000, 9_722), (12_000, 47), (27_000, 3_154)]);
    assert_eq!(snap.no.len(), 3);
    assert_eq!(
        (snap.source, snap.exchange_ts),
        (SnapshotSource::Rest, RECEIVED)
    );
    let empty = parse::parse_orderbook(rest[5].message.as_bytes())?;
    let snap = parse::orderbook_to_snapshot("X", &empty, SnapshotSource::Rest, RECEIVED)?;
    assert!(snap.yes.is_empty() && snap.no.is_empty());

    let trades = parse::parse_trades_page(rest[6].message.as_bytes())?;
    assert_eq!(trades.next_cursor(), None);
    let t = parse::rest_trade_to_record(&trades.trades[0], RECEIVED)?;
    assert_eq!(t.exchange_ts.micros(), 1_780_101_575_004_321);
    assert_eq!((t.yes_price.units(), t.count.hundredths()), (42_000, 300));
    assert_eq!(
        (t.source, t.taker_side),
        (TradeSource::Rest, Some(Side::Yes))
    );
    Ok(())
}
