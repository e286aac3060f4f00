//! WebSocket behaviour: snapshot then contiguous deltas, books that match the exchange's,
//! commands and their error codes, heartbeats, authentication.

use crate::helpers::*;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_thousand_markets_rebuild_to_the_exchange_books() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        markets: 1_200,
        events: 100,
        rate: 20_000,
        hot_markets: 5_000,
        create_every: Duration::ZERO,
        ..config()
    })
    .await?;
    let tickers = sim.active_markets(1_000);
    assert_eq!(tickers.len(), 1_000);
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["orderbook_delta"], &tickers)).await?;
    let mut books = Books::default();
    let first = wait_for(&mut ws, Duration::from_secs(10), |v| {
        v["type"] == "subscribed"
    })
    .await?;
    assert_eq!(first["msg"]["channel"], "orderbook_delta");
    // Every market's snapshot comes before any delta of it.
    let mut seen_snapshot = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while books.deltas < 20_000 && std::time::Instant::now() < deadline {
        if let Some(v) = next_json(&mut ws, Duration::from_millis(500)).await? {
            let t = v["msg"]["market_ticker"].as_str().unwrap_or("").to_string();
            match books.apply(&v).as_str() {
                "orderbook_snapshot" => {
                    seen_snapshot.insert(t);
                }
                "orderbook_delta" => {
                    assert!(seen_snapshot.contains(&t), "delta before snapshot for {t}")
                }
                _ => {}
            }
        }
    }
    assert_eq!(books.snapshots, 1_000);
    assert!(books.deltas >= 20_000, "only {} deltas", books.deltas);
    sim.stop_publishing().await;
    // Drain until the client's books equal the exchange's (bounded by a deadline).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut mismatched = usize::MAX;
    while std::time::Instant::now() < deadline {
        match next_json(&mut ws, Duration::from_millis(300)).await? {
            Some(v) => {
                books.apply(&v);
            }
            None => {
                mismatched = tickers
                    .iter()
                    .filter(|t| {
                        let Some((yes, no)) = sim.book(t) else {
                            return true;
                        };
                        books.levels(t) != Some((to_pairs(&yes), to_pairs(&no)))
                    })
                    .count();
                if mismatched == 0 {
                    break;
                }
            }
        }
    }
    assert_eq!(mismatched, 0, "books differ from the exchange");
    assert_eq!(books.gaps, 0);
    assert_eq!(books.negative, 0);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn commands_answer_with_kalshi_codes() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        market_limit_per_sub: 3,
        ..config()
    })
    .await?;
    let tickers = sim.active_markets(5);
    let mut ws = connect(&sim).await?;
    let cases = [
        (json!({"id": 1, "cmd": "nope"}), 5),
        (json!({"id": 2, "cmd": "subscribe"}), 2),
        (json!({"id": 3, "cmd": "subscribe", "params": {}}), 3),
        (
            json!({"id": 4, "cmd": "subscribe", "params": {"channels": ["bogus"]}}),
            8,
        ),
        (
            json!({"id": 5, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}),
            14,
        ),
        (subscribe_cmd(6, &["orderbook_delta"], &tickers[..4]), 26),
        (
            json!({"id": 7, "cmd": "unsubscribe", "params": {"sids": [99]}}),
            7,
        ),
        (json!({"id": 8, "cmd": "unsubscribe", "params": {}}), 4),
        (
            json!({"id": 9, "cmd": "update_subscription", "params": {"sids": [1, 2], "action": "add_markets"}}),
            12,
        ),
        (
            json!({"id": 10, "cmd": "update_subscription", "params": {"sid": 1}}),
            15,
        ),
        (
            json!({"id": 11, "cmd": "update_subscription", "params": {"sid": 1, "action": "explode"}}),
            13,
        ),
    ];
    for (cmd, code) in cases {
        let id = cmd["id"].clone();
        send(&mut ws, cmd).await?;
        let v = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == id).await?;
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["msg"]["code"], code, "{v}");
    }
    // A working subscription, grown to the limit, then past it.
    send(
        &mut ws,
        subscribe_cmd(20, &["orderbook_delta"], &tickers[..2]),
    )
    .await?;
    let sub = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 20).await?;
    assert_eq!(sub["type"], "subscribed");
    let sid = sub["msg"]["sid"].as_u64().ok_or("sid")?;
    send(&mut ws, json!({"id": 21, "cmd": "update_subscription", "params": {"sid": sid, "action": "add_markets", "market_tickers": [tickers[2]]}})).await?;
    let ok = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 21).await?;
    assert_eq!(ok["type"], "ok");
    assert_eq!(
        ok["msg"]["market_tickers"].as_array().map(Vec::len),
        Some(3)
    );
    send(&mut ws, json!({"id": 22, "cmd": "update_subscription", "params": {"sid": sid, "action": "add_markets", "market_tickers": [tickers[3]]}})).await?;
    let err = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 22).await?;
    assert_eq!(err["msg"]["code"], 26);
    send(&mut ws, json!({"id": 23, "cmd": "update_subscription", "params": {"sids": [sid], "action": "get_snapshot", "market_tickers": [tickers[0]]}})).await?;
    let snap = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 23).await?;
    assert_eq!(snap["type"], "orderbook_snapshot");
    send(&mut ws, json!({"id": 24, "cmd": "update_subscription", "params": {"sid": sid, "action": "delete_markets", "market_tickers": [tickers[0]]}})).await?;
    let ok = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 24).await?;
    assert_eq!(
        ok["msg"]["market_tickers"].as_array().map(Vec::len),
        Some(2)
    );
    send(&mut ws, json!({"id": 25, "cmd": "subscribe", "params": {"channels": ["trade", "ticker", "market_lifecycle_v2"]}})).await?;
    send(&mut ws, json!({"id": 26, "cmd": "list_subscriptions"})).await?;
    let list = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 26).await?;
    assert_eq!(list["msg"].as_array().map(Vec::len), Some(4));
    send(
        &mut ws,
        json!({"id": 27, "cmd": "unsubscribe", "params": {"sids": [sid]}}),
    )
    .await?;
    let un = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 27).await?;
    assert_eq!(un["type"], "unsubscribed");
    assert!(un["seq"].as_u64().is_some());
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn server_pings_carry_heartbeat() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        ping_interval: Duration::from_millis(200),
        ..config()
    })
    .await?;
    let mut ws = connect(&sim).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Ping(body)))) => {
                assert_eq!(&body[..], b"heartbeat");
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => return Err(format!("no ping: {other:?}").into()),
        }
    }
    sim.shutdown().await?;
    Ok(())
}
