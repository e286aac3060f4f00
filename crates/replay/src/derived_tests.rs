//! The derived-stream builders against hand-computed expectations.

use super::*;
use kd_core::records::TradeSource;
use kd_core::{OrderbookDelta, Side};

fn ts(us: i64) -> TimestampUs {
    TimestampUs::from_micros(us)
}

fn price(units: i64) -> Price {
    Price::new(units).unwrap_or_else(|e| panic!("test price {units}: {e}"))
}

fn trade(id: &str, ticker: &str, at: i64, yes: i64, count: i64) -> Event {
    Event::Trade(Trade {
        trade_id: id.into(),
        ticker: ticker.into(),
        exchange_ts: ts(at),
        yes_price: price(yes),
        no_price: price(100_000 - yes),
        count: Count::new(count),
        taker_side: None,
        is_block_trade: false,
        source: TradeSource::Ws,
        received_at: ts(at),
        pos: Default::default(),
    })
}

fn delta(ticker: &str, at: i64, side: Side, p: i64, d: i64) -> Event {
    Event::Delta(OrderbookDelta {
        ticker: ticker.into(),
        exchange_ts: ts(at),
        side,
        price: price(p),
        delta: Count::new(d),
        occurrence: 0,
        received_at: ts(at),
        pos: Default::default(),
    })
}

/// Feeds `events` (in order) through a stream and returns its frames as JSON.
fn run(mut d: Derived, events: &[Event], to: i64) -> Vec<Value> {
    let mut out = crate::frames::Frames::default();
    for e in events {
        let at = match e {
            Event::Trade(t) => t.exchange_ts,
            Event::Delta(x) => x.exchange_ts,
            _ => ts(0),
        };
        d.before(at, &mut out);
        d.on(e, &mut out);
    }
    d.finish(ts(to), &mut out);
    out.iter()
        .map(|l| serde_json::from_slice(l).unwrap_or(Value::Null))
        .collect()
}

fn bar(f: &Value) -> (String, i64, i64, i64, i64, i64, u64, bool) {
    let m = &f["msg"];
    (
        m["market_ticker"].as_str().unwrap_or_default().to_string(),
        m["open"].as_i64().unwrap_or(-1),
        m["high"].as_i64().unwrap_or(-1),
        m["low"].as_i64().unwrap_or(-1),
        m["close"].as_i64().unwrap_or(-1),
        m["volume"].as_i64().unwrap_or(-1),
        m["trades"].as_u64().unwrap_or(0),
        m["complete"].as_bool().unwrap_or(false),
    )
}

#[test]
fn names_parse() {
    assert_eq!(
        Spec::parse("book_snapshot_10_1s"),
        Some(Spec::Snapshot {
            depth: 10,
            every_us: 1_000_000
        })
    );
    assert_eq!(
        Spec::parse("trade_bar_1m"),
        Some(Spec::TimeBar {
            every_us: 60_000_000
        })
    );
    assert_eq!(
        Spec::parse("trade_bar_500ms"),
        Some(Spec::TimeBar { every_us: 500_000 })
    );
    assert_eq!(
        Spec::parse("trade_bar_vol_100"),
        Some(Spec::VolumeBar { volume: 10_000 })
    );
    assert_eq!(
        Spec::parse("trade_bar_count_3"),
        Some(Spec::CountBar { trades: 3 })
    );
    for bad in [
        "trade",
        "book_snapshot_0_1s",
        "book_snapshot_10",
        "trade_bar_1x",
        "trade_bar_0s",
        "trade_bar_vol_0",
        "trade_bar_count_x",
    ] {
        assert_eq!(Spec::parse(bad), None, "{bad}");
    }
}

#[test]
fn time_bars_ohlc_per_market_and_interval() {
    let s = 1_000_000;
    let d = Derived::new(
        "trade_bar_1s",
        Spec::TimeBar { every_us: s },
        None,
        BTreeMap::new(),
        ts(0),
    );
    let events = [
        trade("1", "A", s / 10, 50_000, 100),
        trade("2", "B", s / 5, 30_000, 250),
        trade("3", "A", s / 2, 52_000, 300),
        trade("4", "A", s - 1, 49_000, 50),
        // Second interval: a trade exactly at its start belongs to it.
        trade("5", "A", s, 60_000, 1),
        trade("6", "A", 2 * s + 10, 61_000, 7),
    ];
    let frames = run(d, &events, 2 * s + 500_000);
    let bars: Vec<_> = frames.iter().map(bar).collect();
    assert_eq!(
        bars,
        vec![
            ("A".into(), 50_000, 52_000, 49_000, 49_000, 450, 3, true),
            ("B".into(), 30_000, 30_000, 30_000, 30_000, 250, 1, true),
            ("A".into(), 60_000, 60_000, 60_000, 60_000, 1, 1, true),
            // The range ends inside the third interval.
            ("A".into(), 61_000, 61_000, 61_000, 61_000, 7, 1, false),
        ]
    );
    assert_eq!(frames[0]["msg"]["start_us"], 0);
    assert_eq!(frames[0]["msg"]["end_us"], s);
    assert_eq!(frames[0]["msg"]["volume_fp"], "4.50");
    assert_eq!(frames[3]["msg"]["start_us"], 2 * s);
}

#[test]
fn volume_and_count_bars_close_at_the_trade_that_fills_them() {
    let events = [
        trade("1", "A", 1, 40_000, 60),
        trade("2", "A", 2, 45_000, 50),  // 110 ≥ 100: closes
        trade("3", "A", 3, 41_000, 100), // exactly 100: closes
        trade("4", "A", 4, 42_000, 30),  // left open
    ];
    let vol = Derived::new(
        "trade_bar_vol_1",
        Spec::VolumeBar { volume: 100 },
        None,
        BTreeMap::new(),
        ts(0),
    );
    let bars: Vec<_> = run(vol, &events, 10).iter().map(bar).collect();
    assert_eq!(
        bars,
        vec![
            ("A".into(), 40_000, 45_000, 40_000, 45_000, 110, 2, true),
            ("A".into(), 41_000, 41_000, 41_000, 41_000, 100, 1, true),
            ("A".into(), 42_000, 42_000, 42_000, 42_000, 30, 1, false),
        ]
    );
    let count = Derived::new(
        "trade_bar_count_3",
        Spec::CountBar { trades: 3 },
        None,
        BTreeMap::new(),
        ts(0),
    );
    let frames = run(count, &events, 10);
    let bars: Vec<_> = frames.iter().map(bar).collect();
    assert_eq!(
        bars,
        vec![
            ("A".into(), 40_000, 45_000, 40_000, 41_000, 210, 3, true),
            ("A".into(), 42_000, 42_000, 42_000, 42_000, 30, 1, false),
        ]
    );
    assert_eq!(frames[0]["msg"]["start_us"], 1);
    assert_eq!(frames[0]["msg"]["end_us"], 3);
}

#[test]
fn snapshots_every_interval_top_n_only_when_changed() {
    let s = 1_000_000;
    let mut book = Book::default();
    for (p, c) in [(40_000, 100), (41_000, 200), (42_000, 300)] {
        book.apply(Side::Yes, price(p), Count::new(c));
    }
    book.apply(Side::No, price(55_000), Count::new(500));
    let d = Derived::new(
        "book_snapshot_2_1s",
        Spec::Snapshot {
            depth: 2,
            every_us: s,
        },
        None,
        BTreeMap::from([("A".to_string(), book)]),
        ts(s / 2),
    );
    let events = [
        // Before the first boundary (1 s): the boundary shows it.
        delta("A", s - 5, Side::Yes, 43_000, 10),
        // Exactly at 2 s: included in the 2 s snapshot.
        delta("A", 2 * s, Side::Yes, 43_000, -10),
        // Changes below the top 2 only: no snapshot at 3 s.
        delta("A", 2 * s + 1, Side::Yes, 40_000, -100),
        // A market without a book at the start is not snapshotted.
        delta("B", 2 * s + 2, Side::Yes, 40_000, 5),
        delta("A", 4 * s + 7, Side::No, 56_000, 1),
    ];
    let frames = run(d, &events, 5 * s);
    let got: Vec<(i64, Value, Value)> = frames
        .iter()
        .map(|f| {
            (
                f["msg"]["ts_us"].as_i64().unwrap_or(-1),
                f["msg"]["yes"].clone(),
                f["msg"]["no"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                s,
                json!([[43_000, 10], [42_000, 300]]),
                json!([[55_000, 500]])
            ),
            (
                2 * s,
                json!([[42_000, 300], [41_000, 200]]),
                json!([[55_000, 500]])
            ),
            (
                5 * s,
                json!([[42_000, 300], [41_000, 200]]),
                json!([[56_000, 1], [55_000, 500]])
            ),
        ]
    );
}
