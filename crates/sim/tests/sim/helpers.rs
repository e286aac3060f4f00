//! Shared helpers: start a simulator on port 0, a WebSocket client that rebuilds books.

use futures::{SinkExt, StreamExt};
use kd_sim::{Level, SimConfig, SimHandle};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub fn config() -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|_| SimConfig::default().listen),
        markets: 200,
        series: 4,
        events: 20,
        rate: 2_000,
        ..SimConfig::default()
    }
}

pub async fn start(cfg: SimConfig) -> Result<SimHandle, kd_sim::SimError> {
    kd_sim::start(cfg, CancellationToken::new()).await
}

pub async fn connect(sim: &SimHandle) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let (ws, _) = tokio_tungstenite::connect_async(sim.ws_url()).await?;
    Ok(ws)
}

pub async fn send(ws: &mut Ws, v: Value) -> TestResult {
    ws.send(Message::Text(v.to_string().into())).await?;
    Ok(())
}

/// Next JSON text message within `timeout` (pings and pongs skipped). `None` on timeout.
pub async fn next_json(
    ws: &mut Ws,
    timeout: Duration,
) -> Result<Option<Value>, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Err("connection closed".into()),
            Ok(Some(m)) => m?,
        };
        match msg {
            Message::Text(t) => return Ok(Some(serde_json::from_str(t.as_str())?)),
            Message::Close(f) => return Err(format!("closed: {f:?}").into()),
            _ => {}
        }
    }
}

/// Waits for a message satisfying `pred`, returning it (others are passed to `other`).
pub async fn wait_for(
    ws: &mut Ws,
    timeout: Duration,
    mut pred: impl FnMut(&Value) -> bool,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(v) = next_json(ws, Duration::from_millis(200)).await?
            && pred(&v)
        {
            return Ok(v);
        }
    }
    Err("timed out waiting for a message".into())
}

pub fn price(s: &str) -> i64 {
    kd_core::Price::parse_dollars(s)
        .map(|p| p.units())
        .unwrap_or(-1)
}

pub fn count(s: &str) -> i64 {
    kd_core::Count::parse_fp(s)
        .map(|c| c.hundredths())
        .unwrap_or(i64::MIN)
}

/// One side of a rebuilt book: price units → size hundredths.
pub type Side = BTreeMap<i64, i64>;
/// Both sides as `(price, size)` pairs, ascending.
pub type Pairs = (Vec<(i64, i64)>, Vec<(i64, i64)>);

/// Books rebuilt from snapshots and deltas, checking `seq` per `sid`.
#[derive(Default)]
pub struct Books {
    pub books: HashMap<String, (Side, Side)>,
    pub last_seq: HashMap<u64, u64>,
    pub gaps: u64,
    pub deltas: u64,
    pub snapshots: u64,
    pub negative: u64,
}

impl Books {
    /// Applies one message; returns its type.
    pub fn apply(&mut self, v: &Value) -> String {
        let ty = v["type"].as_str().unwrap_or("").to_string();
        if let (Some(sid), Some(seq)) = (v["sid"].as_u64(), v["seq"].as_u64())
            && let Some(prev) = self.last_seq.insert(sid, seq)
            && seq != prev + 1
        {
            self.gaps += 1;
        }
        let msg = &v["msg"];
        match ty.as_str() {
            "orderbook_snapshot" => {
                self.snapshots += 1;
                let t = msg["market_ticker"].as_str().unwrap_or("").to_string();
                let side = |key: &str| -> BTreeMap<i64, i64> {
                    msg[key]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|l| {
                                    (
                                        price(l[0].as_str().unwrap_or("")),
                                        count(l[1].as_str().unwrap_or("")),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                self.books
                    .insert(t, (side("yes_dollars_fp"), side("no_dollars_fp")));
            }
            "orderbook_delta" => {
                self.deltas += 1;
                let t = msg["market_ticker"].as_str().unwrap_or("");
                let p = price(msg["price_dollars"].as_str().unwrap_or(""));
                let d = count(msg["delta_fp"].as_str().unwrap_or(""));
                let book = self.books.entry(t.to_string()).or_default();
                let side = if msg["side"] == "yes" {
                    &mut book.0
                } else {
                    &mut book.1
                };
                let e = side.entry(p).or_insert(0);
                *e += d;
                if *e < 0 {
                    self.negative += 1;
                }
                if *e == 0 {
                    side.remove(&p);
                }
            }
            _ => {}
        }
        ty
    }

    pub fn levels(&self, ticker: &str) -> Option<Pairs> {
        self.books.get(ticker).map(|(y, n)| {
            (
                y.iter().map(|(a, b)| (*a, *b)).collect(),
                n.iter().map(|(a, b)| (*a, *b)).collect(),
            )
        })
    }
}

pub fn to_pairs(levels: &[Level]) -> Vec<(i64, i64)> {
    levels
        .iter()
        .map(|l| (l.price.units(), l.size.hundredths()))
        .collect()
}

pub fn subscribe_cmd(id: u64, channels: &[&str], tickers: &[String]) -> Value {
    let mut params = json!({"channels": channels});
    if !tickers.is_empty() {
        params["market_tickers"] = json!(tickers);
    }
    json!({"id": id, "cmd": "subscribe", "params": params})
}

pub async fn get_json(url: &str) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let resp = reqwest::get(url).await?;
    let status = resp.status().as_u16();
    let body = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    ))
}
