//! Malformed frames, unknown message types and oversized frames are counted, and the
//! connection stays up: a scripted WebSocket server sends them between valid trades.

use crate::common;
use kd_testkit::prom::value as metric;

use common::{TestResult, all_rows, gatherer_config, wait_until};
use futures::{SinkExt, StreamExt};
use kd_core::Table;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

fn trade(n: u32) -> String {
    format!(
        r#"{{"type":"trade","sid":1,"seq":{seq},"msg":{{"trade_id":"bad-frames-{n}","market_ticker":"KX-T{n}","yes_price_dollars":"0.4200","no_price_dollars":"0.5800","count_fp":"3.00","taker_outcome_side":"yes","taker_book_side":"bid","is_block_trade":false,"ts_ms":1780096775004}}}}"#,
        seq = n + 1
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_counted_and_the_connection_stays_up() -> TestResult {
    // Asserts on process-wide counters: alone in the test binary (see `common::SERIAL`).
    let _serial = common::SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let server_accepted = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            server_accepted.fetch_add(1, Ordering::SeqCst);
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            // Answer the first subscribe (trade, connection 0 of 1 carries every channel).
            let mut answered = 0;
            while answered < 3 {
                match ws.next().await {
                    Some(Ok(Message::Text(cmd))) => {
                        let v: serde_json::Value = serde_json::from_str(&cmd).unwrap_or_default();
                        let id = v["id"].as_u64().unwrap_or(0);
                        let channel = v["params"]["channels"][0]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        let sid = if channel == "trade" { 1 } else { 10 + id };
                        let reply = format!(
                            r#"{{"id":{id},"type":"subscribed","msg":{{"channel":"{channel}","sid":{sid}}}}}"#
                        );
                        if ws.send(Message::text(reply)).await.is_err() {
                            return;
                        }
                        answered += 1;
                    }
                    _ => return,
                }
            }
            let oversized = format!(
                r#"{{"type":"trade","sid":1,"msg":{{"pad":"{}"}}}}"#,
                "x".repeat(9 << 20)
            );
            let frames = vec![
                Message::text(trade(0)),
                Message::text("{not json"),
                Message::text(trade(1)),
                Message::text(r#"{"type":"brand_new_type","sid":1,"msg":{}}"#),
                Message::text(trade(2)),
                Message::text(oversized),
                Message::text(trade(3)),
                Message::binary(vec![0xff, 0x00, 0x13]),
                Message::text(r#"{"type":"trade","sid":1,"seq":5,"msg":{"market_ticker":"X"}}"#),
                Message::text(trade(5)),
            ];
            for f in frames {
                if ws.send(f).await.is_err() {
                    return;
                }
            }
            // Keep the connection open (and alive with pings) until the client goes.
            loop {
                tokio::select! {
                    m = ws.next() => if m.is_none() { return },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if ws.send(Message::Ping("heartbeat".into())).await.is_err() { return; }
                    }
                }
            }
        }
    });

    let dir = tempfile::tempdir()?;
    let mut config = gatherer_config(
        dir.path(),
        "http://127.0.0.1:9/trade-api/v2",
        &format!("ws://{addr}/"),
    );
    config.connections = 1;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let stored = wait_until(Duration::from_secs(20), || {
        all_rows(dir.path(), Table::Trades).is_ok_and(|r| r.len() == 5)
    })
    .await;
    let rows = all_rows(dir.path(), Table::Trades)?;
    assert!(stored, "expected the 5 valid trades, got {}", rows.len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = kd_core::telemetry::render_metrics();
    assert_eq!(
        metric(&text, r#"router_parse_errors_total{kind="json"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"router_parse_errors_total{kind="oversized"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"router_unknown_messages_total{type="brand_new_type"}"#
        ),
        1.0
    );
    assert!(metric(&text, r#"router_parse_errors_total{kind="missing_field"}"#) >= 1.0);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the connection was never replaced"
    );
    assert_eq!(gatherer.health().connections_up.load(Ordering::Relaxed), 1);
    gatherer.stop().await?;
    server.abort();
    Ok(())
}

/// The bound of one WebSocket message (issue 17): a message above
/// `LIBRARY_MAX_MESSAGE` (16 MiB) ends the connection inside the library instead of being
/// buffered whole (main accepted up to 256 MiB on every connection), and the connection is
/// replaced; a 1,000-market snapshot-sized message (about 4.2 MB) still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_the_bound_ends_the_connection_and_it_is_replaced() -> TestResult {
    // Its frames move process-wide counters the test above asserts on (`common::SERIAL`).
    let _shared = common::SERIAL.read().await;
    let bound = kd_gatherer::connection::session::LIBRARY_MAX_MESSAGE;
    assert_eq!(bound, 16 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let server_accepted = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = server_accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut answered = 0;
                while answered < 3 {
                    let Some(Ok(Message::Text(cmd))) = ws.next().await else {
                        return;
                    };
                    let v: serde_json::Value = serde_json::from_str(&cmd).unwrap_or_default();
                    let id = v["id"].as_u64().unwrap_or(0);
                    let channel = v["params"]["channels"][0]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let sid = if channel == "trade" { 1 } else { 10 + id };
                    let reply = format!(
                        r#"{{"id":{id},"type":"subscribed","msg":{{"channel":"{channel}","sid":{sid}}}}}"#
                    );
                    if ws.send(Message::text(reply)).await.is_err() {
                        return;
                    }
                    answered += 1;
                }
                // First connection: a snapshot-sized message, one trade, then one above the
                // bound. The replacement: one more trade.
                let mut frames = Vec::new();
                if n == 0 {
                    let snapshot_sized = format!(
                        r#"{{"type":"brand_new_type","sid":1,"msg":{{"pad":"{}"}}}}"#,
                        "x".repeat(4_200_000)
                    );
                    frames.push(Message::text(snapshot_sized));
                    frames.push(Message::text(trade(0)));
                    let above = format!(
                        r#"{{"type":"trade","sid":1,"msg":{{"pad":"{}"}}}}"#,
                        "x".repeat(20 << 20)
                    );
                    frames.push(Message::text(above));
                } else {
                    frames.push(Message::text(trade(1)));
                }
                for f in frames {
                    if ws.send(f).await.is_err() {
                        return;
                    }
                }
                loop {
                    tokio::select! {
                        m = ws.next() => if !matches!(m, Some(Ok(_))) { return },
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {
                            if ws.send(Message::Ping("heartbeat".into())).await.is_err() { return; }
                        }
                    }
                }
            });
        }
    });

    let dir = tempfile::tempdir()?;
    let mut config = gatherer_config(
        dir.path(),
        "http://127.0.0.1:9/trade-api/v2",
        &format!("ws://{addr}/"),
    );
    config.connections = 1;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let stored = wait_until(Duration::from_secs(30), || {
        all_rows(dir.path(), Table::Trades).is_ok_and(|r| r.len() == 2)
    })
    .await;
    let rows = all_rows(dir.path(), Table::Trades)?;
    assert!(
        stored,
        "expected the trade before the oversized message and the one on the replacement \
         connection, got {} rows, {} connections",
        rows.len(),
        accepted.load(Ordering::SeqCst)
    );
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "the connection was not replaced"
    );
    gatherer.stop().await?;
    server.abort();
    Ok(())
}
