//! A gatherer's disk fills up (issue 9): the store lives on a small tmpfs that a filler file
//! fills completely. The gatherer must fail loudly (`store_write_errors_total{kind="disk_full"}`,
//! `/health` `store_failing` naming the store and "disk full", `/ready` 503), keep every row it
//! committed before pullable and intact, and when the filesystem grows, resume by itself:
//! the kept batch and the queue behind it are committed, and whatever the router had to drop
//! meanwhile is covered by a recorded gap.
//!
//! Needs root (or CAP_SYS_ADMIN) for `mount -t tmpfs`; without it the test fails and says so
//! rather than pass without having tested anything.

use crate::common;

use common::{
    SERIAL, SmallDisk, TestResult, all_rows, gatherer_config, metric, scrape, small_sim, wait_until,
};
use kd_core::pull::{PullResponse, PulledRecord};
use kd_core::{Gap, Record, Table, TimestampUs};
use kd_sim::{TruthLine, read_truth};
use kd_testkit::tmpfs::{Tmpfs, fill};
use kd_testkit::wait::until;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How often the waits below poll.
const POLL: Duration = Duration::from_millis(100);

async fn health(addr: SocketAddr) -> Result<serde_json::Value, Error> {
    Ok(reqwest::get(format!("http://{addr}/health"))
        .await?
        .json()
        .await?)
}

async fn ready_status(addr: SocketAddr) -> Result<u16, Error> {
    Ok(reqwest::get(format!("http://{addr}/ready"))
        .await?
        .status()
        .as_u16())
}

/// Every row of `table` through the deduplicator's pull API.
async fn pull_all(addr: SocketAddr, table: Table) -> Result<Vec<PulledRecord>, Error> {
    let client = reqwest::Client::new();
    let mut out: Vec<PulledRecord> = Vec::new();
    let mut after = 0;
    loop {
        let page: PullResponse = client
            .get(format!(
                "http://{addr}/v1/pull/{}?after={after}&limit=5000",
                table.name()
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match page.records.last() {
            Some(last) => after = last.seq,
            None => return Ok(out),
        }
        out.extend(page.records);
    }
}

fn channel_of(record: &Record) -> Option<(&str, &'static str)> {
    match record {
        Record::Trade(t) => Some((&t.ticker, "trade")),
        Record::Delta(d) => Some((&d.ticker, "orderbook_delta")),
        Record::Ticker(t) => Some((&t.ticker, "ticker")),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_loudly_keeps_what_is_stored_and_recovers_when_space_returns()
-> TestResult {
    let _serial = SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    kd_core::telemetry::init_logging(kd_core::telemetry::LogFormat::Human);
    let SmallDisk {
        dir: _dir,
        tmpfs,
        mnt,
        store,
        truth,
        sim,
        gatherer,
    } = SmallDisk::start(30).await?;
    let addr = gatherer.addr();
    let heads = gatherer.heads();
    let before_metrics = scrape(addr).await?;
    let full_errors_before = metric(
        &before_metrics,
        "store_write_errors_total{kind=\"disk_full\"}",
    );

    let t0 = Instant::now();
    let started = wait_until(Duration::from_secs(60), || {
        heads.borrow().get(Table::Deltas) > 300
    })
    .await;
    assert!(
        started,
        "the gatherer stored too little: heads {:?}, health {}",
        *heads.borrow(),
        health(addr).await?
    );

    println!(
        "{:?} to the first rows: heads {:?}",
        t0.elapsed(),
        *heads.borrow()
    );
    // Fill the filesystem. The WAL grows with every commit, so the next one hits ENOSPC.
    let filled = fill(&mnt.join("filler"))?;
    let full_at = TimestampUs::now();
    println!("filled the 4 MiB tmpfs with {filled} bytes of filler");
    let loud = until(Duration::from_secs(30), POLL, || async {
        health(addr)
            .await
            .is_ok_and(|h| h["status"] == "store_failing")
    })
    .await;
    assert!(
        loud,
        "/health never reported store_failing on a full disk: heads {:?}, files {:?}, health {}",
        *heads.borrow(),
        std::fs::read_dir(&store)?
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect::<Vec<_>>(),
        health(addr).await?
    );
    let h = health(addr).await?;
    let reason = h["store"]["error"].as_str().unwrap_or_default().to_string();
    println!(
        "/health while full: status {} error {reason:?}",
        h["status"]
    );
    assert!(reason.starts_with("disk full"), "reason: {reason}");
    assert!(
        reason.contains(&store.join("store.sqlite").display().to_string()),
        "the reason names the store file: {reason}"
    );
    assert_eq!(
        ready_status(addr).await?,
        503,
        "/ready while the disk is full"
    );
    let text = scrape(addr).await?;
    let full_errors = metric(&text, "store_write_errors_total{kind=\"disk_full\"}");
    assert!(
        full_errors > full_errors_before,
        "store_write_errors_total{{kind=\"disk_full\"}} did not grow"
    );
    assert_eq!(metric(&text, "store_write_failing"), 1.0);

    // Everything committed before is pullable and intact while the disk is full.
    let head_while_full = *heads.borrow();
    let stored_before: Vec<Vec<PulledRecord>> = {
        let mut v = Vec::new();
        for t in [Table::Trades, Table::Deltas, Table::Tickers] {
            v.push(pull_all(addr, t).await?);
        }
        v
    };
    for (t, rows) in [Table::Trades, Table::Deltas, Table::Tickers]
        .into_iter()
        .zip(&stored_before)
    {
        assert_eq!(
            rows.last().map_or(0, |r| r.seq),
            head_while_full.get(t),
            "{t:?}: the pull API serves every committed row while the disk is full"
        );
        assert!(
            rows.windows(2).all(|w| w[0].seq + 1 == w[1].seq),
            "{t:?}: no hole in the committed rows"
        );
    }

    // Stay full until the router had to drop (the queue overflowed), so gaps are exercised.
    let dropped = until(Duration::from_secs(60), POLL, || async {
        scrape(addr)
            .await
            .is_ok_and(|m| m.lines().any(|l| l.starts_with("router_dropped_total{")))
    })
    .await;
    assert!(
        dropped,
        "the queue never overflowed while the disk was full"
    );
    assert_eq!(
        *heads.borrow(),
        head_while_full,
        "nothing can be committed on a full disk"
    );
    // Acknowledgements are answered while commits fail (not queued behind the failing batch);
    // on a full disk the ack itself may be refused, and the deduplicator retries it later.
    let client = reqwest::Client::new();
    let ack_url = format!("http://{addr}/v1/ack/deltas");
    let cursor = head_while_full.get(Table::Deltas) / 2;
    let asked = Instant::now();
    let ack_while_full = tokio::time::timeout(
        Duration::from_secs(15),
        client
            .post(&ack_url)
            .json(&serde_json::json!({ "cursor": cursor }))
            .send(),
    )
    .await;
    let ack_status = match ack_while_full {
        Ok(reply) => reply?.status().as_u16(),
        Err(_) => panic!("an ack hung for 15 s behind the failing commit"),
    };
    println!(
        "ack while full: HTTP {ack_status} after {:?}",
        asked.elapsed()
    );
    // Stay full a while longer: the batch keeps being retried, the alarm stays up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        health(addr).await?["status"],
        "store_failing",
        "the alarm stays up while the disk is full"
    );
    let full_errors_mid = metric(
        &scrape(addr).await?,
        "store_write_errors_total{kind=\"disk_full\"}",
    );

    // Space returns: the gatherer resumes by itself.
    tmpfs.resize("64m")?;
    let grown_at = Instant::now();
    let recovered = until(Duration::from_secs(60), POLL, || async {
        health(addr)
            .await
            .is_ok_and(|h| h["status"] != "store_failing" && h["store"]["error"].is_null())
    })
    .await;
    assert!(
        recovered,
        "the gatherer never recovered after the disk grew"
    );
    let recover_time = grown_at.elapsed();
    let resumed = wait_until(Duration::from_secs(30), || {
        heads.borrow().get(Table::Deltas) > head_while_full.get(Table::Deltas) + 300
    })
    .await;
    assert!(resumed, "no new rows after the disk grew");
    let ready = until(Duration::from_secs(30), POLL, || async {
        ready_status(addr).await.is_ok_and(|s| s == 200)
    })
    .await;
    assert!(ready, "/ready never returned to 200");
    let text = scrape(addr).await?;
    assert_eq!(metric(&text, "store_write_failing"), 0.0);
    let ack_after = client
        .post(&ack_url)
        .json(&serde_json::json!({ "cursor": cursor }))
        .send()
        .await?
        .status()
        .as_u16();
    assert_eq!(ack_after, 204, "an ack is stored once the disk has room");
    // Let the records of the full period be committed and the drop windows closed, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.stop_publishing().await;
    let end = TimestampUs::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    gatherer.stop().await?;

    // The rows committed before the disk filled are unchanged (same seq, same record).
    for (t, before) in [Table::Trades, Table::Deltas, Table::Tickers]
        .into_iter()
        .zip(&stored_before)
    {
        let after = all_rows(&store, t)?;
        assert!(
            after.len() >= before.len() && after[..before.len()] == before[..],
            "{t:?}: rows committed before the disk filled changed"
        );
        let seqs: Vec<u64> = after.iter().map(|r| r.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] + 1 == w[1]),
            "{t:?}: sequence numbers continue without a hole or reuse"
        );
    }

    // Every message delivered during the full period is stored or covered by a recorded gap.
    let gaps: Vec<Gap> = all_rows(&store, Table::Gaps)?
        .into_iter()
        .filter_map(|r| match r.record {
            Record::Gap(g) => Some(g),
            _ => None,
        })
        .collect();
    let dropped_gaps: Vec<&Gap> = gaps.iter().filter(|g| g.reason == "dropped").collect();
    let stored: HashSet<_> = [Table::Trades, Table::Deltas, Table::Tickers]
        .into_iter()
        .map(|t| all_rows(&store, t))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .map(|r| r.record.identity())
        .collect();
    sim.flush_truth().await;
    // The gap window is in receive time; a message is received a little after it is made.
    let slack_us = 500_000;
    let (mut during, mut stored_n, mut gapped, mut lost) = (0_u64, 0_u64, 0_u64, Vec::new());
    for line in read_truth(&truth)? {
        let TruthLine::Published {
            record,
            delivered: true,
        } = line?
        else {
            continue;
        };
        let Some((ticker, chan)) = channel_of(&record) else {
            continue;
        };
        let ts = record.exchange_ts();
        if ts < full_at || ts > end {
            continue;
        }
        during += 1;
        if stored.contains(&record.identity()) {
            stored_n += 1;
        } else if gaps.iter().any(|g| {
            g.ticker.as_deref().is_none_or(|t| t == ticker)
                && (g.channel == chan || g.channel == "all")
                && g.start.micros() - slack_us <= ts.micros()
                && ts.micros() <= g.end.micros() + slack_us
        }) {
            gapped += 1;
        } else if lost.len() < 5 {
            lost.push(format!("{record:?}"));
        }
    }
    println!(
        "FIGURES disk-full: filler {filled} B; disk_full commit errors {}; gaps recorded {} \
         (dropped: {}); messages since the disk filled {during}: stored {stored_n}, covered by a \
         gap {gapped}, lost {}; recovered {recover_time:?} after the disk grew",
        full_errors_mid - full_errors_before,
        gaps.len(),
        dropped_gaps.len(),
        during - stored_n - gapped,
    );
    assert!(during > 0, "nothing was published while the disk was full");
    assert!(!dropped_gaps.is_empty(), "drops were not recorded as gaps");
    assert!(lost.is_empty(), "lost without a gap: {lost:#?}");
    sim.shutdown().await?;
    drop(tmpfs);
    Ok(())
}

/// Stopping while the disk is full does not wait for space: the kept batch is retried for a
/// bounded grace, then given up (`writer_dropped_total`, logged). After the disk grows, the
/// restarted gatherer records a `downtime` gap from its last stored row, which covers what was
/// given up, and stores again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_a_full_disk_ends_and_the_restart_records_the_loss_as_downtime() -> TestResult {
    let _serial = SERIAL.write().await;
    let _ = kd_core::telemetry::metrics_handle();
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt)?;
    let tmpfs = Tmpfs::mount(&mnt, "4m")?;
    let store = mnt.join("store");
    let sim = small_sim(30, 800, None).await?;
    let mut config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());
    config.snapshot_poll_interval_mins = 0;
    let gatherer = kd_gatherer::start(config.clone(), CancellationToken::new()).await?;
    let addr = gatherer.addr();
    let heads = gatherer.heads();
    let started = wait_until(Duration::from_secs(60), || {
        heads.borrow().get(Table::Deltas) > 300
    })
    .await;
    assert!(started, "the gatherer stored too little");
    let dropped_before = metric(&scrape(addr).await?, "writer_dropped_total");
    fill(&mnt.join("filler"))?;
    let loud = until(Duration::from_secs(30), POLL, || async {
        health(addr)
            .await
            .is_ok_and(|h| h["status"] == "store_failing")
    })
    .await;
    assert!(loud, "/health never reported store_failing");
    let last_stored = all_rows(&store, Table::Deltas)?
        .last()
        .map(|r| r.record.received_at())
        .ok_or("no delta stored")?;
    let text_before_stop = scrape(addr).await?;

    let asked = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(60), gatherer.stop()).await;
    let took = asked.elapsed();
    assert!(
        stopped.is_ok(),
        "stopping on a full disk did not finish within 60 s"
    );
    // The recorder is process-wide and outlives the gatherer: read it directly.
    let text = kd_core::telemetry::render_metrics();
    let given_up = metric(&text, "writer_dropped_total") - dropped_before;
    println!(
        "stop on a full disk took {took:?}; rows given up {given_up} (store_write_failing was {})",
        metric(&text_before_stop, "store_write_failing")
    );
    assert!(
        given_up > 0.0,
        "nothing was pending: the test proves nothing"
    );

    tmpfs.resize("64m")?;
    let gatherer = kd_gatherer::start(config, CancellationToken::new()).await?;
    let heads = gatherer.heads();
    let head = heads.borrow().get(Table::Deltas);
    let resumed = wait_until(Duration::from_secs(60), || {
        heads.borrow().get(Table::Deltas) > head + 100
    })
    .await;
    assert!(resumed, "the restarted gatherer stored nothing");
    gatherer.stop().await?;
    let downtime: Vec<Gap> = all_rows(&store, Table::Gaps)?
        .into_iter()
        .filter_map(|r| match r.record {
            Record::Gap(g) if g.reason == "downtime" => Some(g),
            _ => None,
        })
        .collect();
    println!("downtime gaps after the restart: {downtime:?}");
    assert!(
        downtime.iter().any(|g| g.ticker.is_none()
            && g.channel == "all"
            && g.start.micros() <= last_stored.micros() + 1_000_000),
        "no downtime gap from the last stored row ({last_stored:?})"
    );
    sim.shutdown().await?;
    drop(tmpfs);
    Ok(())
}
