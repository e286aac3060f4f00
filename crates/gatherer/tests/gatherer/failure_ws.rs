//! Issue 5, the WebSocket rows of DESIGN §6 against a running gatherer: the simulator closes
//! connections with each code (`ws-close:CODE:all`), a TCP forwarder between the gatherer and
//! the simulator records when every connection attempt arrives, and the gatherer's metrics are
//! read. Also: a handshake refused with 401 halts (no retry loop), and 50 connections closed at
//! once reconnect spread out by jitter.
//!
//! Counters are process-wide, so the tests of this file run one at a time ([`SERIAL`]) and
//! read deltas.

use crate::common;

use common::{SERIAL, TestResult, WsProxy, gatherer_config, metric, scrape, small_sim, wait_until};
use kd_gatherer::GathererHandle;
use kd_sim::SimHandle;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const MARKETS: usize = 20;
/// Connection backoff base of the close-code tests: long enough that "at once" (only the jitter,
/// ≤ 25 % of it) and "after the backoff" cannot be confused on a loaded machine.
const BASE_MS: u64 = 1_500;

struct Rig {
    sim: SimHandle,
    proxy: WsProxy,
    gatherer: GathererHandle,
    _dir: tempfile::TempDir,
}

async fn rig(
    markets: usize,
    connections: usize,
    backoff_ms: Option<(u64, u64)>,
) -> Result<Rig, Box<dyn std::error::Error + Send + Sync>> {
    let _ = kd_core::telemetry::metrics_handle();
    let sim = small_sim(markets, 200, None).await?;
    let proxy = WsProxy::start(sim.addr()).await?;
    let dir = tempfile::tempdir()?;
    let mut config = gatherer_config(dir.path(), &sim.rest_base(), &proxy.url);
    config.connections = connections;
    config.snapshot_poll_interval_mins = 0;
    if let Some((base, max)) = backoff_ms {
        config.connection_backoff_base_ms = base;
        config.connection_backoff_max_ms = max;
    }
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    Ok(Rig {
        sim,
        proxy,
        gatherer,
        _dir: dir,
    })
}

impl Rig {
    /// Every connection up and every open market subscribed.
    async fn settled(&self, connections: usize) -> bool {
        let health = self.gatherer.health().clone();
        wait_until(Duration::from_secs(30), || {
            let known = health.markets_known.load(Ordering::Relaxed);
            health.connections_up.load(Ordering::Relaxed) == connections
                && known > 0
                && health.markets_subscribed.load(Ordering::Relaxed) == known
        })
        .await
    }

    /// Closes every connection with `code` and returns how long after the close each
    /// reconnect attempt arrived.
    /// Code 1006 is never sent in a close frame: the sockets are cut instead.
    async fn close_all_and_time_reconnects(&self, code: u16, connections: usize) -> Vec<Duration> {
        let before = self.proxy.accepts().len();
        let closed_at = Instant::now();
        if code == 1006 {
            self.proxy.cut_all();
        } else {
            self.sim.add_fault(
                kd_sim::parse_fault(&format!("ws-close:{code}:all")).expect("fault spec"),
            );
        }
        let back = wait_until(Duration::from_secs(20), || {
            self.proxy.accepts().len() >= before + connections
        })
        .await;
        assert!(back, "not every connection came back after close {code}");
        self.sim.clear_faults();
        let mut delays: Vec<Duration> = self.proxy.accepts()[before..before + connections]
            .iter()
            .map(|at| at.duration_since(closed_at))
            .collect();
        delays.sort();
        delays
    }

    async fn stop(self) -> TestResult {
        self.gatherer.stop().await?;
        self.sim.shutdown().await?;
        Ok(())
    }
}

/// Closes both connections with `code`; checks the reconnect delay and the counters.
async fn close_row(code: u16, immediate: bool, reasons: &[&str]) -> TestResult {
    let _serial = SERIAL.write().await;
    let rig = rig(MARKETS, 2, Some((BASE_MS, 4 * BASE_MS))).await?;
    assert!(rig.settled(2).await, "never subscribed");
    let before = scrape(rig.gatherer.addr()).await?;
    let delays = rig.close_all_and_time_reconnects(code, 2).await;
    assert!(rig.settled(2).await, "not resubscribed after close {code}");
    let after = scrape(rig.gatherer.addr()).await?;
    let delta = |s: &str| metric(&after, s) - metric(&before, s);
    let reconnects: f64 = reasons
        .iter()
        .map(|r| delta(&format!(r#"connection_reconnects_total{{reason="{r}"}}"#)))
        .sum();
    println!(
        "close {code}: reconnects after {:?} ms; reconnects {reasons:?} +{reconnects}, retries +{}, policy closes +{}",
        delays.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        delta("connection_retries_total"),
        delta("connection_policy_closes_total"),
    );
    let all_reasons: Vec<&str> = after
        .lines()
        .filter(|l| l.starts_with("connection_reconnects_total{"))
        .collect();
    assert_eq!(
        reconnects, 2.0,
        "each connection reconnected once: {all_reasons:#?}"
    );
    let base = Duration::from_millis(BASE_MS);
    if immediate {
        // At once: no backoff, only the 0–25 % jitter of the base (sooner than the base even
        // with a loaded machine's scheduling delays).
        assert!(
            delays.iter().all(|d| *d < base),
            "close {code} must reconnect at once: {delays:?}"
        );
        assert_eq!(delta("connection_retries_total"), 0.0);
    } else {
        assert!(
            delays
                .iter()
                .all(|d| *d >= base && *d <= base * 5 / 4 + Duration::from_secs(1)),
            "close {code} must reconnect after the backoff ({BASE_MS} ms + 0–25 %): {delays:?}"
        );
        assert_eq!(delta("connection_retries_total"), 2.0);
    }
    let policy_closes = delta("connection_policy_closes_total");
    assert_eq!(policy_closes, if code == 1008 { 2.0 } else { 0.0 });
    assert!(!rig.gatherer.health().halted.load(Ordering::Relaxed));
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1000_reconnects_at_once() -> TestResult {
    close_row(1000, true, &["close_1000"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1001_reconnects_with_backoff() -> TestResult {
    close_row(1001, false, &["close_1001"]).await
}

/// 1006 means "closed abnormally": RFC 6455 forbids it inside a close frame; a client sees it
/// when the TCP connection dies without one. The forwarder cuts both sockets; the gatherer
/// sees an end of stream or a read error and comes back after the backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1006_reconnects_with_backoff() -> TestResult {
    close_row(1006, false, &["close_1006", "eof", "read_error"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1011_reconnects_with_backoff() -> TestResult {
    close_row(1011, false, &["close_1011"]).await
}

/// 1008 (policy): logged as a credential problem, counted in `connection_policy_closes_total`
/// (the alert), reconnected with backoff — the new handshake is the credential check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1008_is_counted_for_the_alert() -> TestResult {
    close_row(1008, false, &["close_1008"]).await
}

async fn handshake_refused(connections: usize) -> TestResult {
    let _serial = SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    let before = kd_core::telemetry::render_metrics();
    let (_private, public) = kd_kalshi::auth::generate_keypair(1024)?;
    let sim = kd_sim::start(
        kd_sim::SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets: MARKETS,
            hot_markets: MARKETS,
            rate: 100,
            create_every: Duration::ZERO,
            auth: kd_sim::AuthMode::Keys(vec![("good".into(), public)]),
            ..kd_sim::SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    let proxy = WsProxy::start(sim.addr()).await?;
    let dir = tempfile::tempdir()?;
    // No key: REST reads need none, the WebSocket handshake is refused with 401.
    let mut config = gatherer_config(dir.path(), &sim.rest_base(), &proxy.url);
    config.connections = connections;
    config.connection_backoff_base_ms = 50;
    config.connection_backoff_max_ms = 100;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let health = gatherer.health().clone();
    let ended = tokio::time::timeout(Duration::from_secs(20), gatherer.wait())
        .await
        .map_err(|_| "the gatherer did not halt")?;
    match ended {
        Err(kd_gatherer::GathererError::Pipeline(
            kd_gatherer::pipeline::PipelineError::Connection(e),
        )) => println!("halted: {e}"),
        other => panic!("expected a connection halt, got {other:?}"),
    }
    assert!(health.halted.load(Ordering::Relaxed));
    // Every task has ended: nothing can retry any more. Count what happened.
    let after = kd_core::telemetry::render_metrics();
    let failures = metric(&after, "connection_auth_failures_total")
        - metric(&before, "connection_auth_failures_total");
    let attempts = proxy.accepts().len();
    let rejected = sim.stats().await.auth_rejected;
    println!(
        "{connections} connection(s): auth failures {failures}, handshakes {attempts}, rejected by the exchange {rejected}"
    );
    // Each connection tries once at most; the first refusal stops the others (a refusal that
    // arrives after the stop is not counted again: its connection task has already ended).
    assert!(failures >= 1.0 && failures <= rejected as f64);
    assert!(rejected as usize <= connections);
    assert!(attempts <= connections, "a connection tried twice");
    if connections == 1 {
        assert_eq!(failures, 1.0);
        assert_eq!(attempts, 1);
    }
    assert_eq!(
        metric(&after, "connection_retries_total") - metric(&before, "connection_retries_total"),
        0.0
    );
    sim.shutdown().await?;
    Ok(())
}

/// 401 at the handshake: the gatherer halts, `connection_auth_failures_total` is exactly 1,
/// one handshake reached the exchange (no retry loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_401_halts_after_one_attempt() -> TestResult {
    handshake_refused(1).await
}

/// The same with a pool of four: no connection tries twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_401_halts_a_pool_without_retries() -> TestResult {
    handshake_refused(4).await
}

/// Prints the distribution; returns the spread (ms) and how many 25 ms buckets hold a reconnect.
fn report(label: &str, delays: &[Duration]) -> (u128, usize) {
    let ms: Vec<u128> = delays.iter().map(|d| d.as_millis()).collect();
    let pct = |p: usize| ms[(ms.len() - 1) * p / 100];
    let spread = ms[ms.len() - 1] - ms[0];
    // Most reconnects in any 20 ms window.
    let densest = ms
        .iter()
        .map(|start| {
            ms.iter()
                .filter(|m| **m >= *start && **m < start + 20)
                .count()
        })
        .max()
        .unwrap_or(0);
    let mut histogram = std::collections::BTreeMap::new();
    for m in &ms {
        *histogram.entry(m / 25 * 25).or_insert(0) += 1;
    }
    println!(
        "{label}: {} reconnects after the close: min {} ms, p10 {}, p50 {}, p90 {}, max {} ms; spread {spread} ms; at most {densest} in any 20 ms",
        ms.len(),
        ms[0],
        pct(10),
        pct(50),
        pct(90),
        ms[ms.len() - 1]
    );
    println!("{label}: histogram (25 ms bucket start → count): {histogram:?}");
    (spread, histogram.len())
}

/// 50 connections closed at once: their reconnect attempts are spread by the jitter, for a
/// close with backoff (1011: 1 s + 0–250 ms) and for a clean close (1000: 0–250 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_closed_at_once_reconnect_spread_by_jitter() -> TestResult {
    let _serial = SERIAL.write().await;
    const N: usize = 50;
    let markets = 100;
    // The default connection backoff (DESIGN §6: 1 s → 5 min).
    let rig = rig(markets, N, None).await?;
    assert!(rig.settled(N).await, "the pool never came up");
    let with_backoff = rig.close_all_and_time_reconnects(1011, N).await;
    // What is asserted is that the attempts are spread at all: without jitter all 50 land in
    // one or two 25 ms buckets. How densely they cluster is only reported — on a loaded machine
    // the tasks run late and in bursts, which says nothing about the delays they chose.
    let (spread, buckets) = report("close 1011", &with_backoff);
    assert!(with_backoff.iter().all(|d| *d >= Duration::from_secs(1)));
    assert!(spread >= 100, "reconnects within {spread} ms: no jitter");
    assert!(buckets >= 5, "reconnects in only {buckets} 25 ms buckets");

    assert!(rig.settled(N).await, "the pool did not come back");
    let at_once = rig.close_all_and_time_reconnects(1000, N).await;
    let (spread, buckets) = report("close 1000", &at_once);
    assert!(
        at_once.iter().all(|d| *d < Duration::from_secs(1)),
        "not at once"
    );
    assert!(spread >= 100, "reconnects within {spread} ms: no jitter");
    assert!(buckets >= 5, "reconnects in only {buckets} 25 ms buckets");
    rig.stop().await
}
