//! Issue 17 item 7: gap records are coalesced per market, channel and reason while the store
//! fails, so the writer's kept batch stays bounded however many gaps arrive, and once the store
//! recovers each window is stored once, covering the whole outage.
//!
//! The store lives on a 4 MiB tmpfs that a filler file fills (as in `failure_disk`). Once the
//! gatherer reports `store_failing`, the simulator drops 5 % of every data message for everyone
//! (`ws-drop-all:0.05`: sequence gaps, each a gap record) for 20 s, then the fault is cleared
//! and the disk grown. Asserted:
//! - `writer_kept_gaps` (gap records the kept batch gained) stays at a handful while
//!   `sequence_gaps_total` grows by hundreds, and every gap recorded meanwhile was either kept
//!   or merged (`writer_gaps_coalesced_total`);
//! - after recovery, each (market, channel, reason) of the outage is stored once (sequence
//!   gaps and the router's drop windows), and every trade and delta the simulator dropped
//!   during the outage lies inside the one stored sequence-gap window of its channel (ticker
//!   messages carry no `seq`: a lost one is superseded by the next, by design).
//!
//! Needs root (or CAP_SYS_ADMIN) for `mount -t tmpfs`.

use crate::common;

use common::{SERIAL, SmallDisk, TestResult, all_rows, scrape, wait_until};
use kd_core::{Gap, Record, Table, TimestampUs};
use kd_sim::{Fate, TruthLine, parse_fault, read_truth_full};
use kd_testkit::prom;
use kd_testkit::tmpfs::fill;
use kd_testkit::wait::until;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);
/// How long gaps pile up while the store fails.
const OUTAGE: Duration = Duration::from_secs(20);
/// Gap windows are in receive time widened to exchange times; a message is received a little
/// after it is made.
const SLACK_US: i64 = 500_000;

type Key = (Option<String>, Vec<String>, String, String);

fn key(g: &Gap) -> Key {
    (
        g.ticker.clone(),
        g.tickers.clone(),
        g.channel.clone(),
        g.reason.clone(),
    )
}

async fn status(addr: SocketAddr) -> Option<String> {
    let h: serde_json::Value = reqwest::get(format!("http://{addr}/health"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    h["status"].as_str().map(str::to_string)
}

/// (`sequence_gaps_total` over every reason, `writer_gaps_coalesced_total`, `writer_kept_gaps`).
async fn gap_counts(
    addr: SocketAddr,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error + Send + Sync>> {
    let text = scrape(addr).await?;
    Ok((
        prom::sum(&text, "sequence_gaps_total").unwrap_or(0.0),
        prom::sum(&text, "writer_gaps_coalesced_total").unwrap_or(0.0),
        prom::value(&text, "writer_kept_gaps"),
    ))
}

fn overlaps(g: &Gap, from: TimestampUs, to: TimestampUs) -> bool {
    g.start.micros() <= to.micros() && g.end.micros() >= from.micros()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_while_the_store_fails_are_coalesced_and_stored_once_covering_the_outage() -> TestResult
{
    let _serial = SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    let markets = 20;
    let SmallDisk {
        dir: _dir,
        tmpfs,
        mnt,
        store,
        truth,
        sim,
        gatherer,
    } = SmallDisk::start(markets).await?;
    let addr = gatherer.addr();
    let heads = gatherer.heads();
    let started = wait_until(Duration::from_secs(60), || {
        heads.borrow().get(Table::Deltas) > 300
    })
    .await;
    assert!(
        started,
        "the gatherer stored too little: {:?}",
        *heads.borrow()
    );

    fill(&mnt.join("filler"))?;
    let failing = until(Duration::from_secs(30), POLL, || async {
        status(addr).await.is_some_and(|s| s == "store_failing")
    })
    .await;
    assert!(
        failing,
        "/health never reported store_failing on a full disk"
    );
    let (gaps0, coalesced0, kept0) = gap_counts(addr).await?;
    sim.add_fault(parse_fault("ws-drop-all:0.05")?);
    let fault_at = TimestampUs::now();
    let mut max_kept = kept0;
    let end = tokio::time::Instant::now() + OUTAGE;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        max_kept = max_kept.max(gap_counts(addr).await?.2);
    }
    sim.clear_faults();
    let cleared_at = TimestampUs::now();
    // Gaps of messages already in flight are recorded; then nothing new until recovery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (gaps1, coalesced1, kept1) = gap_counts(addr).await?;
    max_kept = max_kept.max(kept1);
    assert_eq!(
        status(addr).await.as_deref(),
        Some("store_failing"),
        "the store recovered by itself: the outage did not last"
    );

    tmpfs.resize("64m")?;
    let recovered = until(Duration::from_secs(60), POLL, || async {
        status(addr).await.is_some_and(|s| s != "store_failing")
    })
    .await;
    assert!(
        recovered,
        "the gatherer never recovered after the disk grew"
    );
    let recovered_at = TimestampUs::now();
    let (_, _, kept_after) = gap_counts(addr).await?;
    // The drop windows close once the queue has room; let them and the repairs be stored.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.stop_publishing().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    gatherer.stop().await?;
    sim.flush_truth().await;

    let recorded = gaps1 - gaps0;
    let merged = coalesced1 - coalesced0;
    let gaps: Vec<Gap> = all_rows(&store, Table::Gaps)?
        .into_iter()
        .filter_map(|r| match r.record {
            Record::Gap(g) => Some(g),
            _ => None,
        })
        .collect();
    // Each (market, channel, reason) of the outage: how many stored records.
    let mut per_key: BTreeMap<Key, Vec<&Gap>> = BTreeMap::new();
    for g in gaps
        .iter()
        .filter(|g| matches!(g.reason.as_str(), "seq_gap" | "dropped"))
        .filter(|g| overlaps(g, fault_at, cleared_at))
    {
        per_key.entry(key(g)).or_default().push(g);
    }
    let seq_gaps: Vec<&Gap> = per_key
        .iter()
        .filter(|(k, _)| k.3 == "seq_gap")
        .flat_map(|(_, v)| v.iter().copied())
        .collect();

    // Every message the simulator dropped during the outage, inside a stored sequence gap.
    let (mut dropped, mut uncovered) = (0_u64, Vec::new());
    for line in read_truth_full(&truth)? {
        let line = line?;
        let (TruthLine::Published { record, .. }, Some(Fate::Dropped)) = (line.line, line.fate)
        else {
            continue;
        };
        let (ticker, channel) = match &record {
            Record::Trade(t) => (&t.ticker, "trade"),
            Record::Delta(d) => (&d.ticker, "orderbook_delta"),
            // Ticker messages carry no `seq`: a lost one is undetectable by design (the next
            // one supersedes it), so it has no gap to be inside.
            _ => continue,
        };
        let ts = record.exchange_ts().micros();
        if ts < fault_at.micros() || ts > cleared_at.micros() {
            continue;
        }
        dropped += 1;
        let covered = seq_gaps.iter().any(|g| {
            g.channel == channel
                && g.names(ticker)
                && g.start.micros() - SLACK_US <= ts
                && ts <= g.end.micros() + SLACK_US
        });
        if !covered && uncovered.len() < 5 {
            uncovered.push(format!("{channel} {ticker} at {ts}"));
        }
    }
    let repeated: Vec<String> = per_key
        .iter()
        .filter(|(_, v)| v.len() != 1)
        .map(|(k, v)| format!("{k:?}: {} records {:?}", v.len(), v))
        .collect();
    let windows: Vec<String> = per_key
        .iter()
        .filter(|(k, _)| k.3 == "seq_gap")
        .flat_map(|(k, v)| {
            v.iter().map(move |g| {
                format!(
                    "{} {:?}: {:.1}s from {:+.1}s",
                    k.2,
                    k.0,
                    (g.end.micros() - g.start.micros()) as f64 / 1e6,
                    (g.start.micros() - fault_at.micros()) as f64 / 1e6
                )
            })
        })
        .collect();
    println!(
        "FIGURES gap-coalescing: {markets} markets, store failing {:.1}s with ws-drop-all 5 % for \
         {}s: {recorded} gap records made, {merged} coalesced, kept batch gained at most \
         {max_kept} (writer_kept_gaps; {kept_after} after recovery); stored for the outage: {} \
         (market, channel, reason) keys, {} sequence-gap records ({}), {} dropped-window \
         records; {dropped} messages dropped by the simulator, {} outside a stored window",
        (recovered_at.micros() - fault_at.micros()) as f64 / 1e6,
        OUTAGE.as_secs(),
        per_key.len(),
        seq_gaps.len(),
        windows.join("; "),
        per_key.iter().filter(|(k, _)| k.3 == "dropped").count(),
        uncovered.len(),
    );
    assert!(
        recorded >= 100.0,
        "too few gaps to test anything: {recorded}"
    );
    assert!(
        dropped > 0,
        "the simulator dropped nothing during the outage"
    );
    assert_eq!(
        merged + kept1 - kept0,
        recorded,
        "every gap recorded while the store failed is kept or coalesced"
    );
    assert!(
        max_kept <= (markets * 3) as f64 && max_kept * 10.0 <= recorded,
        "the kept batch grew with the gaps: {max_kept} kept of {recorded}"
    );
    assert_eq!(kept_after, 0.0, "writer_kept_gaps back to 0 once committed");
    assert!(
        !seq_gaps.is_empty(),
        "no sequence gap stored for the outage"
    );
    assert!(
        repeated.is_empty(),
        "keys stored more than once: {repeated:#?}"
    );
    assert!(
        uncovered.is_empty(),
        "dropped outside every stored window: {uncovered:?}"
    );
    sim.shutdown().await?;
    drop(tmpfs);
    Ok(())
}
