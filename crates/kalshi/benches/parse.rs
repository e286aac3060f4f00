//! Parse throughput on one core of `parse_ws` (bytes) and `parse_ws_text` (text frames, the
//! gatherer's path).
//!
//! Run: `cargo bench -p kd-kalshi --bench parse` (criterion prints time per batch and
//! elements/s; each batch is `BATCH` messages, so "thrpt" is messages per second).
//!
//! Streams, generated deterministically in the live shapes of `samples.jsonl`:
//! - `deltas`: `orderbook_delta` only (current format: RFC 3339 `ts` + `ts_ms`, `market_id`).
//! - `mixed`: 90 % deltas, 5 % trades, 4 % tickers, 1 % snapshots — roughly the proportions a
//!   gatherer subscribed to every market sees.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kd_core::TimestampUs;
use kd_kalshi::parse::{parse_ws, parse_ws_text};
use std::hint::black_box;

const BATCH: usize = 10_000;

/// A small deterministic generator (xorshift) so runs are comparable.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TICKERS: [&str; 6] = [
    "KXHIGHNY-26JUN24-T82",
    "KXBTCD-26MAY3017-T73499.99",
    "FED-23DEC-T3.00",
    "KXFED-27APR-T4.25",
    "INXD-23SEP14-B4487",
    "KXMVENFLSINGLEGAME-S2026ABCDEF-12345",
];

fn ticker(g: &mut Gen) -> &'static str {
    TICKERS[g.below(TICKERS.len() as u64) as usize]
}

fn delta(g: &mut Gen, seq: u64) -> String {
    let ms = 1_782_316_195_000 + seq;
    let us = g.below(1000);
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!(
        r#"{{"type":"orderbook_delta","sid":1,"seq":{seq},"msg":{{"market_ticker":"{}","market_id":"0445cdcb-e22f-4522-9981-aed4b66015ff","price_dollars":"0.{:04}","delta_fp":"{}{}.{:02}","side":"{}","ts":"2026-06-24T{h:02}:{m:02}:{s:02}.{:03}{us:03}Z","ts_ms":{ms}}}}}"#,
        ticker(g),
        g.below(9999) + 1,
        if g.below(2) == 0 { "-" } else { "" },
        g.below(500),
        g.below(100),
        if g.below(2) == 0 { "yes" } else { "no" },
        ms % 1000,
    )
}

fn trade(g: &mut Gen, seq: u64) -> String {
    let yes = g.below(98) + 1;
    format!(
        r#"{{"type":"trade","sid":2,"seq":{seq},"msg":{{"trade_id":"cd6c95cc-46e1-4654-faa5-{:012x}","market_ticker":"{}","yes_price_dollars":"0.{yes:02}00","no_price_dollars":"0.{:02}00","count_fp":"{}.00","taker_side":"yes","taker_outcome_side":"yes","taker_book_side":"bid","is_block_trade":false,"ts":1780096775,"ts_ms":{}}}}}"#,
        g.next() & 0xffff_ffff_ffff,
        ticker(g),
        100 - yes,
        g.below(1000) + 1,
        1_780_096_775_004 + seq,
    )
}

fn ticker_msg(g: &mut Gen) -> String {
    format!(
        r#"{{"type":"ticker","sid":11,"msg":{{"market_ticker":"{}","market_id":"9b0f6b43-5b68-4f9f-9f02-9a2d1b8ac1a1","price_dollars":"0.480","yes_bid_dollars":"0.450","yes_ask_dollars":"0.530","volume_fp":"{}.00","open_interest_fp":"20422.00","dollar_volume":16948,"dollar_open_interest":10211,"yes_bid_size_fp":"300.00","yes_ask_size_fp":"150.00","last_trade_size_fp":"25.00","ts":1669149841,"ts_ms":1669149841000,"time":"2022-11-22T20:44:01Z"}}}}"#,
        ticker(g),
        g.below(100_000),
    )
}

fn snapshot(g: &mut Gen, seq: u64) -> String {
    let side = |g: &mut Gen| {
        (0..10)
            .map(|i| format!(r#"["0.{:02}00","{}.00"]"#, i * 5 + 1, g.below(1000)))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"type":"orderbook_snapshot","sid":1,"seq":{seq},"msg":{{"market_ticker":"{}","market_id":"0445cdcb-e22f-4522-9981-aed4b66015ff","yes_dollars_fp":[{}],"no_dollars_fp":[{}]}}}}"#,
        ticker(g),
        side(g),
        side(g),
    )
}

fn deltas_stream() -> Vec<Vec<u8>> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    (0..BATCH as u64)
        .map(|seq| delta(&mut g, seq).into_bytes())
        .collect()
}

fn mixed_stream() -> Vec<Vec<u8>> {
    let mut g = Gen(0xD1B5_4A32_D192_ED03);
    (0..BATCH as u64)
        .map(|seq| {
            let roll = g.below(100);
            match roll {
                0..90 => delta(&mut g, seq),
                90..95 => trade(&mut g, seq),
                95..99 => ticker_msg(&mut g),
                _ => snapshot(&mut g, seq),
            }
            .into_bytes()
        })
        .collect()
}

fn bench_stream(c: &mut Criterion, name: &str, stream: &[Vec<u8>]) {
    let received = TimestampUs::from_micros(1_782_316_200_000_000);
    // Every generated message must parse; a bench of errors would measure the wrong thing.
    let failures = stream
        .iter()
        .filter(|m| parse_ws(m, received).is_err())
        .count();
    assert_eq!(failures, 0, "{name}: generated messages failed to parse");
    let bytes: usize = stream.iter().map(Vec::len).sum();
    eprintln!(
        "{name}: {} messages, {} bytes on average",
        stream.len(),
        bytes / stream.len()
    );
    let mut group = c.benchmark_group("parse_ws");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for m in stream {
                let _ = black_box(parse_ws(black_box(m), received));
            }
        })
    });
    group.finish();
    // The gatherer's path: WebSocket text frames, whose UTF-8 the socket library has checked.
    let texts: Vec<String> = stream
        .iter()
        .filter_map(|m| String::from_utf8(m.clone()).ok())
        .collect();
    assert_eq!(
        texts.len(),
        stream.len(),
        "{name}: generated non-UTF-8 text"
    );
    let mut group = c.benchmark_group("parse_ws_text");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for m in &texts {
                let _ = black_box(parse_ws_text(black_box(m), received));
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_stream(c, "deltas", &deltas_stream());
    bench_stream(c, "mixed", &mixed_stream());
}

criterion_group!(parse, benches);
criterion_main!(parse);
