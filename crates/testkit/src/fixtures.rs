//! Example records for tests of every crate that stores, moves or merges records: one of each
//! table, with optional fields both set and absent, and strings that need escaping.

use kd_core::records::{Level, TradeSource, WirePos};
use kd_core::{
    Count, Gap, Lifecycle, OrderbookDelta, OrderbookSnapshot, Price, Record, Side, SnapshotSource,
    Ticker, TimestampUs, Trade,
};

/// One record of every table.
pub fn one_of_each() -> Vec<Record> {
    let at = TimestampUs::from_micros;
    let price = |units| Price::new(units).unwrap_or(Price::ZERO);
    let level = Level {
        price: price(42_000),
        size: Count::new(-705),
    };
    vec![
        Record::Trade(Trade {
            trade_id: "t-1".into(),
            ticker: "M-1".into(),
            exchange_ts: at(1_700_000_000_000_000),
            yes_price: price(40_000),
            no_price: price(60_000),
            count: Count::new(150),
            taker_side: Some(Side::Yes),
            is_block_trade: false,
            source: TradeSource::Ws,
            received_at: at(1_700_000_000_000_010),
            pos: WirePos {
                sid: Some(3),
                seq: Some(1),
            },
        }),
        Record::Delta(OrderbookDelta {
            ticker: "M-\"quoted\"-é".into(),
            exchange_ts: at(1_700_000_000_000_001),
            side: Side::No,
            price: price(990_000),
            delta: Count::new(-12_345),
            occurrence: 2,
            received_at: at(1_700_000_000_000_002),
            pos: WirePos {
                sid: Some(1),
                seq: Some(9),
            },
        }),
        Record::Snapshot(OrderbookSnapshot {
            ticker: "S".into(),
            source: SnapshotSource::Rest,
            exchange_ts: at(7_000_000),
            yes: vec![level, level],
            no: vec![],
            received_at: at(7_000_001),
            pos: WirePos::default(),
        }),
        Record::Ticker(Ticker {
            ticker: "T".into(),
            exchange_ts: at(9),
            price: Price::new(1).ok(),
            yes_bid: None,
            yes_ask: None,
            volume: Some(Count::new(5)),
            open_interest: None,
            dollar_volume: Some(12),
            dollar_open_interest: None,
            yes_bid_size: None,
            yes_ask_size: None,
            last_trade_size: None,
            received_at: at(10),
            pos: WirePos::default(),
        }),
        Record::Lifecycle(Lifecycle {
            subject: "EV".into(),
            kind: "event".into(),
            event_type: "created".into(),
            exchange_ts: at(3),
            payload: "{\"a\":[1,2,{\"b\":null}]}".into(),
            received_at: at(4),
            pos: WirePos::default(),
        }),
        Record::Gap(Gap {
            gatherer: "g".into(),
            gap_id: "7".into(),
            ticker: None,
            tickers: Vec::new(),
            channel: "trade".into(),
            start: at(1),
            end: at(2),
            reason: "r".into(),
            repair: "none".into(),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::Table;

    #[test]
    fn one_record_of_every_table() {
        let tables: Vec<Table> = one_of_each().iter().map(Record::table).collect();
        assert_eq!(tables, Table::ALL);
    }
}
