//! The replay's serving rate alone, without the bench's dedup and export stages: a generated
//! range (the shapes and mix of kd-bench's corpus: 94 % deltas, 5 % trades, 1 % tickers over
//! `MARKETS` markets, 10 µs apart) loaded as a [`Dataset`], served by `kd_replay::serve` at
//! `--speed max` on a loopback port, and one tokio-tungstenite client subscribed to every
//! market's `orderbook_delta`, `trade` and `ticker` that reads every message until
//! `replay_end` — what `kalshi-data bench` times as `replay_msgs_per_s` (it too loads the range
//! before the clock starts; the archive read is its separate `replay_read_rows_per_s`).
//!
//! ```sh
//! cargo bench --workspace --bench replay_serve            # MSGS=1000000 MARKETS=10000 RUNS=3
//! MSGS=300000 SNAPSHOTS=1 cargo bench --workspace --bench replay_serve
//! ```
//! `SNAPSHOTS=1` gives every market a five-level book at the range's start (the opening
//! `orderbook_snapshot`s are then part of the stream).

use futures::{SinkExt, StreamExt};
use kd_core::records::{Level, TradeSource};
use kd_core::{
    Count, OrderbookDelta, OrderbookSnapshot, Price, Side, SnapshotSource, Ticker, TimestampUs,
    Trade,
};
use kd_replay::clock::{Clock, Speed};
use kd_replay::data::{Dataset, Loaded};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Gen(u64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn price(g: &mut Gen) -> Price {
    Price::new((g.below(9999) as i64 + 1) * 10).unwrap_or(Price::ZERO)
}

/// `count` records over `markets` markets from `start`, 10 µs apart.
fn generate(count: usize, markets: usize, snapshots: bool, start: TimestampUs) -> Loaded {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let m = markets.max(1) as u64;
    let mut loaded = Loaded::default();
    if snapshots {
        for k in 0..m {
            let levels = |g: &mut Gen| -> Vec<Level> {
                let mut v: Vec<Level> = (0..5)
                    .map(|_| Level {
                        price: price(g),
                        size: Count::new(g.below(50_000) as i64 + 100),
                    })
                    .collect();
                v.sort_by_key(|l| l.price);
                v.dedup_by_key(|l| l.price);
                v
            };
            loaded.books.snapshots.push(OrderbookSnapshot {
                ticker: format!("BENCH-E{}-M{k}", k / 8),
                source: SnapshotSource::Ws,
                exchange_ts: start,
                yes: levels(&mut g),
                no: levels(&mut g),
                received_at: start,
                pos: Default::default(),
            });
        }
    }
    for i in 0..count as u64 {
        let ts = TimestampUs::from_micros(start.micros() + 10 + (i as i64) * 10);
        let k = g.below(m);
        let ticker = format!("BENCH-E{}-M{k}", k / 8);
        let side = if g.below(2) == 0 { Side::Yes } else { Side::No };
        match g.below(100) {
            0..94 => loaded.books.deltas.push(OrderbookDelta {
                ticker,
                exchange_ts: ts,
                side,
                price: price(&mut g),
                delta: Count::new(g.below(100_000) as i64 - 50_000),
                occurrence: 0,
                received_at: ts,
                pos: Default::default(),
            }),
            94..99 => {
                let yes = price(&mut g);
                loaded.rest.trades.push(Trade {
                    trade_id: format!("cd6c95cc-46e1-4654-faa5-{i:012x}"),
                    ticker,
                    exchange_ts: ts,
                    yes_price: yes,
                    no_price: yes.complement(),
                    count: Count::new(g.below(100_000) as i64 + 1),
                    taker_side: Some(side),
                    is_block_trade: false,
                    source: TradeSource::Ws,
                    received_at: ts,
                    pos: Default::default(),
                })
            }
            _ => loaded.rest.tickers.push(Ticker {
                ticker,
                exchange_ts: ts,
                price: Some(price(&mut g)),
                yes_bid: Some(price(&mut g)),
                yes_ask: Some(price(&mut g)),
                volume: Some(Count::new(g.below(1 << 30) as i64)),
                open_interest: Some(Count::new(g.below(1 << 30) as i64)),
                dollar_volume: Some(g.below(1 << 20) as i64),
                dollar_open_interest: Some(g.below(1 << 20) as i64),
                yes_bid_size: Some(Count::new(g.below(100_000) as i64)),
                yes_ask_size: Some(Count::new(g.below(100_000) as i64)),
                last_trade_size: Some(Count::new(g.below(100_000) as i64)),
                received_at: ts,
                pos: Default::default(),
            }),
        }
    }
    loaded
}

/// Messages until `replay_end` and the time from the `subscribe` to it.
async fn client(addr: &str) -> Result<(u64, Duration), String> {
    let url = format!("ws://{addr}{}", kd_replay::WS_PATH);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let sub =
        r#"{"id":1,"cmd":"subscribe","params":{"channels":["orderbook_delta","trade","ticker"]}}"#;
    let start = Instant::now();
    ws.send(Message::Text(sub.into()))
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = 0_u64;
    while let Some(next) = ws.next().await {
        match next.map_err(|e| e.to_string())? {
            Message::Text(t) if t.as_str().starts_with("{\"type\":\"replay_end\"") => {
                return Ok((messages, start.elapsed()));
            }
            Message::Text(_) => messages += 1,
            _ => {}
        }
    }
    Err("closed before replay_end".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (msgs, markets, runs) = (
        env("MSGS", 1_000_000),
        env("MARKETS", 10_000),
        env("RUNS", 3),
    );
    let snapshots = env("SNAPSHOTS", 0) != 0;
    let from = TimestampUs::from_micros(1_764_669_600_000_000);
    let to = TimestampUs::from_micros(from.micros() + 10 * msgs as i64 + 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let started = Instant::now();
        let data = Dataset::build(generate(msgs, markets, snapshots, from), from, to);
        println!(
            "replay_serve: {} timeline events over {markets} markets (snapshots: {snapshots}), built in {:?}",
            data.timeline.len(),
            started.elapsed()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let server = tokio::spawn(kd_replay::serve(
            listener,
            data,
            Clock::new(from, to, Speed::Max),
            None,
        ));
        for run in 1..=runs {
            let (n, took) = client(&addr).await?;
            let rate = n as f64 / took.as_secs_f64();
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            println!(
                "run {run}: {n} messages in {took:?}: {rate:.0} msg/s (load {})",
                load.trim()
            );
        }
        server.abort();
        Ok(())
    })
}
