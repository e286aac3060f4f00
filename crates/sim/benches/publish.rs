//! Publish throughput: messages/s the simulator delivers to 1 and to 3 WebSocket subscribers.
//!
//! Run: `cargo bench -p kd-sim --bench publish` (optional args: seconds per run, markets).
//! Each subscriber takes every market's order book plus all trades and tickers, and only counts
//! frames, so the figure is the simulator's, not a client's parser's.

use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

async fn run(
    subscribers: usize,
    secs: u64,
    markets: usize,
) -> Result<(f64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let cfg = kd_sim::SimConfig {
        listen: "127.0.0.1:0".parse()?,
        markets,
        events: (markets / 10).max(1),
        rate: 5_000_000,
        hot_markets: markets,
        burst_factor: 1,
        create_every: Duration::ZERO,
        queue_capacity: 1 << 18,
        market_limit_per_sub: markets,
        ..kd_sim::SimConfig::default()
    };
    let sim = kd_sim::start(cfg, CancellationToken::new()).await?;
    sim.stop_publishing().await;
    let tickers = sim.active_markets(markets);
    let mut tasks = Vec::new();
    let go = Instant::now() + Duration::from_millis(500);
    let end = go + Duration::from_secs(secs);
    for _ in 0..subscribers {
        let (mut ws, _) = tokio_tungstenite::connect_async(sim.ws_url()).await?;
        let cmd = serde_json::json!({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": tickers}});
        ws.send(Message::Text(cmd.to_string().into())).await?;
        let cmd = serde_json::json!({"id": 2, "cmd": "subscribe", "params": {"channels": ["trade", "ticker"]}});
        ws.send(Message::Text(cmd.to_string().into())).await?;
        tasks.push(tokio::spawn(async move {
            let mut n = 0_u64;
            let mut counting = false;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                if !counting && now >= go {
                    counting = true;
                    n = 0;
                }
                match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                    Ok(Some(Ok(Message::Text(_)))) => n += 1,
                    Ok(Some(Ok(_))) | Err(_) => {}
                    _ => break,
                }
            }
            n
        }));
    }
    sim.resume_publishing();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await?);
    }
    let stats = sim.stats().await;
    sim.shutdown().await?;
    let per_sub = counts.iter().sum::<u64>() as f64 / subscribers as f64 / secs as f64;
    Ok((per_sub, stats.overflow_disconnects))
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let secs = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let markets = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for subs in [1, 3] {
        let (rate, overflows) = rt.block_on(run(subs, secs, markets))?;
        println!(
            "publish: {subs} subscriber(s), {markets} markets, {secs} s: {rate:.0} msgs/s per subscriber ({:.0} total), overflow disconnects {overflows}",
            rate * subs as f64
        );
    }
    Ok(())
}
