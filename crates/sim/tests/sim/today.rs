//! Today's Kalshi (WIRE.md "2026 changes"), one test per behaviour: the REST edge cache, batch
//! limits, repeated lifecycle toggles, combo markets on their own channel, fee updates, the
//! NO-price scale, the historical tier, 429s, error 27 and markets that change silently.

use crate::helpers::*;
use kd_core::{Record, Side as BookSide, TimestampUs};
use kd_sim::{Fate, TruthLine, YesPriceDefault};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

type Book = (Vec<(i64, i64)>, Vec<(i64, i64)>);

fn rest_book(v: &Value) -> Book {
    let side = |key: &str| -> Vec<(i64, i64)> {
        v[key]
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
    let mut b = (side("yes_dollars"), side("no_dollars"));
    b.0.sort_unstable();
    b.1.sort_unstable();
    b
}

#[tokio::test]
async fn rest_books_from_the_edge_cache_are_stale_but_never_older_than_the_cache() -> TestResult {
    let cache = Duration::from_millis(1_000);
    // Few markets, all of them hot: the one watched changes every few milliseconds.
    let sim = start(kd_sim::SimConfig {
        markets: 3,
        events: 1,
        series: 1,
        hot_markets: 10,
        rate: 600,
        create_every: Duration::ZERO,
        rest_book_cache: cache,
        ..config()
    })
    .await?;
    let ticker = sim
        .active_markets(3)
        .first()
        .cloned()
        .ok_or("no active market")?;
    let mut ws = connect(&sim).await?;
    send(
        &mut ws,
        subscribe_cmd(1, &["orderbook_delta"], std::slice::from_ref(&ticker)),
    )
    .await?;
    // REST is first asked after the snapshot, so every book it shows is in the feed's history.
    let snapshot = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["type"] == "orderbook_snapshot"
    })
    .await?;
    let url = format!("{}/markets/{ticker}/orderbook", sim.rest_base());
    // (sent, answered) in exchange time (µs), and the book REST showed.
    let mut answers: Vec<(i64, i64, Book)> = Vec::new();
    let mut feed = vec![snapshot];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let sent = TimestampUs::now().micros();
        let (status, body) = get_json(&url).await?;
        assert_eq!(status, 200, "{body}");
        answers.push((
            sent,
            TimestampUs::now().micros(),
            rest_book(&body["orderbook_fp"]),
        ));
        // Read the feed for 40 ms between requests (it never goes quiet).
        let pause = Instant::now() + Duration::from_millis(40);
        while let Some(left) = pause.checked_duration_since(Instant::now()) {
            match next_json(&mut ws, left).await? {
                Some(v) => feed.push(v),
                None => break,
            }
        }
    }
    assert!(answers.len() > 30, "only {} REST answers", answers.len());
    sim.stop_publishing().await;
    while let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? {
        feed.push(v);
    }
    sim.shutdown().await?;
    // Every state the book went through, from the feed: (valid from µs, book).
    let mut books = Books::default();
    let mut states: Vec<(i64, Book)> = Vec::new();
    for v in &feed {
        let ty = books.apply(v);
        let ts = match ty.as_str() {
            "orderbook_snapshot" => i64::MIN,
            "orderbook_delta" => TimestampUs::parse_rfc3339(v["msg"]["ts"].as_str().unwrap_or(""))
                .map(|t| t.micros())
                .unwrap_or(0),
            _ => continue,
        };
        let book = books.levels(&ticker).unwrap_or_default();
        match states.last_mut() {
            Some(last) if last.0 == ts => last.1 = book,
            _ => states.push((ts, book)),
        }
    }
    assert!(states.len() > 200, "only {} book states", states.len());
    let cache_us = cache.as_micros() as i64;
    // Whether `book` was the market's book at some instant of `[from, to]` (µs).
    let current_during = |book: &Book, from: i64, to: i64| {
        states.iter().enumerate().any(|(i, (start, b))| {
            let end = states.get(i + 1).map_or(i64::MAX, |n| n.0);
            b == book && *start <= to && end > from
        })
    };
    let mut stale = 0;
    for (sent, done, book) in &answers {
        // Stale: not the book at any instant of its own request (5 ms of clock slack).
        if !current_during(book, sent - 5_000, *done) {
            stale += 1;
        }
        // Yet the book of some instant within the cache's age.
        assert!(
            current_during(book, sent - cache_us - 100_000, *done),
            "a REST book older than {cache:?} (sent at {sent})"
        );
    }
    assert!(
        stale > answers.len() / 2,
        "only {stale} of {} REST books were stale with a {cache:?} cache",
        answers.len()
    );
    Ok(())
}

#[tokio::test]
async fn batch_orderbooks_take_at_most_100_tickers() -> TestResult {
    let sim = start(config()).await?;
    let tickers = sim.active_markets(101);
    assert_eq!(tickers.len(), 101);
    let q = |n: usize| {
        tickers[..n]
            .iter()
            .map(|t| format!("tickers={t}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let base = sim.rest_base();
    let (status, body) = get_json(&format!("{base}/markets/orderbooks?{}", q(100))).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orderbooks"].as_array().map(Vec::len), Some(100));
    let (status, body) = get_json(&format!("{base}/markets/orderbooks?{}", q(101))).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn lifecycle_toggles_repeat_on_one_market_within_seconds() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        lifecycle_toggles: 120,
        create_every: Duration::ZERO,
        ..config()
    })
    .await?;
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["market_lifecycle_v2"], &[])).await?;
    let mut by_market: HashMap<String, Vec<(Instant, String)>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut found = None;
    while Instant::now() < deadline && found.is_none() {
        let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? else {
            continue;
        };
        if v["type"] != "market_lifecycle_v2" {
            continue;
        }
        let t = v["msg"]["market_ticker"].as_str().unwrap_or("").to_string();
        let kinds = by_market.entry(t.clone()).or_default();
        kinds.push((
            Instant::now(),
            v["msg"]["event_type"].as_str().unwrap_or("").into(),
        ));
        let n = kinds.len();
        if n >= 4 {
            let last: Vec<&str> = kinds[n - 4..].iter().map(|k| k.1.as_str()).collect();
            let span = kinds[n - 1].0 - kinds[n - 4].0;
            if last == ["deactivated", "activated", "deactivated", "activated"] {
                found = Some((t, span));
            }
        }
    }
    let (ticker, span) = found.ok_or("no repeated toggle seen")?;
    assert!(
        span < Duration::from_secs(12),
        "{ticker}: toggles spread over {span:?}"
    );
    // REST agrees: the market trades again.
    let (_, body) = get_json(&format!("{}/markets/{ticker}", sim.rest_base())).await?;
    assert_eq!(body["market"]["status"], "active", "{body}");
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn combo_markets_live_only_on_the_multivariate_channel() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let sim = start(kd_sim::SimConfig {
        truth: Some(path.clone()),
        combo_markets: 6,
        combo_create_every: Duration::from_millis(300),
        create_every: Duration::from_millis(500),
        market_life: Duration::from_secs(3),
        rate: 4_000,
        ..config()
    })
    .await?;
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["market_lifecycle_v2"], &[])).await?;
    send(
        &mut ws,
        subscribe_cmd(2, &["multivariate_market_lifecycle"], &[]),
    )
    .await?;
    let mut sids = HashMap::new();
    let mut on_v2 = Vec::new();
    let mut on_mve = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? else {
            continue;
        };
        match v["type"].as_str() {
            Some("subscribed") => {
                sids.insert(v["msg"]["sid"].clone(), v["id"].clone());
            }
            Some(_) => match sids.get(&v["sid"]).and_then(Value::as_u64) {
                Some(1) => on_v2.push(v),
                Some(2) => on_mve.push(v),
                _ => {}
            },
            None => {}
        }
    }
    let combo = |v: &Value| {
        v["msg"]["market_ticker"]
            .as_str()
            .or(v["msg"]["event_ticker"].as_str())
            .is_some_and(|t| t.starts_with("KXMVE"))
    };
    assert!(!on_v2.is_empty(), "no market_lifecycle_v2 message");
    assert!(
        on_v2.iter().all(|v| !combo(v)),
        "a combo message on market_lifecycle_v2"
    );
    assert!(
        on_mve.iter().all(combo),
        "a regular market on the mve channel"
    );
    let types: HashSet<&str> = on_mve.iter().filter_map(|v| v["type"].as_str()).collect();
    assert!(
        types.contains("multivariate_market_lifecycle") && types.contains("event_lifecycle"),
        "{types:?}"
    );
    let created: Vec<String> = on_mve
        .iter()
        .filter(|v| v["msg"]["event_type"] == "created")
        .filter_map(|v| v["msg"]["market_ticker"].as_str().map(String::from))
        .collect();
    assert!(created.len() >= 5, "combos created: {created:?}");
    // REST: the combo fields, mve_filter, /events without them and /events/multivariate.
    let base = sim.rest_base();
    let (_, only) = get_json(&format!("{base}/markets?mve_filter=only&limit=1000")).await?;
    let only = only["markets"].as_array().ok_or("markets")?;
    assert!(only.len() >= 6 + created.len() - 1, "{} combos", only.len());
    for m in only {
        assert!(m["ticker"].as_str().is_some_and(|t| t.starts_with("KXMVE")));
        assert_eq!(m["mve_collection_ticker"], "KXMVESIM-R", "{m}");
        assert_eq!(m["mve_selected_legs"].as_array().map(Vec::len), Some(2));
    }
    let (_, excl) = get_json(&format!("{base}/markets?mve_filter=exclude&limit=1000")).await?;
    let excl = excl["markets"].as_array().ok_or("markets")?;
    assert!(
        !excl.is_empty()
            && excl
                .iter()
                .all(|m| m.get("mve_collection_ticker").is_none())
    );
    let (status, _) = get_json(&format!("{base}/markets?mve_filter=bogus")).await?;
    assert_eq!(status, 400);
    let (_, events) = get_json(&format!("{base}/events?limit=200")).await?;
    assert!(
        events["events"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| !e["event_ticker"]
                .as_str()
                .unwrap_or("")
                .starts_with("KXMVE")))
    );
    let (_, mve) = get_json(&format!(
        "{base}/events/multivariate?with_nested_markets=true"
    ))
    .await?;
    let mve = mve["events"].as_array().ok_or("events")?;
    assert!(mve.len() >= 2, "{mve:?}");
    let event = mve[0]["event_ticker"].as_str().ok_or("event")?;
    let (status, one) = get_json(&format!("{base}/events/{event}")).await?;
    assert_eq!(status, 200);
    assert!(one["markets"].as_array().is_some_and(|m| !m.is_empty()));
    // Combo markets trade like any market: a snapshot, then deltas.
    let combos = sim.active_combo_markets(10);
    assert!(!combos.is_empty());
    send(&mut ws, subscribe_cmd(3, &["orderbook_delta"], &combos)).await?;
    let snap = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["type"] == "orderbook_snapshot"
    })
    .await?;
    assert!(
        snap["msg"]["market_ticker"]
            .as_str()
            .is_some_and(|t| t.starts_with("KXMVE"))
    );
    sim.stop_publishing().await;
    sim.flush_truth().await;
    sim.shutdown().await?;
    // Truth: each combo created while running is listed as announced on the mve channel, and
    // its lifecycle records say so.
    let mut listed = HashMap::new();
    let mut kinds = HashSet::new();
    for line in kd_sim::read_truth(&path)? {
        match line? {
            TruthLine::Market {
                ticker,
                combo,
                announced,
                ..
            } => {
                listed.insert(ticker, (combo, announced));
            }
            TruthLine::Published {
                record: Record::Lifecycle(l),
                ..
            } if l.subject.starts_with("KXMVE") => {
                kinds.insert(l.kind.clone());
            }
            _ => {}
        }
    }
    for t in &created {
        assert_eq!(
            listed.get(t),
            Some(&(true, Some("multivariate_market_lifecycle".to_string()))),
            "{t}"
        );
    }
    assert_eq!(
        kinds,
        HashSet::from([
            "multivariate_market_lifecycle".to_string(),
            "event_lifecycle".to_string()
        ])
    );
    Ok(())
}

#[tokio::test]
async fn event_fee_updates_come_on_market_lifecycle_v2_and_show_on_rest() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        fee_update_every: Duration::from_millis(150),
        create_every: Duration::ZERO,
        events: 2,
        series: 1,
        ..config()
    })
    .await?;
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["market_lifecycle_v2"], &[])).await?;
    // The last update of each event, and whether both kinds (set, cleared) were seen.
    let mut last: HashMap<String, Value> = HashMap::new();
    let (mut set, mut cleared) = (false, false);
    let mut take = |v: Value, last: &mut HashMap<String, Value>| {
        if v["type"] != "event_fee_update" {
            return;
        }
        assert!(v["seq"].as_u64().is_some(), "{v}");
        if v["msg"]["fee_type_override"].is_string() {
            assert_eq!(v["msg"]["fee_multiplier_override"], 2, "{v}");
            set = true;
        } else {
            assert!(v["msg"]["fee_type_override"].is_null(), "{v}");
            assert!(v["msg"]["fee_multiplier_override"].is_null(), "{v}");
            cleared = true;
        }
        last.insert(v["msg"]["event_ticker"].as_str().unwrap_or("").into(), v);
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(v) = next_json(&mut ws, Duration::from_millis(200)).await? {
            take(v, &mut last);
        }
    }
    sim.stop_publishing().await;
    while let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? {
        take(v, &mut last);
    }
    assert!(set && cleared, "set {set}, cleared {cleared}");
    // REST shows the override while it is set.
    for (event, v) in last {
        let (_, body) = get_json(&format!("{}/events/{event}", sim.rest_base())).await?;
        let shown = body["event"]
            .get("fee_type_override")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(shown, v["msg"]["fee_type_override"], "{event}: {body}");
    }
    sim.shutdown().await?;
    Ok(())
}

/// NO-side prices of an `orderbook_snapshot` / `orderbook_delta` message, with its `ts`.
fn no_prices(v: &Value) -> Vec<(String, i64)> {
    let msg = &v["msg"];
    match v["type"].as_str() {
        Some("orderbook_delta") if msg["side"] == "no" => vec![(
            format!("{}|{}", msg["ts"], msg["delta_fp"]),
            price(msg["price_dollars"].as_str().unwrap_or("")),
        )],
        Some("orderbook_snapshot") => msg["no_dollars_fp"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                (
                    format!("snapshot|{}", l[1]),
                    price(l[0].as_str().unwrap_or("")),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Subscribes `ticker`'s book with `use_yes_price` (`None`: not sent) and collects NO-side
/// prices for `secs`, keyed by message identity.
async fn no_side(
    sim: &kd_sim::SimHandle,
    ticker: &str,
    use_yes_price: Option<bool>,
) -> Result<Ws, Box<dyn std::error::Error + Send + Sync>> {
    let mut ws = connect(sim).await?;
    let mut params = json!({"channels": ["orderbook_delta"], "market_tickers": [ticker]});
    if let Some(b) = use_yes_price {
        params["use_yes_price"] = json!(b);
    }
    send(
        &mut ws,
        json!({"id": 1, "cmd": "subscribe", "params": params}),
    )
    .await?;
    wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["type"] == "subscribed"
    })
    .await?;
    Ok(ws)
}

/// NO-side delta prices by message identity, and the snapshots' NO prices (sorted).
type NoSide = (BTreeMap<String, i64>, Vec<i64>);

async fn collect_no(ws: &mut Ws) -> Result<NoSide, Box<dyn std::error::Error + Send + Sync>> {
    let (mut deltas, mut snapshot) = (BTreeMap::new(), Vec::new());
    while let Some(v) = next_json(ws, Duration::from_millis(400)).await? {
        for (k, p) in no_prices(&v) {
            if k.starts_with("snapshot") {
                snapshot.push(p);
            } else {
                deltas.insert(k, p);
            }
        }
    }
    snapshot.sort_unstable();
    Ok((deltas, snapshot))
}

#[tokio::test]
async fn use_yes_price_sends_the_no_side_at_one_minus_p_and_the_truth_keeps_no_bids() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let sim = start(kd_sim::SimConfig {
        truth: Some(path.clone()),
        markets: 2,
        events: 1,
        series: 1,
        hot_markets: 10,
        rate: 500,
        create_every: Duration::ZERO,
        ..config()
    })
    .await?;
    let ticker = sim
        .active_markets(2)
        .first()
        .cloned()
        .ok_or("no active market")?;
    sim.stop_publishing().await;
    let mut yes_leg = no_side(&sim, &ticker, Some(true)).await?;
    let mut no_leg = no_side(&sim, &ticker, None).await?;
    sim.resume_publishing();
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.stop_publishing().await;
    let (a, a_snap) = collect_no(&mut yes_leg).await?;
    let (b, b_snap) = collect_no(&mut no_leg).await?;
    sim.flush_truth().await;
    let (_, final_no) = sim.book(&ticker).ok_or("book")?;
    sim.shutdown().await?;
    assert!(b.len() > 10, "only {} NO-side prices", b.len());
    assert_eq!(a.len(), b.len());
    for (k, p) in &b {
        assert_eq!(a.get(k), Some(&(100_000 - p)), "{k}: NO bid {p}");
    }
    let mut flipped: Vec<i64> = b_snap.iter().map(|p| 100_000 - p).collect();
    flipped.sort_unstable();
    assert!(!a_snap.is_empty());
    assert_eq!(a_snap, flipped, "snapshot NO levels");
    // The truth records NO levels in NO-bid pricing, exactly as the `false` subscriber saw them.
    let mut truth_no = HashSet::new();
    for line in kd_sim::read_truth(&path)? {
        if let TruthLine::Published {
            record: Record::Delta(d),
            ..
        } = line?
            && d.ticker == ticker
            && d.side == BookSide::No
        {
            truth_no.insert(d.price.units());
        }
    }
    let seen: HashSet<i64> = b.values().copied().collect();
    assert!(
        !seen.is_empty() && seen.is_subset(&truth_no),
        "{seen:?} vs {truth_no:?}"
    );
    assert!(final_no.iter().all(|l| l.price.units() < 100_000));
    Ok(())
}

#[tokio::test]
async fn yes_price_default_flips_and_forced_ignores_false() -> TestResult {
    for (mode, sent, yes_leg) in [
        (YesPriceDefault::False, None, false),
        (YesPriceDefault::True, None, true),
        (YesPriceDefault::True, Some(false), false),
        (YesPriceDefault::Forced, Some(false), true),
        (YesPriceDefault::Forced, None, true),
    ] {
        let sim = start(kd_sim::SimConfig {
            markets: 10,
            events: 2,
            create_every: Duration::ZERO,
            yes_price_default: mode,
            ..config()
        })
        .await?;
        let ticker = sim.active_markets(1)[0].clone();
        sim.stop_publishing().await;
        let mut ws = no_side(&sim, &ticker, sent).await?;
        let (_, prices) = collect_no(&mut ws).await?;
        let (_, no) = sim.book(&ticker).ok_or("book")?;
        let mut expect: Vec<i64> = no
            .iter()
            .map(|l| {
                let p = l.price.units();
                if yes_leg { 100_000 - p } else { p }
            })
            .collect();
        expect.sort_unstable();
        assert!(!expect.is_empty());
        assert_eq!(prices, expect, "{mode:?} with use_yes_price {sent:?}");
        sim.shutdown().await?;
    }
    Ok(())
}

async fn all_trades(
    base: &str,
    path: &str,
) -> Result<HashSet<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = HashSet::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = get_json(&format!("{base}{path}?limit=1000&cursor={cursor}")).await?;
        assert_eq!(status, 200, "{body}");
        for t in body["trades"].as_array().ok_or("trades")? {
            assert!(out.insert(t["trade_id"].as_str().unwrap_or("").to_string()));
        }
        cursor = body["cursor"].as_str().unwrap_or("").to_string();
        if cursor.is_empty() {
            return Ok(out);
        }
    }
}

#[tokio::test]
async fn the_historical_cutoff_advances_and_older_trades_leave_markets_trades() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        rate: 5_000,
        historical_cutoff_lag: Duration::from_secs(2),
        ..config()
    })
    .await?;
    let base = sim.rest_base();
    let cutoff = |v: &Value| {
        TimestampUs::parse_rfc3339(v["trades_created_ts"].as_str().unwrap_or(""))
            .map(|t| t.micros())
            .unwrap_or(0)
    };
    let (_, c0) = get_json(&format!("{base}/historical/cutoff")).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().await.trades < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let early = all_trades(&base, "/markets/trades").await?;
    assert!(!early.is_empty());
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    sim.stop_publishing().await;
    let (_, c1) = get_json(&format!("{base}/historical/cutoff")).await?;
    assert!(cutoff(&c1) >= cutoff(&c0) + 3_000_000, "{c0} then {c1}");
    // The cutoff keeps moving (a whole second at a time) while the two tiers are read: a trade
    // it passes between the two reads is rightly in both. Read again until one cutoff held for
    // both reads.
    let mut attempts = 0;
    let (live, old) = loop {
        attempts += 1;
        assert!(attempts <= 20, "the cutoff moved during each of 20 reads of both tiers");
        let (_, before) = get_json(&format!("{base}/historical/cutoff")).await?;
        let live = all_trades(&base, "/markets/trades").await?;
        let old = all_trades(&base, "/historical/trades").await?;
        let (_, after) = get_json(&format!("{base}/historical/cutoff")).await?;
        if cutoff(&before) == cutoff(&after) {
            break (live, old);
        }
    };
    let total = sim.stats().await.trades as usize;
    assert!(live.is_disjoint(&old), "a trade in both tiers");
    assert_eq!(live.len() + old.len(), total, "every trade in one tier");
    assert!(
        early.iter().all(|t| old.contains(t) && !live.contains(t)),
        "trades older than the cutoff still on /markets/trades"
    );
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn injected_429s_carry_retry_after_ms_only_when_asked() -> TestResult {
    let sim = start(config()).await?;
    let base = sim.rest_base();
    sim.add_fault(kd_sim::parse_fault("http:429:/events:1:1500")?);
    let resp = reqwest::get(format!("{base}/events")).await?;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["retry_after_ms"], 1500, "{body}");
    sim.clear_faults();
    sim.add_fault(kd_sim::parse_fault("http:429:/events:1")?);
    let resp = reqwest::get(format!("{base}/events")).await?;
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = resp.json().await?;
    assert!(body["error"].get("retry_after_ms").is_none(), "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_burst_of_commands_gets_error_27() -> TestResult {
    for cfg in [
        kd_sim::SimConfig {
            command_rate_limit: 5,
            ..config()
        },
        kd_sim::SimConfig {
            faults: vec![kd_sim::parse_fault("cmd-limit:5")?],
            ..config()
        },
    ] {
        let sim = start(cfg).await?;
        let tickers = sim.active_markets(3);
        let mut ws = connect(&sim).await?;
        let sent = Instant::now();
        for id in 1..=20 {
            send(&mut ws, subscribe_cmd(id, &["orderbook_delta"], &tickers)).await?;
        }
        let mut refused = Vec::new();
        let mut ok = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while refused.len() + ok < 20 && Instant::now() < deadline {
            let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? else {
                continue;
            };
            match v["type"].as_str() {
                Some("subscribed") => ok += 1,
                Some("error") => {
                    assert_eq!(v["msg"]["code"], 27, "{v}");
                    assert_eq!(v["msg"]["market_tickers"], json!(tickers), "{v}");
                    refused.push(v["id"].clone());
                }
                _ => {}
            }
        }
        // A bucket of 5, refilled at 5 a second while the burst was being served.
        let refill = (sent.elapsed().as_secs_f64() * 5.0).ceil() as usize;
        assert!(
            ok >= 5 && ok <= 5 + refill,
            "{ok} commands admitted of 20 (refill allowance {refill})"
        );
        assert_eq!(ok + refused.len(), 20);
        assert!(!refused.is_empty());
        // The bucket refills: a command a second later is served.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        send(&mut ws, json!({"id": 99, "cmd": "list_subscriptions"})).await?;
        let v = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 99).await?;
        assert_eq!(v["type"], "ok", "{v}");
        assert!(sim.stats().await.rate_limited >= 13);
        sim.shutdown().await?;
    }
    Ok(())
}

#[tokio::test]
async fn markets_appear_and_close_on_rest_without_any_message() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let sim = start(kd_sim::SimConfig {
        truth: Some(path.clone()),
        silent_market_every: Duration::from_millis(300),
        create_every: Duration::ZERO,
        hot_markets: 50,
        ..config()
    })
    .await?;
    let before: HashSet<String> = sim.active_markets(10_000).into_iter().collect();
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["market_lifecycle_v2"], &[])).await?;
    let mut told = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(v) = next_json(&mut ws, Duration::from_millis(200)).await? {
            told.insert(v["msg"]["market_ticker"].as_str().unwrap_or("").to_string());
        }
    }
    sim.stop_publishing().await;
    sim.flush_truth().await;
    let now: HashSet<String> = sim.active_markets(10_000).into_iter().collect();
    let appeared: Vec<&String> = now.difference(&before).collect();
    let closed: Vec<&String> = before.difference(&now).collect();
    assert!(appeared.len() >= 3, "appeared: {appeared:?}");
    assert!(closed.len() >= 3, "closed: {closed:?}");
    for t in appeared.iter().chain(closed.iter()) {
        assert!(!told.contains(*t), "{t} was announced");
    }
    let (_, body) = get_json(&format!("{}/markets/{}", sim.rest_base(), closed[0])).await?;
    assert_eq!(body["market"]["status"], "closed", "{body}");
    sim.shutdown().await?;
    let mut listed = HashMap::new();
    for line in kd_sim::read_truth(&path)? {
        if let TruthLine::Market {
            ticker, announced, ..
        } = line?
        {
            listed.insert(ticker, announced);
        }
    }
    for t in appeared {
        assert_eq!(listed.get(t), Some(&None), "{t} in the truth");
    }
    Ok(())
}

#[tokio::test]
async fn the_truth_tells_dropped_from_unsubscribed_from_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let sim = start(kd_sim::SimConfig {
        truth: Some(path.clone()),
        rate: 4_000,
        faults: vec![kd_sim::parse_fault("ws-drop-all:0.2")?],
        create_every: Duration::ZERO,
        ..config()
    })
    .await?;
    let tickers = sim.active_markets(40);
    let (subscribed, unsubscribed) = tickers.split_at(20);
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["orderbook_delta"], subscribed)).await?;
    wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["type"] == "subscribed"
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        next_json(&mut ws, Duration::from_millis(100)).await?;
    }
    sim.stop_publishing().await;
    while next_json(&mut ws, Duration::from_millis(300))
        .await?
        .is_some()
    {}
    sim.flush_truth().await;
    sim.shutdown().await?;
    let mut fates: HashMap<(bool, Fate), u64> = HashMap::new();
    let mut markets = 0;
    for line in kd_sim::read_truth_full(&path)? {
        let full = line?;
        match &full.line {
            TruthLine::Market { .. } => markets += 1,
            TruthLine::Published {
                record: Record::Delta(d),
                delivered,
            } => {
                let fate = full.fate.ok_or("no fate")?;
                assert!(full.sent_at.is_some());
                assert_eq!(*delivered, fate == Fate::Delivered);
                let sub = subscribed.contains(&d.ticker);
                if unsubscribed.contains(&d.ticker) {
                    assert_eq!(fate, Fate::Unsubscribed, "{}", d.ticker);
                }
                *fates.entry((sub, fate)).or_default() += 1;
            }
            _ => {}
        }
    }
    assert!(markets >= 200, "{markets} market lines");
    for key in [
        (true, Fate::Delivered),
        (true, Fate::Dropped),
        (false, Fate::Unsubscribed),
    ] {
        assert!(
            fates.get(&key).is_some_and(|&n| n > 0),
            "{key:?}: {fates:?}"
        );
    }
    Ok(())
}
