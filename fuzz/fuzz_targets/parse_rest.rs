//! Any bytes into every REST parser (and the record conversions): never panic.
#![no_main]

use kd_core::{SnapshotSource, TimestampUs};
use kd_kalshi::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let at = TimestampUs::from_micros(1_782_316_200_123_456);
    let _ = parse::parse_exchange_status(data);
    let _ = parse::parse_exchange_schedule(data);
    let _ = parse::parse_markets_page(data);
    let _ = parse::parse_market(data);
    let _ = parse::parse_events_page(data);
    let _ = parse::parse_event(data);
    let _ = parse::parse_series_list(data);
    let _ = parse::parse_series(data);
    if let Ok(book) = parse::parse_orderbook(data) {
        let _ = parse::orderbook_to_snapshot("T", &book, SnapshotSource::Rest, at);
    }
    if let Ok(books) = parse::parse_orderbooks(data) {
        for b in &books.orderbooks {
            if let Some(book) = b.book() {
                let _ = parse::orderbook_to_snapshot(&b.ticker, book, SnapshotSource::Rest, at);
            }
        }
    }
    for page in [parse::parse_trades_page(data), parse::parse_historical_trades_page(data)] {
        if let Ok(page) = page {
            for t in &page.trades {
                let _ = parse::rest_trade_to_record(t, at);
            }
        }
    }
});
