//! `kalshi-data replay` (issue 20): after a short `up` run with WebSocket faults, replaying its
//! range at `--speed max` to a client subscribed to every market gives exactly the trades and
//! deltas production holds (counts and values), in exchange-time order, with contiguous `seq`
//! per subscription; books built from the replayed stream equal `kalshi-data book` at 100
//! random (market, time) points. The same server answers a Python `websockets` client.

use futures::{SinkExt, StreamExt};
use kd_core::{Record, Table, TimestampUs};
use kd_testkit::up::{Up, UpOpts};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A running `replay` and the address it printed; killed on drop.
struct Replay {
    child: Child,
    addr: String,
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_replay(production: &str, from: i64, to: i64, speed: &str) -> Res<Replay> {
    let mut child = Command::new(BIN)
        .args(["replay", "--production", production, "--no-auth"])
        .args(["--from", &from.to_string(), "--to", &to.to_string()])
        .args(["--speed", speed, "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("replay listening on ")
        .ok_or_else(|| format!("replay printed `{line}`"))?
        .to_string();
    Ok(Replay { child, addr })
}

/// A short `up` with connection faults; returns its production URL.
fn captured(dir: &Path) -> Res<String> {
    let duration = 20;
    let mut up = Up::start(
        Path::new(BIN),
        dir,
        &UpOpts {
            markets: 20,
            rate: 300,
            duration,
            faults: vec!["ws-drop:0.003".into(), "ws-close:1006:7".into()],
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(Duration::from_secs(60))?;
    up.clear_faults_before_end(duration)?;
    up.wait_exit(Duration::from_secs(180))?;
    Ok(up.production.clone())
}

/// Production's trades and deltas: what the replay must send.
async fn stored(url: &str, from: i64, to: i64) -> Res<(Vec<Record>, Vec<Record>)> {
    let store = kd_production::open(url).await?;
    let (a, b) = (
        TimestampUs::from_micros(from + 1),
        TimestampUs::from_micros(to + 1),
    );
    let trades = store.read_window(Table::Trades, a, b).await?;
    let deltas = store.read_window(Table::Deltas, a, b).await?;
    Ok((trades, deltas))
}

type Book = (BTreeMap<String, String>, BTreeMap<String, String>);

fn levels(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l[0].as_str()?.to_string(), l[1].as_str()?.to_string())))
        .collect()
}

/// The stream as a client sees it, checked as it arrives.
#[derive(Default)]
struct Seen {
    trades: Vec<(String, String, String, String, i64)>,
    deltas: Vec<(String, i64, String, String, String)>,
    books: HashMap<String, Book>,
    last_seq: HashMap<u64, u64>,
    last_ts: i64,
    ended: bool,
}

fn fp_add(a: &str, b: &str) -> Res<String> {
    let h = |s: &str| -> Res<i64> {
        let (w, f) = s.split_once('.').unwrap_or((s, "0"));
        let neg = w.starts_with('-');
        let v = w.trim_start_matches('-').parse::<i64>()? * 100
            + format!("{f:0<2}")[..2].parse::<i64>()?;
        Ok(if neg { -v } else { v })
    };
    let v = h(a)? + h(b)?;
    Ok(format!("{}.{:02}", v / 100, v.rem_euclid(100)))
}

impl Seen {
    fn take(&mut self, frame: &Value) -> Res<()> {
        let kind = frame["type"].as_str().unwrap_or_default();
        if let (Some(sid), Some(seq)) = (frame["sid"].as_u64(), frame["seq"].as_u64()) {
            let prev = self.last_seq.insert(sid, seq).unwrap_or(0);
            assert_eq!(seq, prev + 1, "seq of sid {sid} not contiguous: {frame}");
        }
        let m = &frame["msg"];
        let ticker = m["market_ticker"].as_str().unwrap_or_default().to_string();
        match kind {
            "orderbook_snapshot" => {
                let book = (levels(&m["yes_dollars_fp"]), levels(&m["no_dollars_fp"]));
                self.books.insert(ticker, book);
            }
            "orderbook_delta" => {
                let ts = TimestampUs::parse_rfc3339(m["ts"].as_str().unwrap_or_default())?.micros();
                assert!(ts >= self.last_ts, "out of exchange-time order: {frame}");
                self.last_ts = ts;
                let (side, price, delta) = (
                    m["side"].as_str().unwrap_or_default().to_string(),
                    m["price_dollars"].as_str().unwrap_or_default().to_string(),
                    m["delta_fp"].as_str().unwrap_or_default().to_string(),
                );
                if let Some(book) = self.books.get_mut(&ticker) {
                    let levels = if side == "yes" {
                        &mut book.0
                    } else {
                        &mut book.1
                    };
                    let next = fp_add(levels.get(&price).map_or("0.00", |s| s), &delta)?;
                    if next.starts_with('-') || next == "0.00" {
                        levels.remove(&price);
                    } else {
                        levels.insert(price.clone(), next);
                    }
                }
                self.deltas.push((ticker, ts, side, price, delta));
            }
            "trade" => {
                let ts = m["ts_ms"].as_i64().unwrap_or_default() * 1_000;
                assert!(
                    ts / 1_000 >= self.last_ts / 1_000,
                    "trade out of order: {frame}"
                );
                self.trades.push((
                    m["trade_id"].as_str().unwrap_or_default().to_string(),
                    ticker,
                    m["yes_price_dollars"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    m["count_fp"].as_str().unwrap_or_default().to_string(),
                    ts,
                ));
            }
            "replay_end" => self.ended = true,
            _ => {}
        }
        Ok(())
    }
}

fn book_cli(url: &str, ticker: &str, at: i64) -> Res<Option<Book>> {
    let out = Command::new(BIN)
        .args(["book", "--production", url, "--ticker", ticker, "--json"])
        .args(["--depth", "100000", "--at", &at.to_string()])
        .output()?;
    if !out.status.success() {
        return Ok(None);
    }
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    let side = |v: &Value| -> BTreeMap<String, String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| {
                Some((
                    l["price"].as_str()?.to_string(),
                    l["size"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    Ok(Some((side(&doc["yes"]), side(&doc["no"]))))
}

#[test]
fn replay_of_an_up_run_sends_exactly_what_production_holds() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let url = captured(&tmp.path().join("data"))?;
    let rt = tokio::runtime::Runtime::new()?;
    let (all_trades, all_deltas) = rt.block_on(stored(&url, 0, i64::MAX - 1))?;
    let times: Vec<i64> = all_deltas
        .iter()
        .filter_map(|r| match r {
            Record::Delta(d) => Some(d.exchange_ts.micros()),
            _ => None,
        })
        .collect();
    let (lo, hi) = (
        times.iter().copied().min().ok_or("no deltas")?,
        times.iter().copied().max().ok_or("no deltas")?,
    );
    // Start a quarter in, so the first books are rebuilt snapshots, not the captured ones.
    let (from, to) = (lo + (hi - lo) / 4, hi);
    drop(all_trades);
    let (trades, deltas) = rt.block_on(stored(&url, from, to))?;
    let replay = start_replay(&url, from, to, "max")?;

    // 100 random check points, in time order; the stream's book is taken as it passes each.
    // xorshift seeded from the clock: different points each run, printed for a rerun.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    eprintln!("replay check points seed {seed}");
    let mut next_u64 = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let markets: Vec<String> = {
        let mut m: Vec<String> = deltas
            .iter()
            .filter_map(|r| match r {
                Record::Delta(d) => Some(d.ticker.clone()),
                _ => None,
            })
            .collect();
        m.sort();
        m.dedup();
        m
    };
    let mut points: Vec<(i64, String)> = (0..100)
        .map(|_| {
            let t = from + (next_u64() % (to - from + 1) as u64) as i64;
            let m = markets[(next_u64() % markets.len() as u64) as usize].clone();
            (t, m)
        })
        .collect();
    points.sort();
    let mut taken: Vec<(i64, String, Option<Book>)> = Vec::new();

    let seen = rt.block_on(async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/trade-api/ws/v2", replay.addr))
                .await?;
        let sub = r#"{"id":1,"cmd":"subscribe","params":{"channels":["orderbook_delta","trade"]}}"#;
        ws.send(Message::Text(sub.into())).await?;
        let mut seen = Seen::default();
        let mut next = 0;
        while let Some(msg) = tokio::time::timeout(Duration::from_secs(60), ws.next()).await? {
            let text = match msg? {
                Message::Text(t) => t,
                Message::Close(_) => break,
                _ => continue,
            };
            let frame: Value = serde_json::from_str(&text)?;
            let ts = frame["msg"]["ts"]
                .as_str()
                .and_then(|s| TimestampUs::parse_rfc3339(s).ok())
                .map(TimestampUs::micros);
            // A check point is passed when a later instant arrives (all of its instant is in).
            while let Some((t, m)) = points.get(next) {
                if ts.is_some_and(|ts| ts > *t) || frame["type"] == "replay_end" {
                    taken.push((*t, m.clone(), seen.books.get(m).cloned()));
                    next += 1;
                } else {
                    break;
                }
            }
            seen.take(&frame)?;
        }
        Ok::<_, Box<dyn std::error::Error>>(seen)
    })?;
    assert!(seen.ended, "no replay_end before the close");

    let mut want_trades: Vec<_> = trades
        .iter()
        .filter_map(|r| match r {
            Record::Trade(t) => Some((
                t.trade_id.clone(),
                t.ticker.clone(),
                t.yes_price.to_dollars(),
                t.count.to_fp(),
                t.exchange_ts.millis() * 1_000,
            )),
            _ => None,
        })
        .collect();
    let mut got_trades = seen.trades.clone();
    want_trades.sort();
    got_trades.sort();
    assert!(!want_trades.is_empty());
    assert_eq!(got_trades, want_trades, "trades differ");
    let mut want_deltas: Vec<_> = deltas
        .iter()
        .filter_map(|r| match r {
            Record::Delta(d) => Some((
                d.ticker.clone(),
                d.exchange_ts.micros(),
                d.side.as_str().to_string(),
                d.price.to_dollars(),
                d.delta.to_fp(),
            )),
            _ => None,
        })
        .collect();
    let mut got_deltas = seen.deltas.clone();
    want_deltas.sort();
    got_deltas.sort();
    assert!(
        want_deltas.len() > 1000,
        "{} deltas only",
        want_deltas.len()
    );
    assert_eq!(got_deltas.len(), want_deltas.len(), "delta counts differ");
    assert_eq!(got_deltas, want_deltas, "deltas differ");

    assert_eq!(taken.len(), 100);
    for (t, m, streamed) in &taken {
        let cli = book_cli(&url, m, *t)?;
        assert_eq!(
            streamed, &cli,
            "book of {m} at {t}: replayed vs `kalshi-data book`"
        );
    }
    eprintln!(
        "replay: {} trades, {} deltas, 100 books equal",
        got_trades.len(),
        got_deltas.len()
    );

    // The same through `GET /replay` (NDJSON), trades of one market.
    let one = &want_trades[0].1;
    let url_nd = format!(
        "http://{}/replay?channels=trade&tickers={one}&from={from}&to={to}",
        replay.addr
    );
    let (status, body) = kd_testkit::http::get(&url_nd, None).ok_or("GET /replay failed")?;
    assert_eq!(status, 200, "{body}");
    let mut nd: Vec<String> = Vec::new();
    for line in body.lines() {
        let v: Value = serde_json::from_str(line)?;
        if v["type"] == "trade" {
            nd.push(
                v["msg"]["trade_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    let mut want_one: Vec<String> = want_trades
        .iter()
        .filter(|t| &t.1 == one)
        .map(|t| t.0.clone())
        .collect();
    nd.sort();
    want_one.sort();
    assert_eq!(nd, want_one, "NDJSON trades of {one}");

    // A Python client (websockets) against a fresh replay of the same range.
    let replay2 = start_replay(&url, from, to, "max")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/replay_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("ws://{}/trade-api/ws/v2", replay2.addr))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Value = serde_json::from_str(text.trim())?;
    assert_eq!(
        counts["trade"].as_u64(),
        Some(want_trades.len() as u64),
        "{counts}"
    );
    assert_eq!(
        counts["orderbook_delta"].as_u64(),
        Some(want_deltas.len() as u64),
        "{counts}"
    );
    assert_eq!(counts["ended"], true, "{counts}");
    Ok(())
}
