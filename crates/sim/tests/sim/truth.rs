//! The ground-truth log agrees with what a subscriber receives and with REST.

use crate::helpers::*;
use kd_core::records::{Identity, OccurrenceCounter};
use kd_core::{Count, Price, Record, Side, TimestampUs};
use kd_sim::TruthLine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// What a correct gatherer records from a delta message.
fn delta_identity(v: &Value, occ: &mut OccurrenceCounter) -> Option<Identity> {
    let m = &v["msg"];
    let ticker = m["market_ticker"].as_str()?;
    let ts = TimestampUs::parse_rfc3339(m["ts"].as_str()?).ok()?;
    let side = Side::parse(m["side"].as_str()?)?;
    let price = Price::parse_dollars(m["price_dollars"].as_str()?).ok()?;
    let delta = Count::parse_fp(m["delta_fp"].as_str()?).ok()?;
    let occurrence = occ.next(ticker, ts, side, price, delta);
    Some(Identity::Delta {
        ticker: ticker.to_string(),
        exchange_ts: ts.micros(),
        side,
        price: price.units(),
        delta: delta.hundredths(),
        occurrence,
    })
}

#[tokio::test]
async fn truth_matches_the_feed_rest_and_final_books() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let sim = start(kd_sim::SimConfig {
        truth: Some(path.clone()),
        rate: 10_000,
        checkpoint_every: Duration::from_millis(300),
        create_every: Duration::from_millis(200),
        market_life: Duration::from_secs(2),
        ..config()
    })
    .await?;
    let tickers = sim.active_markets(60);
    let (subscribed, unsubscribed) = tickers.split_at(40);
    let mut ws = connect(&sim).await?;
    send(
        &mut ws,
        subscribe_cmd(1, &["orderbook_delta", "trade"], subscribed),
    )
    .await?;
    send(
        &mut ws,
        json!({"id": 2, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}}),
    )
    .await?;
    let mut occ = OccurrenceCounter::default();
    let mut got_deltas: HashSet<Identity> = HashSet::new();
    let mut got_trades: HashSet<String> = HashSet::new();
    let mut got_lifecycle = 0;
    let mut books = Books::default();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if let Some(v) = next_json(&mut ws, Duration::from_millis(200)).await? {
            books.apply(&v);
            match v["type"].as_str() {
                Some("orderbook_delta") => {
                    let id = delta_identity(&v, &mut occ).ok_or("bad delta")?;
                    assert!(got_deltas.insert(id), "identical identity twice: {v}");
                }
                Some("trade") => {
                    got_trades.insert(v["msg"]["trade_id"].as_str().unwrap_or("").to_string());
                }
                Some("market_lifecycle_v2") => got_lifecycle += 1,
                _ => {}
            }
        }
    }
    sim.stop_publishing().await;
    while let Some(v) = next_json(&mut ws, Duration::from_millis(500)).await? {
        books.apply(&v);
        match v["type"].as_str() {
            Some("orderbook_delta") => {
                got_deltas.insert(delta_identity(&v, &mut occ).ok_or("bad delta")?);
            }
            Some("trade") => {
                got_trades.insert(v["msg"]["trade_id"].as_str().unwrap_or("").to_string());
            }
            Some("market_lifecycle_v2") => got_lifecycle += 1,
            _ => {}
        }
    }
    sim.flush_truth().await;
    // REST trades, all pages.
    let mut rest_trades = HashSet::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = get_json(&format!(
            "{}/markets/trades?limit=1000&cursor={cursor}",
            sim.rest_base()
        ))
        .await?;
        assert_eq!(status, 200);
        for t in body["trades"].as_array().ok_or("trades")? {
            assert!(
                rest_trades.insert(t["trade_id"].as_str().unwrap_or("").to_string()),
                "trade twice over REST"
            );
        }
        cursor = body["cursor"].as_str().unwrap_or("").to_string();
        if cursor.is_empty() {
            break;
        }
    }
    let final_books: HashMap<String, _> = tickers
        .iter()
        .filter_map(|t| Some((t.clone(), sim.book(t)?)))
        .collect();
    sim.shutdown().await?;

    let mut truth_deltas_delivered = HashSet::new();
    let mut truth_trades = HashSet::new();
    let mut truth_trades_delivered = HashSet::new();
    let mut undelivered_unsubscribed = 0;
    let mut truth_lifecycle = 0;
    let mut last_book: BTreeMap<String, (TimestampUs, Pairs)> = BTreeMap::new();
    let mut starts = 0;
    for line in kd_sim::read_truth(&path)? {
        match line? {
            TruthLine::Start { .. } => starts += 1,
            TruthLine::Published { record, delivered } => {
                let ticker = match &record {
                    Record::Delta(d) => d.ticker.clone(),
                    Record::Trade(t) => t.ticker.clone(),
                    _ => String::new(),
                };
                match &record {
                    Record::Delta(_) if delivered => {
                        truth_deltas_delivered.insert(record.identity());
                    }
                    Record::Trade(t) => {
                        truth_trades.insert(t.trade_id.clone());
                        if delivered {
                            truth_trades_delivered.insert(t.trade_id.clone());
                        }
                    }
                    Record::Lifecycle(_) if delivered => truth_lifecycle += 1,
                    _ => {}
                }
                if unsubscribed.contains(&ticker) {
                    assert!(
                        !delivered,
                        "{ticker} was never subscribed but marked delivered"
                    );
                    undelivered_unsubscribed += 1;
                }
            }
            TruthLine::Book {
                ticker,
                ts,
                yes,
                no,
            } => {
                if let Some(prev) = last_book.get(&ticker) {
                    assert!(ts > prev.0);
                }
                last_book.insert(ticker, (ts, (to_pairs(&yes), to_pairs(&no))));
            }
            TruthLine::Fault { .. } | TruthLine::Market { .. } => {}
        }
    }
    assert_eq!(starts, 1);
    assert!(undelivered_unsubscribed > 0);
    assert_eq!(
        got_deltas, truth_deltas_delivered,
        "deltas received vs truth (delivered)"
    );
    assert_eq!(
        got_trades, truth_trades_delivered,
        "trades received vs truth (delivered)"
    );
    assert_eq!(
        rest_trades, truth_trades,
        "REST trades vs every published trade"
    );
    assert!(
        got_lifecycle > 0 && got_lifecycle == truth_lifecycle,
        "lifecycle {got_lifecycle} vs {truth_lifecycle}"
    );
    // The last check point of each changed book equals the exchange's final book and the book
    // the subscriber rebuilt.
    for t in subscribed {
        let (_, (yes, no)) = last_book.get(t).ok_or(format!("no check point for {t}"))?;
        let (fy, fnn) = &final_books[t];
        assert_eq!(
            (yes.clone(), no.clone()),
            (to_pairs(fy), to_pairs(fnn)),
            "{t}"
        );
        assert_eq!(
            books.levels(t),
            Some((yes.clone(), no.clone())),
            "{t} rebuilt"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_restarted_simulator_never_reuses_a_trade_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let mut seen = HashSet::new();
    for round in 0..2 {
        let sim = start(kd_sim::SimConfig {
            truth: Some(path.clone()),
            state_dir: Some(dir.path().join("state")),
            rate: 20_000,
            ..config()
        })
        .await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // `trades` counts restored trades too: wait for 200 new ones in this round.
        while sim.stats().await.trades < 200 * (round as u64 + 1)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sim.stop_publishing().await;
        // Trades published before a restart are still served.
        let (_, page) = get_json(&format!("{}/markets/trades?limit=1000", sim.rest_base())).await?;
        let served = page["trades"].as_array().map_or(0, Vec::len);
        assert!(
            served >= 200 * (round + 1),
            "round {round}: REST serves {served} trades"
        );
        sim.shutdown().await?;
        let mut starts = 0;
        for line in kd_sim::read_truth(&path)? {
            match line? {
                TruthLine::Start { .. } => starts += 1,
                TruthLine::Published {
                    record: Record::Trade(t),
                    ..
                } if starts == round + 1 => {
                    assert!(
                        seen.insert(t.trade_id.clone()),
                        "trade id {} reused",
                        t.trade_id
                    );
                }
                _ => {}
            }
        }
        assert_eq!(starts, round + 1, "the truth log is appended to");
    }
    assert!(seen.len() >= 400);
    Ok(())
}
