//! Shared test fixtures: sample records of every table.
#![allow(dead_code)]

use kd_core::records::{
    Gap, Level, Lifecycle, OrderbookDelta, OrderbookSnapshot, Ticker, Trade, TradeSource, WirePos,
};
use kd_core::{Count, Price, Record, Side, SnapshotSource, Table, TimestampUs};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A production store on a scratch PostgreSQL database (drop the database after).
pub async fn pg(
    prefix: &str,
) -> Result<
    (kd_testkit::pg::TestDb, kd_dedup::store::Store),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let db = kd_testkit::pg::TestDb::create(prefix).await?;
    let s = kd_dedup::store::open(&db.url).await?;
    Ok((db, s))
}

/// A production store on a SQLite file in a temporary directory (kept while the guard lives).
pub async fn sqlite()
-> Result<(tempfile::TempDir, kd_dedup::store::Store), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("prod.db").display());
    let s = kd_dedup::store::open(&url).await?;
    Ok((dir, s))
}

pub fn price(units: i64) -> Price {
    Price::new(units.clamp(0, 100_000)).unwrap_or(Price::ZERO)
}

/// 2026-11-27 00:00:00 UTC.
pub const BASE_US: i64 = 1_795_737_600_000_000;

pub fn trade(i: i64, ts: i64) -> Record {
    Record::Trade(Trade {
        trade_id: format!("trade-{i}"),
        ticker: format!("MKT-{}", i % 3),
        exchange_ts: TimestampUs::from_micros(ts),
        yes_price: price(1000 + i),
        no_price: price(99_000 - i),
        count: Count::new(100 + i),
        taker_side: if i % 2 == 0 { Some(Side::Yes) } else { None },
        is_block_trade: i % 5 == 0,
        source: if i % 4 == 0 {
            TradeSource::Rest
        } else {
            TradeSource::Ws
        },
        received_at: TimestampUs::from_micros(ts + 10),
        pos: WirePos::default(),
    })
}

pub fn delta(i: i64, ts: i64) -> Record {
    Record::Delta(OrderbookDelta {
        ticker: format!("MKT-{}", i % 3),
        exchange_ts: TimestampUs::from_micros(ts),
        side: if i % 2 == 0 { Side::Yes } else { Side::No },
        price: price(i % 100 * 1000),
        delta: Count::new(if i % 3 == 0 { -300 } else { 3154 }),
        occurrence: (i % 2) as u32,
        received_at: TimestampUs::from_micros(ts + 7),
        pos: WirePos::default(),
    })
}

pub fn snapshot(i: i64, ts: i64) -> Record {
    Record::Snapshot(OrderbookSnapshot {
        ticker: format!("MKT-{}", i % 3),
        source: if i % 2 == 0 {
            SnapshotSource::Rest
        } else {
            SnapshotSource::Ws
        },
        exchange_ts: TimestampUs::from_micros(ts),
        yes: vec![
            Level {
                price: price(1000),
                size: Count::new(100 + i),
            },
            Level {
                price: price(2000),
                size: Count::new(5),
            },
        ],
        no: vec![Level {
            price: price(97_000),
            size: Count::new(i),
        }],
        received_at: TimestampUs::from_micros(ts + 3),
        pos: WirePos::default(),
    })
}

pub fn ticker(i: i64, ts: i64) -> Record {
    Record::Ticker(Ticker {
        ticker: format!("MKT-{}", i % 3),
        exchange_ts: TimestampUs::from_micros(ts),
        price: Some(price(48_000 + i)),
        yes_bid: Some(price(47_000)),
        yes_ask: None,
        volume: Some(Count::new(i * 100)),
        open_interest: None,
        dollar_volume: Some(i),
        dollar_open_interest: None,
        yes_bid_size: Some(Count::new(7)),
        yes_ask_size: None,
        last_trade_size: Some(Count::new(1)),
        received_at: TimestampUs::from_micros(ts + 1),
        pos: WirePos::default(),
    })
}

pub fn lifecycle(i: i64, ts: i64) -> Record {
    Record::Lifecycle(Lifecycle {
        subject: format!("MKT-{}", i % 3),
        kind: "market_lifecycle_v2".into(),
        event_type: if i % 2 == 0 {
            "activated".into()
        } else {
            "closed".into()
        },
        exchange_ts: TimestampUs::from_micros(ts),
        payload: format!("{{\"n\":{i}}}"),
        received_at: TimestampUs::from_micros(ts + 2),
        pos: WirePos::default(),
    })
}

pub fn gap(i: i64, ts: i64) -> Record {
    Record::Gap(Gap {
        gatherer: "g1".into(),
        gap_id: format!("gap-{i}"),
        ticker: if i % 2 == 0 {
            Some(format!("MKT-{}", i % 3))
        } else {
            None
        },
        tickers: Vec::new(),
        channel: "orderbook_delta".into(),
        start: TimestampUs::from_micros(ts),
        end: TimestampUs::from_micros(ts + 1_000_000),
        reason: "seq_gap".into(),
        repair: "snapshot+rest_trades".into(),
    })
}

/// `n` distinct records of `table`, one every second from `start`.
pub fn records(table: Table, n: i64, start: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let ts = start + i * 1_000_000;
            match table {
                Table::Trades => trade(i, ts),
                Table::Deltas => delta(i, ts),
                Table::Snapshots => snapshot(i, ts),
                Table::Tickers => ticker(i, ts),
                Table::Lifecycle => lifecycle(i, ts),
                Table::Gaps => gap(i, ts),
            }
        })
        .collect()
}

/// Sorts like `read_window` does enough for set comparison: by the debug form.
pub fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by_key(|r| format!("{r:?}"));
    v
}

pub mod cluster;
