//! Issue 5, the REST status table of DESIGN §6 against a running gatherer: the simulator
//! injects each status (`http:STATUS:PATH:1`), a recording proxy between the gatherer and the
//! simulator logs every request with its arrival time, and the gatherer's metrics are read.
//!
//! The rows that retry or give up go through the trade backfill: the store is seeded with a
//! trade from "a previous run", so the gatherer's first act is the downtime repair
//! (`GET /markets/trades?min_ts=…`). The credential rows go through the market registry
//! (`GET /markets`), which the gatherer cannot work without: it halts.
//!
//! Counters are process-wide, so the tests of this file run one at a time ([`SERIAL`]) and
//! read deltas.

use crate::common;

use common::{
    RestProxy, SERIAL, Seen, TestResult, all_rows, gatherer_config, metric, scrape,
    seed_previous_run, small_sim, wait_until,
};
use kd_core::TimestampUs;
use kd_core::backoff::BackoffPolicy;
use kd_gatherer::GathererHandle;
use kd_sim::SimHandle;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ATTEMPTS: usize = 8; // repair.rs: attempts per page before a window is abandoned
/// Scheduling slack on a loaded 2-core machine, added to upper bounds only (a lower bound is
/// never loosened: the wait can only be late).
const SLACK_MS: u128 = 1_000;

struct Rig {
    sim: SimHandle,
    proxy: RestProxy,
    gatherer: GathererHandle,
    _dir: tempfile::TempDir,
    store: std::path::PathBuf,
    /// `min_ts` of the downtime backfill's requests.
    downtime_min_ts: i64,
}

impl Rig {
    /// Requests of the downtime backfill (not those of any later gap).
    fn downtime_requests(&self) -> Vec<Seen> {
        let needle = format!("min_ts={}", self.downtime_min_ts);
        self.proxy
            .to("/markets/trades")
            .into_iter()
            .filter(|s| s.query.split('&').any(|p| p == needle))
            .collect()
    }

    async fn stop(self) -> TestResult {
        self.gatherer.stop().await?;
        self.sim.shutdown().await?;
        Ok(())
    }
}

/// A simulator with `fault`, a recording proxy, and a gatherer behind it whose store holds a
/// trade from 3 s ago (so it starts with a downtime backfill).
async fn rig(
    fault: &str,
    retry_after_ms: Option<u64>,
    repair: BackoffPolicy,
) -> Result<Rig, Box<dyn std::error::Error + Send + Sync>> {
    let _ = kd_core::telemetry::metrics_handle();
    let sim = small_sim(20, 300, None).await?;
    sim.add_fault(kd_sim::parse_fault(fault)?);
    let proxy = RestProxy::start(sim.addr(), retry_after_ms).await?;
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");
    let seeded = TimestampUs::from_micros(TimestampUs::now().micros() - 3_000_000);
    seed_previous_run(&store, seeded)?;
    let mut config = gatherer_config(&store, &proxy.base, &sim.ws_url());
    config.repair_backoff_base_ms = repair.base.as_millis() as u64;
    config.repair_backoff_max_ms = repair.max.as_millis() as u64;
    config.snapshot_poll_interval_mins = 0;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    Ok(Rig {
        sim,
        proxy,
        gatherer,
        _dir: dir,
        store,
        downtime_min_ts: seeded.secs() - 1,
    })
}

fn now_metrics() -> String {
    kd_core::telemetry::render_metrics()
}

/// Waits until `series` has grown by at least `by` over `before`.
async fn counter_grows(before: &str, series: &str, by: f64, limit: Duration) -> bool {
    let start = metric(before, series);
    wait_until(limit, || metric(&now_metrics(), series) >= start + by).await
}

fn gaps_ms(seen: &[Seen]) -> Vec<u128> {
    seen.windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_millis())
        .collect()
}

/// Rows that are not retried (400) or skip the resource (404): exactly one request, the
/// window abandoned and counted, the gatherer collecting on.
async fn not_retried(status: u16, kind: &str) -> TestResult {
    let _serial = SERIAL.write().await;
    let before = now_metrics();
    let policy = BackoffPolicy::new(Duration::from_millis(50), Duration::from_millis(100));
    let rig = rig(&format!("http:{status}:/markets/trades:1"), None, policy).await?;
    let series = format!(r#"repair_errors_total{{kind="{kind}"}}"#);
    assert!(
        counter_grows(&before, &series, 1.0, Duration::from_secs(20)).await,
        "the backfill never gave up on {status}"
    );
    // A retry would come within the backoff (50–125 ms); give it ten times that.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = rig.downtime_requests();
    println!(
        "{status}: downtime backfill requests {:?}",
        seen.iter().map(|s| s.status).collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), 1, "{status} must not be retried: {seen:?}");
    assert_eq!(seen[0].status, status);
    let text = scrape(rig.gatherer.addr()).await?;
    assert_eq!(metric(&text, &series) - metric(&before, &series), 1.0);
    assert_eq!(
        metric(&text, "rest_retries_total") - metric(&before, "rest_retries_total"),
        0.0,
        "nothing retried"
    );
    // The component skipped the window; the gatherer goes on collecting.
    assert!(!rig.gatherer.health().halted.load(Ordering::Relaxed));
    let collecting = wait_until(Duration::from_secs(20), || {
        all_rows(&rig.store, kd_core::Table::Trades).is_ok_and(|r| r.len() > 1)
    })
    .await;
    assert!(collecting, "no trade collected after the {status}");
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_400_is_not_retried() -> TestResult {
    not_retried(400, "bad_request").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_404_skips_the_resource() -> TestResult {
    not_retried(404, "not_found").await
}

/// 401/403: a critical log, `rest_auth_failures_total` + 1, the gatherer halts with one
/// request made (no retry loop).
async fn halts(status: u16, kind: &str) -> TestResult {
    let _serial = SERIAL.write().await;
    let before = now_metrics();
    let policy = BackoffPolicy::new(Duration::from_millis(20), Duration::from_millis(40));
    let rig = rig(&format!("http:{status}:/markets:1"), None, policy).await?;
    let health = rig.gatherer.health().clone();
    let ended = tokio::time::timeout(Duration::from_secs(20), rig.gatherer.wait()).await;
    let result = match ended {
        Ok(r) => r,
        Err(_) => panic!("the gatherer did not halt on {status}"),
    };
    match result {
        Err(kd_gatherer::GathererError::Pipeline(
            kd_gatherer::pipeline::PipelineError::Registry(e),
        )) => {
            println!("{status}: halted: {e}")
        }
        other => panic!("expected a registry halt, got {other:?}"),
    }
    assert!(
        health.halted.load(Ordering::Relaxed),
        "/health must say halted"
    );
    let seen = rig.proxy.to("/markets");
    assert_eq!(seen.len(), 1, "one request, no retry loop: {seen:?}");
    assert_eq!(seen[0].status, status);
    // The gatherer (and its /metrics) has stopped: read the same recorder in process.
    let after = now_metrics();
    let delta = |s: &str| metric(&after, s) - metric(&before, s);
    assert_eq!(delta("rest_auth_failures_total"), 1.0);
    assert_eq!(
        delta(&format!(r#"registry_errors_total{{kind="{kind}"}}"#)),
        1.0
    );
    assert_eq!(delta("registry_retries_total"), 0.0);
    assert_eq!(delta("rest_retries_total"), 0.0);
    rig.sim.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_401_halts_without_retrying() -> TestResult {
    halts(401, "unauthorized").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_403_halts_without_retrying() -> TestResult {
    halts(403, "forbidden").await
}

/// 429 with `retry_after_ms`: the wait between attempts is the server's (jittered 0–25 %), not
/// the (much shorter) configured backoff; attempts are bounded and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_429_waits_retry_after_ms_and_is_bounded() -> TestResult {
    let _serial = SERIAL.write().await;
    let before = now_metrics();
    let retry_after = 250_u128;
    let policy = BackoffPolicy::new(Duration::from_millis(5), Duration::from_millis(10));
    let rig = rig(
        "http:429:/markets/trades:1",
        Some(retry_after as u64),
        policy,
    )
    .await?;
    let series = r#"repair_errors_total{kind="rate_limited"}"#;
    assert!(counter_grows(&before, series, 1.0, Duration::from_secs(30)).await);
    let seen = rig.downtime_requests();
    let gaps = gaps_ms(&seen);
    println!("429: {} attempts, gaps (ms) {gaps:?}", seen.len());
    assert_eq!(seen.len(), ATTEMPTS, "attempts are bounded");
    assert!(seen.iter().all(|s| s.status == 429));
    for g in &gaps {
        assert!(
            *g >= retry_after && *g <= retry_after * 5 / 4 + SLACK_MS,
            "gap {g} ms does not honour retry_after_ms={retry_after}: {gaps:?}"
        );
    }
    let text = scrape(rig.gatherer.addr()).await?;
    assert_eq!(
        metric(&text, "rest_retries_total") - metric(&before, "rest_retries_total"),
        (ATTEMPTS - 1) as f64,
        "every retry counted"
    );
    rig.stop().await
}

/// 500/502/504: retried with the component's backoff (each wait at least the policy's
/// ceiling for that attempt, at most 25 % more), each retry counted; once the exchange
/// answers again, the backfill completes.
async fn retried_with_backoff(status: u16) -> TestResult {
    let _serial = SERIAL.write().await;
    let before = now_metrics();
    let policy = BackoffPolicy::new(Duration::from_millis(60), Duration::from_millis(240));
    let rig = rig(&format!("http:{status}:/markets/trades:1"), None, policy).await?;
    let failed = wait_until(Duration::from_secs(20), || {
        rig.downtime_requests().len() >= 3
    })
    .await;
    assert!(failed, "the backfill never retried {status}");
    rig.sim.clear_faults();
    let done = counter_grows(
        &before,
        r#"repair_backfills_total{reason="downtime"}"#,
        1.0,
        Duration::from_secs(20),
    )
    .await;
    assert!(done, "the backfill did not complete once {status} stopped");
    let seen = rig.downtime_requests();
    let gaps = gaps_ms(&seen);
    let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
    println!("{status}: statuses {statuses:?}, gaps (ms) {gaps:?}");
    let failures = statuses.iter().take_while(|s| **s == status).count();
    assert!((3..ATTEMPTS).contains(&failures), "{statuses:?}");
    assert_eq!(statuses.get(failures), Some(&200), "{statuses:?}");
    for (attempt, g) in gaps.iter().take(failures).enumerate() {
        let ceiling = policy.ceiling(attempt as u32).as_millis();
        assert!(
            *g >= ceiling && *g <= ceiling * 5 / 4 + SLACK_MS,
            "attempt {attempt}: waited {g} ms, backoff ceiling {ceiling} ms ({gaps:?})"
        );
    }
    let text = scrape(rig.gatherer.addr()).await?;
    let delta = |s: &str| metric(&text, s) - metric(&before, s);
    assert_eq!(
        delta("rest_retries_total"),
        failures as f64,
        "every retry counted"
    );
    assert_eq!(
        delta(&format!(
            r#"rest_requests_total{{endpoint="/markets/trades",status="{status}"}}"#
        )),
        failures as f64
    );
    assert_eq!(delta(r#"repair_errors_total{kind="server_error"}"#), 0.0);
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_500_is_retried_with_backoff() -> TestResult {
    retried_with_backoff(500).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_502_is_retried_with_backoff() -> TestResult {
    retried_with_backoff(502).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_504_is_retried_with_backoff() -> TestResult {
    retried_with_backoff(504).await
}

/// 503 takes the maintenance path: every 503 is followed by a look at `/exchange/status`
/// before anything else is tried. Here the exchange says it is up (an overloaded edge), so the
/// retries back off and stay bounded; the exchange-down case is `failure_repair.rs`'s
/// maintenance window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_503_checks_the_exchange_status() -> TestResult {
    let _serial = SERIAL.write().await;
    let before = now_metrics();
    let policy = BackoffPolicy::new(Duration::from_millis(40), Duration::from_millis(80));
    let rig = rig("http:503:/markets/trades:1", None, policy).await?;
    let series = r#"repair_errors_total{kind="unavailable"}"#;
    assert!(counter_grows(&before, series, 1.0, Duration::from_secs(30)).await);
    let seen = rig.downtime_requests();
    assert_eq!(seen.len(), ATTEMPTS, "attempts are bounded");
    let (first, last) = (seen[0].at, seen[seen.len() - 1].at);
    let status_checks: Vec<Seen> = rig
        .proxy
        .to("/exchange/status")
        .into_iter()
        .filter(|s| s.at > first && s.at < last)
        .collect();
    println!(
        "503: {} attempts, {} status checks between them, gaps (ms) {:?}",
        seen.len(),
        status_checks.len(),
        gaps_ms(&seen)
    );
    // One status check after each 503 that is retried, none in excess (the registry's own
    // start-up check may fall inside the window too).
    assert!(
        (ATTEMPTS - 1..=ATTEMPTS).contains(&status_checks.len()),
        "{} status checks",
        status_checks.len()
    );
    for pair in seen.windows(2) {
        assert!(
            status_checks
                .iter()
                .any(|c| c.at > pair[0].at && c.at < pair[1].at),
            "a retry without a status check first"
        );
    }
    let text = scrape(rig.gatherer.addr()).await?;
    assert!(
        metric(&text, "rest_maintenance_polls_total")
            - metric(&before, "rest_maintenance_polls_total")
            >= (ATTEMPTS - 1) as f64
    );
    rig.stop().await
}

/// The market registry cannot work without its list: a 500 on `/markets` is retried with the
/// registry's backoff for as long as it lasts (here well past the repair's 8 attempts), every
/// retry counted; the list is synced once the exchange answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_retries_a_500_until_it_succeeds() -> TestResult {
    let _serial = SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    let before = now_metrics();
    let sim = small_sim(20, 300, None).await?;
    sim.add_fault(kd_sim::parse_fault("http:500:/markets:1")?);
    let proxy = RestProxy::start(sim.addr(), None).await?;
    let dir = tempfile::tempdir()?;
    let mut config = gatherer_config(dir.path(), &proxy.base, &sim.ws_url());
    config.registry_backoff_base_ms = 20;
    config.registry_backoff_max_ms = 80;
    config.snapshot_poll_interval_mins = 0;
    let policy = config.registry_backoff();
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let failing = wait_until(Duration::from_secs(20), || {
        proxy.to("/markets").len() > 2 * ATTEMPTS
    })
    .await;
    assert!(failing, "the registry stopped retrying");
    assert!(!gatherer.health().registry_synced.load(Ordering::Relaxed));
    sim.clear_faults();
    let health = gatherer.health().clone();
    let synced = wait_until(Duration::from_secs(20), || {
        health.registry_synced.load(Ordering::Relaxed)
            && health.markets_known.load(Ordering::Relaxed) > 0
    })
    .await;
    assert!(synced, "the registry did not sync once /markets answered");
    let seen = proxy.to("/markets");
    let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
    let failures = statuses.iter().take_while(|s| **s == 500).count();
    let gaps = gaps_ms(&seen);
    println!(
        "registry: {failures} × 500 then {:?}; gaps (ms) {gaps:?}",
        &statuses[failures..]
    );
    assert_eq!(statuses.get(failures), Some(&200));
    // Between two /markets requests the registry also looks at /exchange/status, so each gap
    // is at least the backoff ceiling of its attempt.
    for (attempt, g) in gaps.iter().take(failures).enumerate() {
        let ceiling = policy.ceiling(attempt as u32).as_millis();
        assert!(
            *g >= ceiling,
            "attempt {attempt}: waited {g} ms < {ceiling} ms"
        );
    }
    let text = scrape(gatherer.addr()).await?;
    let delta = |s: &str| metric(&text, s) - metric(&before, s);
    assert_eq!(
        delta("registry_retries_total"),
        failures as f64,
        "every retry counted"
    );
    assert_eq!(
        delta(r#"registry_errors_total{kind="server_error"}"#),
        failures as f64
    );
    assert!(!health.halted.load(Ordering::Relaxed));
    gatherer.stop().await?;
    sim.shutdown().await?;
    Ok(())
}
