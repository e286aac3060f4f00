//! REST pagination, filters and errors.

use crate::helpers::*;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn markets_page_with_cursor_and_filter_by_status_values() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        markets: 2_500,
        events: 50,
        ..config()
    })
    .await?;
    let base = sim.rest_base();
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (status, body) =
            get_json(&format!("{base}/markets?limit=1000&cursor={cursor}")).await?;
        assert_eq!(status, 200, "{body}");
        for m in body["markets"].as_array().ok_or("markets")? {
            assert!(seen.insert(m["ticker"].as_str().unwrap_or("").to_string()));
        }
        pages += 1;
        cursor = body["cursor"].as_str().unwrap_or("").to_string();
        if cursor.is_empty() {
            break;
        }
    }
    assert!(pages >= 3);
    assert!(seen.len() >= 2_500);
    // Filter values differ from returned values.
    for (filter, returned) in [
        ("open", vec!["active"]),
        ("unopened", vec!["initialized"]),
        ("closed", vec!["closed", "determined"]),
        ("settled", vec!["finalized"]),
    ] {
        let (status, body) =
            get_json(&format!("{base}/markets?status={filter}&limit=1000")).await?;
        assert_eq!(status, 200);
        let list = body["markets"].as_array().ok_or("markets")?;
        assert!(!list.is_empty(), "no {filter} markets");
        for m in list {
            assert!(
                returned.contains(&m["status"].as_str().unwrap_or("")),
                "{filter}: {}",
                m["status"]
            );
        }
    }
    let (status, body) = get_json(&format!("{base}/markets?status=active")).await?;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get_json(&format!("{base}/markets?limit=1001")).await?;
    assert_eq!(status, 400);
    // Event filter, tickers filter.
    let (_, body) = get_json(&format!("{base}/markets?event_ticker=SIM3-E3&limit=1000")).await?;
    let list = body["markets"].as_array().ok_or("markets")?;
    assert_eq!(list.len(), 50);
    assert!(list.iter().all(|m| m["event_ticker"] == "SIM3-E3"));
    let (_, body) = get_json(&format!("{base}/markets?tickers=SIM0-E0-M0,SIM1-E1-M1")).await?;
    assert_eq!(body["markets"].as_array().map(Vec::len), Some(2));
    // Events page by 200 at most.
    let (status, body) = get_json(&format!("{base}/events?limit=20")).await?;
    assert_eq!(status, 200);
    assert_eq!(body["events"].as_array().map(Vec::len), Some(20));
    assert_eq!(body["cursor"], "20");
    let (status, _) = get_json(&format!("{base}/events?limit=201")).await?;
    assert_eq!(status, 400);
    let (status, body) = get_json(&format!("{base}/events/NOPE")).await?;
    assert_eq!(status, 404, "{body}");
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn trades_filter_by_ticker_and_time_and_page() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        rate: 20_000,
        ..config()
    })
    .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sim.stats().await.trades < 500 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.stop_publishing().await;
    let base = sim.rest_base();
    let total = sim.stats().await.trades as usize;
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, body) =
            get_json(&format!("{base}/markets/trades?limit=97&cursor={cursor}")).await?;
        all.extend(body["trades"].as_array().ok_or("trades")?.iter().cloned());
        cursor = body["cursor"].as_str().unwrap_or("").to_string();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(all.len(), total);
    let ticker = all[0]["ticker"].as_str().ok_or("ticker")?.to_string();
    let (_, body) = get_json(&format!("{base}/markets/trades?ticker={ticker}&limit=1000")).await?;
    let mine = body["trades"].as_array().ok_or("trades")?;
    assert_eq!(
        mine.len(),
        all.iter()
            .filter(|t| t["ticker"] == ticker.as_str())
            .count()
    );
    // Time window in Unix seconds, inclusive.
    let secs = |t: &serde_json::Value| {
        kd_core::TimestampUs::parse_rfc3339(t["created_time"].as_str().unwrap_or(""))
            .map(|x| x.secs())
            .unwrap_or(0)
    };
    let newest = secs(&all[0]);
    let (_, body) = get_json(&format!(
        "{base}/markets/trades?min_ts={newest}&max_ts={newest}&limit=1000"
    ))
    .await?;
    let window = body["trades"].as_array().ok_or("trades")?;
    assert_eq!(
        window.len(),
        all.iter().filter(|t| secs(t) == newest).count()
    );
    assert!(!window.is_empty());
    sim.shutdown().await?;
    Ok(())
}

fn rss_peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
            })
        })
        .map_or(0, |kib| kib / 1024)
}

/// `cargo test -p kd-sim --release --test sim -- --ignored million --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale run: about a minute in release mode"]
async fn million_markets_start_fast_and_page_over_rest() -> TestResult {
    let t0 = std::time::Instant::now();
    let sim = start(kd_sim::SimConfig {
        markets: 1_000_000,
        series: 100,
        events: 100_000,
        rate: 1_000,
        ..config()
    })
    .await?;
    let started = t0.elapsed();
    let client = reqwest::Client::new();
    let mut cursor = String::new();
    let mut n = 0_usize;
    let t1 = std::time::Instant::now();
    loop {
        let body: serde_json::Value = client
            .get(format!(
                "{}/markets?limit=1000&cursor={cursor}",
                sim.rest_base()
            ))
            .send()
            .await?
            .json()
            .await?;
        n += body["markets"].as_array().map_or(0, Vec::len);
        cursor = body["cursor"].as_str().unwrap_or("").to_string();
        if cursor.is_empty() {
            break;
        }
    }
    println!(
        "million markets: start {started:?}, paged {n} markets over REST in {:?}, peak RSS {} MiB",
        t1.elapsed(),
        rss_peak_mib()
    );
    assert!(n >= 1_000_000);
    sim.shutdown().await?;
    Ok(())
}
