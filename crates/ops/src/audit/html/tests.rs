//! The page drawn from a real `audit` of a small production: every market a heat-map row, no
//! `-0.0`, an uncovered window red with its times.

use crate::audit::audit;
use crate::production::ProductionData;
use kd_core::records::{TradeSource, WirePos};
use kd_core::{Count, Gap, Price, TimestampUs, Trade};

const T0: i64 = 1_700_000_000_000_000;

fn trade(id: &str, ticker: &str, at: i64) -> Trade {
    Trade {
        trade_id: id.into(),
        ticker: ticker.into(),
        exchange_ts: TimestampUs::from_micros(at),
        yes_price: Price::new(40_000).unwrap_or(Price::ZERO),
        no_price: Price::new(60_000).unwrap_or(Price::ZERO),
        count: Count::new(100),
        taker_side: None,
        is_block_trade: false,
        source: TradeSource::Ws,
        received_at: TimestampUs::from_micros(at + 10),
        pos: WirePos::default(),
    }
}

fn gap(gatherer: &str, start: i64, end: i64) -> Gap {
    Gap {
        gatherer: gatherer.into(),
        gap_id: format!("{gatherer}-{start}"),
        ticker: None,
        tickers: Vec::new(),
        channel: "all".into(),
        start: TimestampUs::from_micros(start),
        end: TimestampUs::from_micros(end),
        reason: "downtime".into(),
        repair: "rest_trades+snapshot".into(),
    }
}

fn data(gaps: Vec<Gap>) -> ProductionData {
    ProductionData {
        trades: vec![trade("t1", "M-1", T0), trade("t2", "M-2", T0 + 60_000_000)],
        gaps,
        gatherers: vec!["a".into(), "b".into()],
        ..ProductionData::default()
    }
}

fn rows(page: &str) -> usize {
    let start = page.find("id=\"heatmap\"").unwrap_or(0);
    let end = page[start..]
        .find("</svg>")
        .map_or(page.len(), |e| start + e);
    page[start..end]
        .matches("text-anchor=\"end\"><title>")
        .count()
}

#[test]
fn a_clean_run_draws_every_market_and_no_negative_zero() -> Result<(), Box<dyn std::error::Error>> {
    let listed = vec!["M-1".to_string(), "M-2".to_string(), "M-3".to_string()];
    let report = audit(&data(Vec::new()), &listed, None, None)?;
    let page = super::page(&report);
    assert_eq!(report.verdict, "OK");
    assert_eq!(rows(&page), 3, "one heat-map row per market");
    assert!(!page.contains("-0.0"), "a negative zero on the page");
    assert!(page.contains("0.0 market-seconds"));
    let red = format!("fill=\"{}\"", super::NONE);
    assert!(!page.contains(&red), "nothing red on a clean run");
    Ok(())
}

#[test]
fn a_window_no_gatherer_covered_is_red_with_its_times() -> Result<(), Box<dyn std::error::Error>> {
    // Both gatherers down from 10 s to 20 s: a possible loss; a alone from 30 s to 40 s (a
    // 60 s span: whole seconds on the page).
    let gaps = vec![
        gap("a", T0 + 10_000_000, T0 + 20_000_000),
        gap("b", T0 + 10_000_000, T0 + 20_000_000),
        gap("a", T0 + 30_000_000, T0 + 40_000_000),
    ];
    let listed = vec!["M-1".to_string(), "M-2".to_string()];
    let report = audit(&data(gaps), &listed, None, None)?;
    let page = super::page(&report);
    assert_eq!(report.possible_loss.len(), 2, "{:?}", report.possible_loss);
    assert_eq!(rows(&page), 2);
    assert!(
        page.contains(&format!(
            "fill=\"{}\"><title>M-1 22:13:30–22:13:40: no gatherer",
            super::NONE
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "fill=\"{}\"><title>M-1 22:13:50–22:14:00: one gatherer only",
            super::SINGLE
        )),
        "{page}"
    );
    assert!(
        page.contains("longest 10.0 s; 20.0 market-seconds in all"),
        "{page}"
    );
    assert!(!page.contains("-0.0"));
    Ok(())
}
