//! The feed stop (`GathererHandle::stop_feed`, SIGUSR1 in `kalshi-data gatherer`): the
//! WebSockets close and nothing more is committed while the exchange keeps publishing, yet
//! pulls and acknowledgements are still served until the gatherer is stopped — what `up`'s
//! drain on an exchange that is not its own relies on.

use crate::common;

use common::{TestResult, gatherer_config, wait_until};
use kd_core::Table;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_feed_commits_nothing_more_and_still_serves_pulls_and_acks() -> TestResult {
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let sim = common::small_sim(20, 500, None).await?;
    let config = gatherer_config(&dir.path().join("store"), &sim.rest_base(), &sim.ws_url());
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let health = gatherer.health().clone();
    let heads = gatherer.heads();
    let flowing = wait_until(Duration::from_secs(30), || {
        heads.borrow().get(Table::Deltas) > 100
    })
    .await;
    assert!(flowing, "no deltas stored");

    gatherer.stop_feed();
    let closed = wait_until(Duration::from_secs(10), || {
        health.connections_up.load(Ordering::Relaxed) == 0
    })
    .await;
    assert!(closed, "sockets still open after the feed stop");
    // The exchange keeps publishing: heads stand still (a second without a commit, within 15 s).
    let mut rx = gatherer.heads();
    let end = Instant::now() + Duration::from_secs(15);
    let mut still = false;
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_secs(1), rx.changed()).await {
            Err(_) => {
                still = true;
                break;
            }
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
        }
    }
    assert!(still, "commits go on after the feed stop");
    let head = rx.borrow().get(Table::Deltas);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.borrow().get(Table::Deltas),
        head,
        "a delta committed after the close"
    );

    // Still serving: a pull returns the stored rows, an acknowledgement is stored.
    let client = reqwest::Client::new();
    let base = format!("http://{}", gatherer.addr());
    let page: serde_json::Value = client
        .get(format!("{base}/v1/pull/deltas?after=0&limit=10"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(page["head"].as_u64(), Some(head), "{page}");
    assert_eq!(page["records"].as_array().map(Vec::len), Some(10), "{page}");
    let ack = client
        .post(format!("{base}/v1/ack/deltas"))
        .json(&serde_json::json!({ "cursor": head }))
        .send()
        .await?;
    assert_eq!(
        ack.status(),
        reqwest::StatusCode::NO_CONTENT,
        "ack after the close"
    );
    // `/health` shows it once the writer refreshes its figures (every few seconds).
    let end = Instant::now() + Duration::from_secs(15);
    let report = loop {
        let report: serde_json::Value = client
            .get(format!("{base}/health"))
            .send()
            .await?
            .json()
            .await?;
        let acked = report["store"]["tables"]["deltas"]["acked"].as_u64();
        if acked == Some(head) || Instant::now() >= end {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        report["store"]["tables"]["deltas"]["depth"].as_u64(),
        Some(0),
        "{report}"
    );
    assert_eq!(report["connections_up"].as_u64(), Some(0), "{report}");

    gatherer.stop().await?;
    sim.shutdown().await?;
    Ok(())
}
