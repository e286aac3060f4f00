//! The messages every stage and baseline share: wire JSON in the live shapes of
//! `samples.jsonl` (94 % `orderbook_delta`, 5 % `trade`, 1 % `ticker`), timestamped around now
//! so production partitions exist, spread over `markets` tickers. Deterministic (xorshift).

use kd_core::TimestampUs;
use kd_core::records::{OccurrenceCounter, Record};
use kd_kalshi::parse::{WsEvent, parse_ws};

/// A deterministic generator so runs are comparable.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn rfc3339(us: i64) -> String {
    TimestampUs::from_micros(us).to_rfc3339()
}

/// `count` wire messages over `markets` markets, exchange times starting at `start` and 10 µs
/// apart.
pub fn generate(count: usize, markets: usize, start: TimestampUs) -> Vec<Vec<u8>> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let markets = markets.max(1) as u64;
    (0..count as u64)
        .map(|i| {
            let us = start.micros() + (i as i64) * 10;
            let ticker = format!("BENCH-E{}-M{}", g.below(markets) / 8, g.below(markets));
            let seq = i + 1;
            match g.below(100) {
                0..94 => format!(
                    r#"{{"type":"orderbook_delta","sid":1,"seq":{seq},"msg":{{"market_ticker":"{ticker}","market_id":"0445cdcb-e22f-4522-9981-aed4b66015ff","price_dollars":"0.{:04}","delta_fp":"{}{}.{:02}","side":"{}","ts":"{}","ts_ms":{}}}}}"#,
                    g.below(9999) + 1,
                    if g.below(2) == 0 { "-" } else { "" },
                    g.below(500) + 1,
                    g.below(100),
                    if g.below(2) == 0 { "yes" } else { "no" },
                    rfc3339(us),
                    us / 1000,
                ),
                94..99 => {
                    let yes = g.below(98) + 1;
                    format!(
                        r#"{{"type":"trade","sid":2,"seq":{seq},"msg":{{"trade_id":"cd6c95cc-46e1-4654-faa5-{:012x}","market_ticker":"{ticker}","yes_price_dollars":"0.{yes:02}00","no_price_dollars":"0.{:02}00","count_fp":"{}.00","taker_side":"yes","taker_outcome_side":"yes","taker_book_side":"bid","is_block_trade":false,"ts":{},"ts_ms":{}}}}}"#,
                        i,
                        100 - yes,
                        g.below(1000) + 1,
                        us / 1_000_000,
                        us / 1000,
                    )
                }
                _ => format!(
                    r#"{{"type":"ticker","sid":11,"msg":{{"market_ticker":"{ticker}","market_id":"9b0f6b43-5b68-4f9f-9f02-9a2d1b8ac1a1","price_dollars":"0.480","yes_bid_dollars":"0.450","yes_ask_dollars":"0.530","volume_fp":"{}.00","open_interest_fp":"20422.00","dollar_volume":16948,"dollar_open_interest":10211,"yes_bid_size_fp":"300.00","yes_ask_size_fp":"150.00","last_trade_size_fp":"25.00","ts":{},"ts_ms":{}}}}}"#,
                    i,
                    us / 1_000_000,
                    us / 1000,
                ),
            }
            .into_bytes()
        })
        .collect()
}

/// Turns one parsed message into the record a gatherer stores (deltas get their occurrence,
/// as the gatherer's router assigns it). `None` for control messages.
pub fn to_record(event: WsEvent, occurrences: &mut OccurrenceCounter) -> Option<Record> {
    match event {
        WsEvent::Delta { mut delta, .. } => {
            delta.occurrence = occurrences.next(
                &delta.ticker,
                delta.exchange_ts,
                delta.side,
                delta.price,
                delta.delta,
            );
            Some(Record::Delta(delta))
        }
        WsEvent::Trade { trade, .. } => Some(Record::Trade(trade)),
        WsEvent::Ticker { ticker, .. } => Some(Record::Ticker(ticker)),
        WsEvent::Snapshot { snapshot, .. } => Some(Record::Snapshot(snapshot)),
        _ => None,
    }
}

/// Parses every message into records; the count of messages that failed to parse is returned
/// too (a corpus that does not parse would measure the wrong thing).
pub fn parse_all(messages: &[Vec<u8>], received_at: TimestampUs) -> (Vec<Record>, usize) {
    let mut occurrences = OccurrenceCounter::default();
    let mut failed = 0;
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        match parse_ws(m, received_at) {
            Ok(event) => out.extend(to_record(event, &mut occurrences)),
            Err(_) => failed += 1,
        }
    }
    (out, failed)
}
