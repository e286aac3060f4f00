//! `kill -9` loses at most the unflushed window, and a restart continues without reusing a
//! local sequence number.
//!
//! The gatherer runs as a real child process: this test binary re-executes itself with
//! `KD_GATHERER_CHILD` set, which makes `child_gatherer` run a gatherer until it is killed.

use crate::common;

use common::{TestResult, all_rows, gatherer_config, wait_until};
use kd_core::records::Identity;
use kd_core::{Record, Table, TimestampUs};
use kd_gatherer::config::GathererConfig;
use kd_gatherer::store::WriteConn;
use kd_sim::{SimConfig, TruthLine, read_truth};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "KD_GATHERER_CHILD";

/// What the documented bound allows: rows received within the flush interval before the kill
/// (10 ms by default) plus scheduling slack on a loaded test machine.
const LOSS_WINDOW: Duration = Duration::from_millis(500);

/// Runs a gatherer from the configuration in the environment (only in the child process).
#[test]
fn child_gatherer() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(json) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let config: GathererConfig = serde_json::from_str(&json)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = kd_core::shutdown::on_signal();
        kd_gatherer::run(config, shutdown).await
    })?;
    Ok(())
}

fn spawn_child(config: &GathererConfig) -> Result<Child, Box<dyn std::error::Error + Send + Sync>> {
    let exe = std::env::current_exe()?;
    Ok(Command::new(exe)
        .args([
            "--exact",
            "kill9::child_gatherer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, serde_json::to_string(config)?)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?)
}

fn heads_of(
    dir: &Path,
) -> Result<kd_gatherer::store::Heads, Box<dyn std::error::Error + Send + Sync>> {
    // Opening for writing runs WAL recovery after the crash, as the restarted gatherer will.
    Ok(WriteConn::open(dir)?.heads())
}

fn committed_rows(dir: &Path) -> u64 {
    kd_gatherer::store::ReadPool::new(dir)
        .and_then(|p| p.pull(Table::Deltas, 0, 50_000))
        .map_or(0, |r| r.len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_the_unflushed_window_and_restart_resumes() -> TestResult {
    // Runs a gatherer: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    let dir = tempfile::tempdir()?;
    let truth_path = dir.path().join("truth.jsonl");
    let sim = kd_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            markets: 100,
            rate: 2_000,
            hot_markets: 100,
            truth: Some(truth_path.clone()),
            ..SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    let store = dir.path().join("store");
    let config = gatherer_config(&store, &sim.rest_base(), &sim.ws_url());

    let mut child = spawn_child(&config)?;
    let started = wait_until(Duration::from_secs(60), || committed_rows(&store) > 2_000).await;
    assert!(started, "the child gatherer stored nothing");
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.kill()?; // SIGKILL
    let killed_at = TimestampUs::now();
    child.wait()?;

    let after_kill = heads_of(&store)?;
    // Everything the exchange delivered more than the loss window before the kill is stored.
    sim.flush_truth().await;
    let stored: HashSet<Identity> = [Table::Trades, Table::Deltas, Table::Tickers]
        .into_iter()
        .map(|t| all_rows(&store, t))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .map(|r| r.record.identity())
        .collect();
    let bound = TimestampUs::from_micros(killed_at.micros() - LOSS_WINDOW.as_micros() as i64);
    let (mut checked, mut lost_inside, mut lost_outside) = (0, 0, Vec::new());
    for line in read_truth(&truth_path)? {
        if let TruthLine::Published {
            record,
            delivered: true,
        } = line?
        {
            if !matches!(
                record,
                Record::Trade(_) | Record::Delta(_) | Record::Ticker(_)
            ) {
                continue;
            }
            let present = stored.contains(&record.identity());
            if record.exchange_ts() < bound {
                checked += 1;
                if !present && lost_outside.len() < 5 {
                    lost_outside.push(format!("{record:?}"));
                }
            } else if !present && record.exchange_ts() <= killed_at {
                lost_inside += 1;
            }
        }
    }
    println!(
        "checked {checked} records before the window; {lost_inside} missing inside the last {LOSS_WINDOW:?} before the kill"
    );
    assert!(checked > 1_000, "too little to check: {checked}");
    assert!(
        lost_outside.is_empty(),
        "lost outside the window: {lost_outside:#?}"
    );

    // Restart: new rows continue after the old head; no sequence number is reused.
    let mut child = spawn_child(&config)?;
    let resumed = wait_until(Duration::from_secs(60), || {
        all_rows(&store, Table::Deltas).is_ok_and(|r| {
            r.last()
                .is_some_and(|l| l.seq > after_kill.get(Table::Deltas) + 100)
        })
    })
    .await;
    assert!(resumed, "the restarted gatherer stored nothing new");
    // Clean stop with SIGTERM: exits 0 after committing everything.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    assert!(status.success(), "gatherer exited with {status}");
    let rows = all_rows(&store, Table::Deltas)?;
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers strictly increase"
    );
    assert_eq!(
        seqs.len() as u64,
        *seqs.last().unwrap_or(&0),
        "no sequence number skipped or reused"
    );
    sim.shutdown().await?;
    Ok(())
}
