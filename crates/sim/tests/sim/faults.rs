//! One test per fault kind, plus the control endpoint and authentication.

use crate::helpers::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

async fn post_fault(
    sim: &kd_sim::SimHandle,
    body: &str,
) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.control_base()))
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, serde_json::from_str(&resp.text().await?)?))
}

#[tokio::test]
async fn http_fault_answers_its_status_on_matching_paths_only() -> TestResult {
    let sim = start(config()).await?;
    let (status, body) = post_fault(&sim, "http:503:/markets*:1").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faults"], json!(["http:503:/markets*:1"]));
    let base = sim.rest_base();
    let (status, body) = get_json(&format!("{base}/markets")).await?;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "service_unavailable");
    let (status, _) = get_json(&format!("{base}/markets/trades")).await?;
    assert_eq!(status, 503);
    let (status, _) = get_json(&format!("{base}/events")).await?;
    assert_eq!(status, 200);
    // A probability in between fails some requests, not all.
    let resp = reqwest::Client::new()
        .delete(format!("{}/_sim/faults", sim.control_base()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    post_fault(&sim, "[\"http:429:/events:0.5\"]").await?;
    let mut codes = std::collections::HashMap::new();
    for _ in 0..60 {
        let (s, _) = get_json(&format!("{base}/events?limit=1")).await?;
        *codes.entry(s).or_insert(0) += 1;
    }
    assert!(
        codes.get(&429).is_some_and(|&n| n > 5) && codes.get(&200).is_some_and(|&n| n > 5),
        "{codes:?}"
    );
    let (status, body) = post_fault(&sim, "http:503").await?;
    assert_eq!(status, 400, "{body}");
    assert!(sim.stats().await.http_faults as i32 >= codes[&429]);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn maintenance_turns_the_exchange_inactive_then_back() -> TestResult {
    let sim = start(config()).await?;
    let base = sim.rest_base();
    sim.add_fault(kd_sim::parse_fault("maintenance:0:2")?);
    let (status, body) = get_json(&format!("{base}/exchange/status")).await?;
    assert_eq!(status, 200);
    assert_eq!(body["exchange_active"], false);
    let resume = body["exchange_estimated_resume_time"]
        .as_str()
        .ok_or("no resume time")?;
    let resume = kd_core::TimestampUs::parse_rfc3339(resume)?;
    assert!(resume > kd_core::TimestampUs::now());
    let (status, _) = get_json(&format!("{base}/markets")).await?;
    assert_eq!(status, 503);
    // Nothing is published meanwhile.
    let before = sim.stats().await.published.values().sum::<u64>();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = sim.stats().await.published.values().sum::<u64>();
    assert!(
        during - before < 5,
        "published {} during maintenance",
        during - before
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get_json(&format!("{base}/exchange/status")).await?;
        if body["exchange_active"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "maintenance never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = get_json(&format!("{base}/markets")).await?;
    assert_eq!(status, 200);
    sim.shutdown().await?;
    Ok(())
}

async fn close_code(ws: &mut Ws, timeout: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return Some(f.code.into()),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

#[tokio::test]
async fn ws_close_all_closes_every_connection_with_the_code() -> TestResult {
    let sim = start(config()).await?;
    let mut a = connect(&sim).await?;
    let mut b = connect(&sim).await?;
    wait_connections(&sim, 2).await?;
    sim.add_fault(kd_sim::parse_fault("ws-close:1011:all")?);
    assert_eq!(close_code(&mut a, Duration::from_secs(5)).await, Some(1011));
    assert_eq!(close_code(&mut b, Duration::from_secs(5)).await, Some(1011));
    // Once only: a new connection stays open.
    let mut c = connect(&sim).await?;
    send(&mut c, json!({"id": 1, "cmd": "list_subscriptions"})).await?;
    assert!(
        wait_for(&mut c, Duration::from_secs(3), |v| v["id"] == 1)
            .await
            .is_ok()
    );
    sim.shutdown().await?;
    Ok(())
}

async fn wait_connections(sim: &kd_sim::SimHandle, n: u64) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.stats().await.connections_open < n {
        if Instant::now() > deadline {
            return Err("connections never registered".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn ws_close_every_closes_connections_periodically() -> TestResult {
    let sim = start(config()).await?;
    let mut a = connect(&sim).await?;
    wait_connections(&sim, 1).await?;
    sim.add_fault(kd_sim::parse_fault("ws-close:1001:0.3")?);
    assert_eq!(close_code(&mut a, Duration::from_secs(5)).await, Some(1001));
    let mut b = connect(&sim).await?;
    assert_eq!(close_code(&mut b, Duration::from_secs(5)).await, Some(1001));
    assert!(sim.stats().await.ws_closed_by_fault >= 2);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn ws_stall_silences_a_connection_then_it_resumes() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        ping_interval: Duration::from_millis(100),
        ..config()
    })
    .await?;
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["ticker"], &[])).await?;
    wait_for(&mut ws, Duration::from_secs(5), |v| v["type"] == "ticker").await?;
    sim.add_fault(kd_sim::parse_fault("ws-stall:1:1.5")?);
    // Wait for the silence, then measure it: no frame at all (no data, no ping) for ~1.5 s.
    let mut longest = Duration::ZERO;
    let mut last = Instant::now();
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(2_000), ws.next()).await {
            Ok(Some(Ok(_))) => {
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
            Ok(_) => return Err("connection ended".into()),
            Err(_) => longest = longest.max(last.elapsed()),
        }
    }
    assert!(
        longest >= Duration::from_millis(1_200),
        "longest silence {longest:?} {:?}",
        sim.stats().await
    );
    assert!(sim.stats().await.ws_stalls >= 1);
    sim.shutdown().await?;
    Ok(())
}

/// Subscribes two connections to the same markets and counts seq gaps and deltas per
/// connection, plus the trade ids each saw.
async fn two_feeds(
    sim: &kd_sim::SimHandle,
    n: u64,
) -> Result<[(u64, std::collections::BTreeSet<String>); 2], Box<dyn std::error::Error + Send + Sync>>
{
    let tickers = sim.active_markets(50);
    let mut out = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..2 {
        let mut ws = connect(sim).await?;
        send(&mut ws, subscribe_cmd(1, &["trade"], &tickers)).await?;
        wait_for(&mut ws, Duration::from_secs(5), |v| {
            v["type"] == "subscribed"
        })
        .await?;
        conns.push(ws);
    }
    for mut ws in conns {
        let mut books = Books::default();
        let mut ids = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while (ids.len() as u64) < n && Instant::now() < deadline {
            if let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? {
                books.apply(&v);
                if v["type"] == "trade" {
                    ids.insert(v["msg"]["trade_id"].as_str().unwrap_or("").to_string());
                }
            }
        }
        out.push((books.gaps, ids));
    }
    let b = out.pop().ok_or("feed")?;
    let a = out.pop().ok_or("feed")?;
    Ok([a, b])
}

#[tokio::test]
async fn ws_drop_loses_different_messages_per_connection() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        rate: 20_000,
        ..config()
    })
    .await?;
    sim.add_fault(kd_sim::parse_fault("ws-drop:0.2")?);
    let [(gaps_a, ids_a), (gaps_b, ids_b)] = two_feeds(&sim, 300).await?;
    assert!(gaps_a > 0 && gaps_b > 0, "gaps {gaps_a} {gaps_b}");
    // Both saw trades the other did not.
    let lo = ids_a.first().max(ids_b.first()).cloned();
    let _ = lo;
    assert!(ids_a.difference(&ids_b).count() > 0 || ids_b.difference(&ids_a).count() > 0);
    assert!(sim.stats().await.dropped_per_connection > 0);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn ws_drop_all_loses_the_same_messages_for_everyone() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        rate: 20_000,
        ..config()
    })
    .await?;
    let mut a = connect(&sim).await?;
    let mut b = connect(&sim).await?;
    let tickers = sim.active_markets(50);
    for ws in [&mut a, &mut b] {
        send(ws, subscribe_cmd(1, &["trade"], &tickers)).await?;
        wait_for(ws, Duration::from_secs(5), |v| v["type"] == "subscribed").await?;
    }
    sim.add_fault(kd_sim::parse_fault("ws-drop-all:0.3")?);
    // Collect (seq → trade id) on both; the sequence numbers are per subscription but both
    // subscriptions see the same item stream, so missing seqs must coincide.
    let mut seqs: [std::collections::BTreeMap<u64, String>; 2] = Default::default();
    for (i, ws) in [&mut a, &mut b].into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        while seqs[i].len() < 400 && Instant::now() < deadline {
            if let Some(v) = next_json(ws, Duration::from_millis(300)).await?
                && v["type"] == "trade"
            {
                seqs[i].insert(
                    v["seq"].as_u64().unwrap_or(0),
                    v["msg"]["trade_id"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    // Each subscription numbers its own messages from 1, and `a` subscribed a moment before
    // `b`, so the two numberings may differ by a constant: align them on a trade both saw.
    let offset_of: std::collections::HashMap<&String, u64> =
        seqs[1].iter().map(|(seq, id)| (id, *seq)).collect();
    let (seq_a, seq_b) = seqs[0]
        .iter()
        .find_map(|(seq, id)| offset_of.get(id).map(|b| (*seq, *b)))
        .ok_or("the two subscriptions saw no trade in common")?;
    let aligned_b: std::collections::BTreeMap<u64, &String> = seqs[1]
        .iter()
        .map(|(seq, id)| (seq + seq_a - seq_b, id))
        .collect();
    let lo = *seqs[0]
        .keys()
        .next()
        .ok_or("no seqs")?
        .max(aligned_b.keys().next().ok_or("no seqs")?);
    let hi = *seqs[0]
        .keys()
        .last()
        .ok_or("no seqs")?
        .min(aligned_b.keys().last().ok_or("no seqs")?);
    let ra: Vec<(u64, &String)> = seqs[0].range(lo..=hi).map(|(k, v)| (*k, v)).collect();
    let rb: Vec<(u64, &String)> = aligned_b.range(lo..=hi).map(|(k, v)| (*k, *v)).collect();
    assert!(ra.len() as u64 <= hi - lo, "no gaps seen");
    assert_eq!(
        ra, rb,
        "the fault must drop the same messages on every connection"
    );
    assert!(sim.stats().await.dropped_for_all > 0);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn sub_error_refuses_some_markets_with_the_code() -> TestResult {
    let sim = start(config()).await?;
    sim.add_fault(kd_sim::parse_fault("sub-error:26:0.5")?);
    let tickers = sim.active_markets(40);
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(9, &["orderbook_delta"], &tickers)).await?;
    let sub = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["id"] == 9 && v["type"] == "subscribed"
    })
    .await?;
    assert_eq!(sub["msg"]["channel"], "orderbook_delta");
    let err = wait_for(&mut ws, Duration::from_secs(5), |v| {
        v["id"] == 9 && v["type"] == "error"
    })
    .await?;
    assert_eq!(err["msg"]["code"], 26);
    let refused = err["msg"]["market_tickers"].as_array().map_or(0, Vec::len);
    assert!(refused > 5 && refused < 35, "refused {refused}");
    // Snapshots only for the accepted markets.
    let mut snaps = 0;
    while let Some(v) = next_json(&mut ws, Duration::from_millis(300)).await? {
        if v["type"] == "orderbook_snapshot" {
            snaps += 1;
        }
        if snaps == 40 - refused {
            break;
        }
    }
    assert_eq!(snaps, 40 - refused);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_with_error_25() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        rate: 50_000,
        queue_capacity: 64,
        ..config()
    })
    .await?;
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["trade", "ticker"], &[])).await?;
    // Do not read for a while: the exchange moves on and this connection falls behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Generous: on a loaded machine the kernel's socket buffers take a while to fill before
    // the connection's own queue overflows.
    let err = wait_for(&mut ws, Duration::from_secs(60), |v| v["type"] == "error").await;
    let code = err.map(|v| v["msg"].clone());
    assert_eq!(code.ok().map(|m| m["code"].clone()), Some(json!(25)));
    assert!(sim.stats().await.overflow_disconnects >= 1);
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn wrong_signature_gets_401_and_a_right_one_connects() -> TestResult {
    let (private, public) = kd_kalshi::auth::generate_keypair(1024)?;
    let (_, other_public) = kd_kalshi::auth::generate_keypair(1024)?;
    let sim = start(kd_sim::SimConfig {
        auth: kd_sim::AuthMode::Keys(vec![
            ("good".into(), public),
            ("other".into(), other_public),
        ]),
        ..config()
    })
    .await?;
    let signer = kd_kalshi::auth::Signer::from_pem("good", &private)?;
    let url = sim.ws_url();
    let request = |headers: Option<kd_kalshi::auth::AuthHeaders>| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.as_str().into_client_request()?;
        if let Some(h) = headers {
            for (k, v) in h.iter() {
                req.headers_mut().insert(k, v.parse()?);
            }
        }
        Ok(req)
    };
    let status_of = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Some(resp.status().as_u16()),
        _ => None,
    };
    // No headers.
    let r = tokio_tungstenite::connect_async(request(None)?)
        .await
        .map(|_| ());
    assert_eq!(status_of(r), Some(401));
    // Signed for the wrong path.
    let r = tokio_tungstenite::connect_async(request(Some(
        signer.headers("GET", "/trade-api/v2/markets")?,
    ))?)
    .await
    .map(|_| ());
    assert_eq!(status_of(r), Some(401));
    // Signed by a key registered under another id.
    let mut wrong = signer.headers("GET", "/trade-api/ws/v2")?;
    wrong.key_id = "other".into();
    let r = tokio_tungstenite::connect_async(request(Some(wrong))?)
        .await
        .map(|_| ());
    assert_eq!(status_of(r), Some(401));
    // Right.
    let ok = tokio_tungstenite::connect_async(request(Some(
        signer.headers("GET", "/trade-api/ws/v2")?,
    ))?)
    .await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    assert_eq!(sim.stats().await.auth_rejected, 3);
    sim.shutdown().await?;
    Ok(())
}

/// `POST /_sim/stop-publishing` freezes the feed (what `up --duration` drains with) while REST
/// keeps answering; `resume-publishing` restarts it.
#[tokio::test]
async fn stop_publishing_over_http_freezes_the_feed() -> TestResult {
    let sim = start(config()).await?;
    let total = |s: &kd_sim::SimStats| s.published.values().sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&sim.stats().await) == 0 {
        assert!(Instant::now() < deadline, "nothing published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/_sim/stop-publishing", sim.control_base()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let frozen = total(&sim.stats().await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(total(&sim.stats().await), frozen, "published after stop");
    let (status, _) = get_json(&format!("{}/markets?limit=1", sim.rest_base())).await?;
    assert_eq!(status, 200, "REST must keep answering while stopped");
    let resp = client
        .post(format!("{}/_sim/resume-publishing", sim.control_base()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&sim.stats().await) <= frozen {
        assert!(Instant::now() < deadline, "publishing did not resume");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown().await?;
    Ok(())
}
