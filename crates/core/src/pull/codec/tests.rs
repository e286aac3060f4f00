//! The binary pull page: round trips, and bad input is a typed error, never a panic.

use super::*;
use proptest::prelude::*;

fn pos() -> impl Strategy<Value = WirePos> {
    (any::<Option<u64>>(), any::<Option<u64>>()).prop_map(|(sid, seq)| WirePos { sid, seq })
}

fn price() -> impl Strategy<Value = Price> {
    (0_i64..=100_000).prop_map(|u| Price::new(u).unwrap_or(Price::ZERO))
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Yes), Just(Side::No)]
}

fn delta() -> impl Strategy<Value = Record> {
    (
        ".{0,12}",
        any::<i64>(),
        side(),
        price(),
        any::<i64>(),
        any::<u32>(),
        any::<i64>(),
        pos(),
    )
        .prop_map(|(ticker, ts, side, price, d, occurrence, recv, pos)| {
            Record::Delta(OrderbookDelta {
                ticker,
                exchange_ts: TimestampUs::from_micros(ts),
                side,
                price,
                delta: Count::new(d),
                occurrence,
                received_at: TimestampUs::from_micros(recv),
                pos,
            })
        })
}

fn trade() -> impl Strategy<Value = Record> {
    (
        (".{0,12}", ".{0,12}", any::<i64>(), price(), price()),
        (
            any::<i64>(),
            proptest::option::of(side()),
            any::<bool>(),
            any::<bool>(),
            any::<i64>(),
            pos(),
        ),
    )
        .prop_map(
            |((trade_id, ticker, ts, yes, no), (count, taker, block, rest, recv, pos))| {
                Record::Trade(Trade {
                    trade_id,
                    ticker,
                    exchange_ts: TimestampUs::from_micros(ts),
                    yes_price: yes,
                    no_price: no,
                    count: Count::new(count),
                    taker_side: taker,
                    is_block_trade: block,
                    source: if rest {
                        TradeSource::Rest
                    } else {
                        TradeSource::Ws
                    },
                    received_at: TimestampUs::from_micros(recv),
                    pos,
                })
            },
        )
}

fn ticker() -> impl Strategy<Value = Record> {
    let opt = || proptest::option::of(any::<i64>());
    (
        (".{0,12}", any::<i64>(), proptest::option::of(price())),
        (proptest::option::of(price()), proptest::option::of(price())),
        (opt(), opt(), opt(), opt(), opt(), opt(), opt()),
        (any::<i64>(), pos()),
    )
        .prop_map(
            |((ticker, ts, price), (bid, ask), (v, oi, dv, doi, bs, asz, lts), (recv, pos))| {
                Record::Ticker(Ticker {
                    ticker,
                    exchange_ts: TimestampUs::from_micros(ts),
                    price,
                    yes_bid: bid,
                    yes_ask: ask,
                    volume: v.map(Count::new),
                    open_interest: oi.map(Count::new),
                    dollar_volume: dv,
                    dollar_open_interest: doi,
                    yes_bid_size: bs.map(Count::new),
                    yes_ask_size: asz.map(Count::new),
                    last_trade_size: lts.map(Count::new),
                    received_at: TimestampUs::from_micros(recv),
                    pos,
                })
            },
        )
}

/// A table and a page of its records.
fn page() -> impl Strategy<Value = (Table, Vec<PulledRecord>)> {
    let rows = |s: BoxedStrategy<Record>| {
        proptest::collection::vec((any::<u64>(), s), 0..20).prop_map(|v| {
            v.into_iter()
                .map(|(seq, record)| PulledRecord { seq, record })
                .collect::<Vec<_>>()
        })
    };
    prop_oneof![
        rows(delta().boxed()).prop_map(|r| (Table::Deltas, r)),
        rows(trade().boxed()).prop_map(|r| (Table::Trades, r)),
        rows(ticker().boxed()).prop_map(|r| (Table::Tickers, r)),
    ]
}

fn encoded(table: Table, records: &[PulledRecord]) -> Vec<u8> {
    match encode("gatherer-a", table, "store-1", 77, records, usize::MAX) {
        Ok((bytes, n)) => {
            assert_eq!(n, records.len());
            bytes
        }
        Err(e) => panic!("encode: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pages_round_trip((table, records) in page()) {
        let bytes = encoded(table, &records);
        let back = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, PullResponse {
            gatherer: "gatherer-a".into(),
            table,
            records,
            head: 77,
            store_id: "store-1".into(),
            quarantined: Vec::new(),
        });
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_a_page(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = decode(&with_magic);
    }

    #[test]
    fn every_truncation_is_an_error((table, records) in page(), cut in any::<prop::sample::Index>()) {
        let bytes = encoded(table, &records);
        let at = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..at]).is_err());
    }

    #[test]
    fn corrupted_pages_never_panic(
        (table, records) in page(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encoded(table, &records);
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        // Either a typed error or a page; a page's records are all of its table.
        if let Ok(p) = decode(&bytes) {
            prop_assert!(p.records.iter().all(|r| r.record.table() == p.table));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stored_bodies_round_trip_and_refuse_every_truncation(
        r in prop_oneof![delta(), trade(), ticker()],
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut body = Vec::new();
        prop_assert!(encode_body(&r, &mut body));
        prop_assert!(is_binary_body(&body));
        let back = decode_body(r.table(), &body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &r);
        prop_assert!(decode_body(r.table(), &body[..cut.index(body.len())]).is_err());
        let mut longer = body.clone();
        longer.push(0);
        prop_assert_eq!(decode_body(r.table(), &longer), Err(CodecError::Trailing(1)));
        for (i, b) in flips {
            let at = i.index(body.len());
            body[at] = b;
        }
        // A corrupted body is an error or a record of the asked table, never a panic.
        if let Ok(x) = decode_body(r.table(), &body) {
            prop_assert_eq!(x.table(), r.table());
        }
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_a_stored_body(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut tagged = vec![BODY_TAG];
        tagged.extend_from_slice(&bytes);
        for table in Table::ALL {
            let _ = decode_body(table, &bytes);
            let _ = decode_body(table, &tagged);
        }
    }
}

#[test]
fn json_bodies_are_not_binary_and_other_tables_have_no_binary_body() {
    assert!(!is_binary_body(b"{\"ticker\":\"X\"}"));
    assert!(!is_binary_body(b""));
    assert_eq!(decode_body(Table::Deltas, b"{}"), Err(CodecError::Magic));
    assert_eq!(
        decode_body(Table::Gaps, &[BODY_TAG]),
        Err(CodecError::NotEncodable(Table::Gaps))
    );
}

#[test]
fn a_trailing_byte_a_forged_count_and_a_bad_price_are_named() {
    let rows = vec![PulledRecord {
        seq: 1,
        record: one_delta(),
    }];
    let mut bytes = encoded(Table::Deltas, &rows);
    bytes.push(0);
    assert_eq!(decode(&bytes), Err(CodecError::Trailing(1)));

    // A count of 2^32 − 1 records in a page of a few bytes: refused before any allocation.
    let mut forged = encoded(Table::Deltas, &[]);
    let at = forged.len() - 8;
    forged[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode(&forged),
        Err(CodecError::Truncated {
            what: "records",
            ..
        })
    ));

    // A price above one dollar.
    let bytes = encoded(Table::Deltas, &rows);
    let mut bad = bytes.clone();
    // magic 4, gatherer 4+10, table 1, store 4+7, head 8, count 4, seq 8, ticker 4+1, ts 8,
    // side 1: the price follows.
    let price_at = 4 + 14 + 1 + 11 + 8 + 4 + 8 + 5 + 8 + 1;
    bad[price_at..price_at + 8].copy_from_slice(&100_001_i64.to_le_bytes());
    assert_eq!(
        decode(&bad),
        Err(CodecError::Value {
            what: "price",
            value: 100_001
        })
    );
    assert_eq!(decode(b"KDP"), Err(CodecError::Magic));
    assert_eq!(decode(b"{\"gatherer\":1}"), Err(CodecError::Magic));
}

#[test]
fn other_tables_are_refused_and_a_page_stops_at_its_byte_bound() {
    assert_eq!(
        encode("g", Table::Snapshots, "s", 0, &[], usize::MAX).map(|(_, n)| n),
        Err(CodecError::NotEncodable(Table::Snapshots))
    );
    let rows: Vec<PulledRecord> = (1..=100)
        .map(|seq| PulledRecord {
            seq,
            record: one_delta(),
        })
        .collect();
    let (bytes, n) = match encode("g", Table::Deltas, "s", 100, &rows, 1_000) {
        Ok(page) => page,
        Err(e) => panic!("encode: {e}"),
    };
    assert!(n > 1 && n < 100, "{n} rows in a 1,000-byte page");
    let back = decode(&bytes).map_err(|e| e.to_string());
    assert_eq!(back.map(|p| p.records.len()), Ok(n));
    // At least one row, however small the bound.
    let one = encode("g", Table::Deltas, "s", 100, &rows, 0).map(|(_, n)| n);
    assert_eq!(one, Ok(1));
}

fn one_delta() -> Record {
    Record::Delta(OrderbookDelta {
        ticker: "M".into(),
        exchange_ts: TimestampUs::from_micros(1_700_000_000_000_000),
        side: Side::No,
        price: Price::new(52_000).unwrap_or(Price::ZERO),
        delta: Count::new(-300),
        occurrence: 0,
        received_at: TimestampUs::from_micros(1_700_000_000_000_100),
        pos: WirePos {
            sid: Some(3),
            seq: None,
        },
    })
}
