//! Reliability row "a gatherer's disk full": gatherer-a's data directory is a small tmpfs.
//! Mid-run it is filled completely (a filler file), held full, then grown. gatherer-a must say
//! so loudly (`/health` `store_failing` naming "disk full", `/ready` 503,
//! `store_write_errors_total{kind="disk_full"}`), keep serving what it stored, and resume by
//! itself when the filesystem grows; the run drains and `verify` ends OK (gatherers b and c hold
//! everything, a's drops are recorded gaps), with nothing duplicated.
//!
//! Needs root (or CAP_SYS_ADMIN) for `mount -t tmpfs`; without it the test fails and says so.
//! Run: `cargo test -p kalshi-data --test it reliability_disk:: -- --nocapture`.

use crate::reliability_support::*;
use kd_testkit::tmpfs::{Tmpfs, fill};
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(90);
const EXIT: Duration = Duration::from_secs(360);
/// How long gatherer-a's disk stays full once it has said so.
const HELD_FULL: Duration = Duration::from_secs(10);

#[test]
fn gatherer_disk_full_fails_loudly_and_recovers_when_space_returns() -> Res<()> {
    let tmp = tempfile::Builder::new()
        .prefix("kd-reliability-disk-")
        .tempdir()?;
    let data = tmp.path().join("data");
    // Declared before `up`, so it is unmounted after the tree has stopped.
    let disk = Tmpfs::mount(&data.join("gatherer-a"), "16m")?;
    let mut up = start_up(
        &data,
        &UpOpts {
            duration: 75,
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    let lag = LagMonitor::start(&up.dir);
    let filled = fill(&data.join("gatherer-a").join("filler"))?;
    let t_full = Instant::now();
    let h = wait_for(Duration::from_secs(30), "gatherer-a store_failing", || {
        up.health("gatherer-a")
            .filter(|h| h["status"] == "store_failing")
    })?;
    let said_full = t_full.elapsed();
    let reason = h["store"]["error"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "gatherer-a: filled with {filled} B; /health store_failing after {:.1}s: {reason}",
        said_full.as_secs_f64()
    );
    assert!(reason.starts_with("disk full"), "{reason}");
    let ready = up
        .url("gatherer-a", "/ready")
        .and_then(|u| http::get(&u, None))
        .map(|(s, _)| s);
    assert_eq!(
        ready,
        Some(503),
        "/ready of gatherer-a while its disk is full"
    );
    let errors = up
        .metrics("gatherer-a")
        .and_then(|m| prom::sum(&m, "store_write_errors_total"))
        .unwrap_or(0.0);
    assert!(errors > 0.0, "store_write_errors_total stayed 0");
    let head_full = up
        .deltas_head("gatherer-a")
        .ok_or("no head of gatherer-a")?;
    // The outage itself: a fixed window by design.
    std::thread::sleep(HELD_FULL);
    let h = up
        .health("gatherer-a")
        .ok_or("gatherer-a stopped answering")?;
    assert_eq!(h["status"], "store_failing", "still full, still loud");
    assert_eq!(
        up.deltas_head("gatherer-a"),
        Some(head_full),
        "nothing committed on a full disk"
    );

    disk.resize("256m")?;
    let t_grown = Instant::now();
    wait_for(Duration::from_secs(60), "gatherer-a writable again", || {
        up.health("gatherer-a")
            .filter(|h| h["status"] != "store_failing" && h["store"]["error"].is_null())
    })?;
    up.wait_deltas_above("gatherer-a", head_full, Duration::from_secs(60))?;
    let resumed = t_grown.elapsed();
    eprintln!(
        "gatherer-a: storing again {:.1}s after the disk grew",
        resumed.as_secs_f64()
    );

    up.wait_exit(EXIT)?;
    let max_lag = lag.finish();
    let v = verify(&up.dir, &up.production)?;
    let fig = Figures::collect(
        "disk-full",
        &up,
        &v,
        max_lag,
        vec![
            ("said_full".into(), said_full),
            ("a_storing_after_grow".into(), resumed),
        ],
    )?;
    println!("{fig}");
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0, "{}", v.text);
    drop(up);
    drop(disk);
    Ok(())
}
