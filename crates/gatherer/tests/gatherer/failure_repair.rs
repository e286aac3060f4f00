//! Issue 5, repair against the simulator: a trade dropped for every subscriber is recovered
//! over REST; a gatherer stopped and restarted backfills every trade of its downtime; a
//! maintenance window is waited out with few requests, then collection resumes and the gaps
//! are repaired; a retention run never deletes what the deduplicator has not acknowledged.
//!
//! The long versions (60 s downtime, 2-minute maintenance window) are `#[ignore]`d:
//! `cargo test -p kd-gatherer --test gatherer -- --ignored --nocapture failure_repair::`.

use crate::common;

use common::{
    RestProxy, SERIAL, TestResult, all_rows, gatherer_config, metric, scrape, small_sim, wait_until,
};
use kd_core::{Record, Table, TimestampUs};
use kd_gatherer::GathererHandle;
use kd_sim::{SimHandle, TruthLine, read_truth};
use kd_testkit::wait::until;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How often the waits below poll.
const POLL: Duration = Duration::from_millis(50);

/// Every open market subscribed and every connection up.
async fn settled(gatherer: &GathererHandle) -> bool {
    let health = gatherer.health().clone();
    wait_until(Duration::from_secs(30), || {
        let known = health.markets_known.load(Ordering::Relaxed);
        health.connections_up.load(Ordering::Relaxed)
            == health.connections_total.load(Ordering::Relaxed)
            && known > 0
            && health.markets_subscribed.load(Ordering::Relaxed) == known
    })
    .await
}

/// Trades of the ground truth published in `[from, to]`: `(trade_id, delivered)`.
async fn truth_trades(
    sim: &SimHandle,
    path: &Path,
    from: TimestampUs,
    to: TimestampUs,
) -> Result<Vec<(String, bool)>, Error> {
    sim.flush_truth().await;
    let mut out = Vec::new();
    for line in read_truth(path)? {
        if let TruthLine::Published {
            record: Record::Trade(t),
            delivered,
        } = line?
            && t.exchange_ts >= from
            && t.exchange_ts <= to
        {
            out.push((t.trade_id, delivered));
        }
    }
    Ok(out)
}

fn stored_trade_ids(store: &Path) -> HashSet<String> {
    all_rows(store, Table::Trades)
        .map(|rows| {
            rows.into_iter()
                .filter_map(|r| match r.record {
                    Record::Trade(t) => Some(t.trade_id),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every id is in the store; returns those still missing.
async fn await_stored(store: &Path, ids: &[String], limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let stored = stored_trade_ids(store);
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !stored.contains(*id))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The same trade message dropped for every subscriber (`ws-drop-all`): two gatherers, neither
/// received it, both recover it over REST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_dropped_for_every_subscriber_is_backfilled() -> TestResult {
    let _serial = SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let truth = dir.path().join("truth.jsonl");
    let sim = small_sim(30, 600, Some(truth.clone())).await?;
    let mut gatherers = Vec::new();
    for name in ["a", "b"] {
        let store = dir.path().join(name);
        let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
        config.gatherer_id = format!("g-{name}");
        config.snapshot_poll_interval_mins = 0;
        gatherers.push((
            store,
            kd_gatherer::start(config, CancellationToken::new()).await?,
        ));
    }
    for (_, g) in &gatherers {
        assert!(settled(g).await, "a gatherer never subscribed");
    }
    let from = TimestampUs::now();
    sim.add_fault(kd_sim::parse_fault("ws-drop-all:0.05")?);
    let dropped = until(Duration::from_secs(20), POLL, || async {
        sim.stats().await.dropped_for_all >= 60
    })
    .await;
    assert!(dropped, "the simulator dropped too little");
    sim.clear_faults();
    // Let later trades arrive on the same subscriptions: they reveal the sequence gaps.
    let published = sim
        .stats()
        .await
        .published
        .get("trade")
        .copied()
        .unwrap_or(0);
    let later = until(Duration::from_secs(20), POLL, || async {
        sim.stats()
            .await
            .published
            .get("trade")
            .is_some_and(|n| *n >= published + 30)
    })
    .await;
    assert!(later);
    sim.stop_publishing().await;
    let to = TimestampUs::now();
    let trades = truth_trades(&sim, &truth, from, to).await?;
    let lost: Vec<String> = trades
        .iter()
        .filter(|(_, d)| !d)
        .map(|(id, _)| id.clone())
        .collect();
    let all: Vec<String> = trades.iter().map(|(id, _)| id.clone()).collect();
    println!(
        "{} trades published in the window, {} dropped for every subscriber: {:?}",
        trades.len(),
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        !lost.is_empty(),
        "no trade was dropped for everyone: the test proves nothing"
    );
    for (store, g) in &gatherers {
        let missing = await_stored(store, &all, Duration::from_secs(30)).await;
        assert!(missing.is_empty(), "{store:?} misses {missing:?}");
        let text = scrape(g.addr()).await?;
        println!(
            "{store:?}: all {} trades stored; repair_trades_recovered_total {}",
            all.len(),
            metric(&text, "repair_trades_recovered_total")
        );
    }
    for (_, g) in gatherers {
        g.stop().await?;
    }
    sim.shutdown().await?;
    Ok(())
}

/// A gatherer stopped for `down` and restarted: every trade the exchange made while it was
/// down is in its store after the downtime repair.
async fn downtime(down: Duration) -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let truth = dir.path().join("truth.jsonl");
    let sim = small_sim(30, 300, Some(truth.clone())).await?;
    let store = dir.path().join("store");
    let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
    config.snapshot_poll_interval_mins = 0;
    let gatherer = kd_gatherer::start(config.clone(), CancellationToken::new()).await?;
    assert!(settled(&gatherer).await, "never subscribed");
    let some = wait_until(Duration::from_secs(20), || {
        stored_trade_ids(&store).len() >= 5
    })
    .await;
    assert!(some, "no trade stored before the stop");
    gatherer.stop().await?;
    let stopped_at = TimestampUs::now();
    // The downtime itself: nothing to wait for but the clock.
    tokio::time::sleep(down).await;
    let restarted_at = TimestampUs::now();
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let trades = truth_trades(&sim, &truth, stopped_at, restarted_at).await?;
    let ids: Vec<String> = trades.iter().map(|(id, _)| id.clone()).collect();
    assert!(
        trades.iter().all(|(_, delivered)| !delivered),
        "no one was subscribed while the gatherer was down"
    );
    assert!(ids.len() >= 5, "too few trades while down: {}", ids.len());
    let started = Instant::now();
    let missing = await_stored(&store, &ids, Duration::from_secs(30)).await;
    println!(
        "down {down:?}: {} trades made while down, all stored {:?} after the restart; missing {}",
        ids.len(),
        started.elapsed(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "missing after the downtime repair: {missing:?}"
    );
    let gaps = all_rows(&store, Table::Gaps)?;
    assert!(
        gaps.iter()
            .any(|g| matches!(&g.record, Record::Gap(gap) if gap.reason == "downtime")),
        "the downtime is recorded as a gap"
    );
    gatherer.stop().await?;
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_made_while_down_5s_are_backfilled_on_restart() -> TestResult {
    downtime(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "60 s of downtime; run with --ignored"]
async fn trades_made_while_down_60s_are_backfilled_on_restart() -> TestResult {
    downtime(Duration::from_secs(60)).await
}

/// A maintenance window of `window` (`maintenance:0:W`: `exchange_active=false` with
/// `exchange_estimated_resume_time`, every other REST path 503, nothing published). Trades are
/// dropped for everyone just before it, so the repair's backfill falls inside the window.
/// `maintenance` overrides the wait rules (margin, floor, status retry), `None` = DESIGN §6.
async fn maintenance(window: Duration, short_waits: bool) -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let truth = dir.path().join("truth.jsonl");
    let sim = small_sim(30, 600, Some(truth.clone())).await?;
    let proxy = RestProxy::start(sim.addr(), None).await?;
    let store = dir.path().join("store");
    let mut config = gatherer_config(&store, &proxy.base, &sim.ws_url());
    config.snapshot_poll_interval_mins = 0;
    // The registry reconciles every second, so it meets the window too.
    config.reconcile_interval_secs = 1;
    if short_waits {
        config.maintenance_resume_margin_ms = 1_000;
        config.maintenance_min_wait_ms = 1_000;
        config.maintenance_status_retry_ms = 1_000;
    }
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    assert!(settled(&gatherer).await, "never subscribed");
    let from = TimestampUs::now();
    sim.add_fault(kd_sim::parse_fault("ws-drop-all:0.2")?);
    let addr = gatherer.addr();
    // Until a trade has been dropped for everyone…
    let dropped = until(Duration::from_secs(20), POLL, || async {
        truth_trades(&sim, &truth, from, TimestampUs::now())
            .await
            .is_ok_and(|t| t.iter().any(|(_, delivered)| !delivered))
    })
    .await;
    assert!(dropped, "no trade dropped for everyone");
    sim.clear_faults();
    // …and later trades on the same subscription have revealed the gap.
    let published = sim
        .stats()
        .await
        .published
        .get("trade")
        .copied()
        .unwrap_or(0);
    let revealed = until(Duration::from_secs(20), POLL, || async {
        sim.stats()
            .await
            .published
            .get("trade")
            .is_some_and(|n| *n >= published + 10)
    })
    .await;
    assert!(revealed);
    sim.add_fault(kd_sim::parse_fault(&format!(
        "maintenance:0:{}",
        window.as_secs_f64()
    ))?);
    let window_start = Instant::now();
    let window_end = window_start + window;
    let window_end_wall =
        TimestampUs::from_micros(TimestampUs::now().micros() + window.as_micros() as i64);
    let polls_before = metric(&scrape(addr).await?, "rest_maintenance_polls_total");

    // Collection resumes: trades made after the window are stored.
    let resumed = wait_until(window + Duration::from_secs(60), || {
        all_rows(&store, Table::Trades).is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.record.exchange_ts() > window_end_wall)
        })
    })
    .await;
    assert!(resumed, "nothing collected after the window");
    let resumed_after = window_start.elapsed();
    // Gaps repaired: every trade since `from`, delivered or not, ends in the store.
    let to = TimestampUs::now();
    let trades = truth_trades(&sim, &truth, from, to).await?;
    let ids: Vec<String> = trades.iter().map(|(id, _)| id.clone()).collect();
    let lost = trades.iter().filter(|(_, d)| !d).count();
    let missing = await_stored(&store, &ids, Duration::from_secs(60)).await;

    let text = scrape(addr).await?;
    let during: Vec<_> = proxy
        .all()
        .into_iter()
        .filter(|s| s.at >= window_start && s.at < window_end)
        .collect();
    let backfills_after: Vec<_> = proxy
        .to("/markets/trades")
        .into_iter()
        .filter(|s| s.at >= window_start && s.status == 200)
        .collect();
    println!(
        "window {window:?}: {} REST requests during it: {:?}",
        during.len(),
        during
            .iter()
            .map(|s| format!(
                "+{}ms {} {}",
                s.at.duration_since(window_start).as_millis(),
                s.path,
                s.status
            ))
            .collect::<Vec<_>>()
    );
    println!(
        "status polls +{}; first successful backfill {:?} after the window opened; trades stored again {resumed_after:?} after; {} trades since the drops ({lost} dropped for everyone), missing {}",
        metric(&text, "rest_maintenance_polls_total") - polls_before,
        backfills_after
            .first()
            .map(|s| s.at.duration_since(window_start)),
        ids.len(),
        missing.len()
    );
    assert!(lost > 0, "no trade was dropped: the repair is untested");
    assert!(missing.is_empty(), "gaps not repaired: {missing:?}");
    // Few requests: each REST user looks at the status, then sleeps until the announced end.
    assert!(
        during.len() <= 12,
        "{} requests during the window",
        during.len()
    );
    // Nothing but status checks succeeded while the exchange was down.
    assert!(
        during
            .iter()
            .all(|s| s.path == "/exchange/status" || s.status == 503),
        "a request other than the status check was answered during the window"
    );
    // The repair's backfill waited for the announced end.
    let first = backfills_after
        .first()
        .ok_or("no backfill after the window")?;
    assert!(
        first.at >= window_end,
        "backfilled before the exchange came back"
    );
    gatherer.stop().await?;
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5s_maintenance_window_is_waited_out_then_repaired() -> TestResult {
    let _serial = SERIAL.write().await;
    maintenance(Duration::from_secs(5), true).await
}

/// The issue's 2-minute window with the design's wait rules (10 s margin, 30 s floor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 2-minute window; run with --ignored"]
async fn a_2_minute_maintenance_window_is_waited_out_then_repaired() -> TestResult {
    let _serial = SERIAL.write().await;
    maintenance(Duration::from_secs(120), false).await
}

/// A retention run on a collecting gatherer (retention window 0: everything acknowledged is
/// old enough) deletes exactly the acknowledged rows; every row not acknowledged survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_everything_not_acknowledged() -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let sim = small_sim(20, 400, None).await?;
    let store = dir.path().join("store");
    let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
    config.retention_secs = 0;
    config.retention_interval_secs = 1;
    config.snapshot_poll_interval_mins = 0;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let heads = gatherer.heads();
    let enough = wait_until(Duration::from_secs(30), || {
        let h = heads.borrow();
        h.get(Table::Deltas) >= 200 && h.get(Table::Trades) >= 10
    })
    .await;
    assert!(enough, "too little collected");
    let acked = heads.borrow().get(Table::Deltas) / 2;
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/ack/deltas", gatherer.addr()))
        .json(&serde_json::json!({ "cursor": acked }))
        .send()
        .await?;
    assert!(
        response.status().is_success(),
        "ack refused: {}",
        response.status()
    );
    // A run now, on top of the periodic ones (every second) that keep happening meanwhile.
    let deleted = gatherer
        .control()
        .retention(TimestampUs::now())
        .await
        .ok_or("writer gone")??;
    let periodic = wait_until(Duration::from_secs(10), || {
        metric(
            &kd_core::telemetry::render_metrics(),
            r#"store_retention_deleted_total{table="deltas"}"#,
        ) > 0.0
    })
    .await;
    println!("explicit run deleted {deleted:?}; periodic runs counted: {periodic}");
    for table in Table::ALL {
        let rows = all_rows(&store, table)?;
        let head = rows.last().map_or(0, |r| r.seq);
        let first_kept = if table == Table::Deltas { acked + 1 } else { 1 };
        if head < first_kept {
            continue;
        }
        let expected = head - first_kept + 1;
        println!(
            "{}: rows {first_kept}..={head} expected, {} present",
            table.name(),
            rows.len()
        );
        assert_eq!(
            rows.first().map(|r| r.seq),
            Some(first_kept),
            "{}",
            table.name()
        );
        assert_eq!(
            rows.len() as u64,
            expected,
            "{}: a row not acknowledged was deleted",
            table.name()
        );
    }
    gatherer.stop().await?;
    sim.shutdown().await?;
    Ok(())
}
