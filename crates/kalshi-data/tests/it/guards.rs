//! Issue 17's guards against a second process and a hung one, against the real binary:
//! - every data directory is locked: a second `up` on `up`'s data directory, a second gatherer
//!   on a running gatherer's store and a second simulator on the simulator's state directory
//!   each refuse to start, naming the directory and the holder;
//! - a gatherer that hangs (SIGSTOP: running, silent) is killed by `up`'s liveness check and
//!   replaced, and data flows again within 30 s;
//! - the deduplicator's log, over a PostgreSQL production, holds no `stage_*` NOTICE.

use kd_testkit::pg::TestDb;
use kd_testkit::up::{Up, UpOpts};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");

/// Runs `args` to its end (it must refuse quickly) and returns (success, stdout + stderr).
fn refused(args: &[&std::ffi::OsStr]) -> kd_testkit::Result<(bool, String)> {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("KALSHI_DATA_UP_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn a_second_process_on_a_data_directory_is_refused_naming_it() -> kd_testkit::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let mut up = Up::start(BIN.as_ref(), &dir, &UpOpts::default())?;
    up.wait_ready(Duration::from_secs(90))?;

    let (ok, text) = refused(&[
        "up".as_ref(),
        "--plain".as_ref(),
        "--duration".as_ref(),
        "5".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
    ])?;
    assert!(!ok, "a second up started: {text}");
    let named = format!("data directory {} is in use", dir.display());
    assert!(
        text.contains(&named) && text.contains("kalshi-data up, pid"),
        "{text}"
    );

    let config = dir.join("config").join("gatherer-a.toml");
    let (ok, text) = refused(&["gatherer".as_ref(), "--config".as_ref(), config.as_os_str()])?;
    assert!(!ok, "a second gatherer-a started: {text}");
    let named = format!(
        "data directory {} is in use",
        dir.join("gatherer-a").display()
    );
    assert!(
        text.contains(&named) && text.contains("gatherer gatherer-a, pid"),
        "{text}"
    );

    let state = dir.join("sim");
    let (ok, text) = refused(&[
        "sim".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ])?;
    assert!(!ok, "a second simulator started: {text}");
    let named = format!("data directory {} is in use", state.display());
    assert!(text.contains(&named) && text.contains("sim, pid"), "{text}");

    up.wait_exit(Duration::from_secs(240))?;
    eprintln!(
        "FIGURES guards-lock: second up, gatherer and sim refused, each naming its directory"
    );
    Ok(())
}

#[test]
fn a_hung_gatherer_is_replaced_and_the_dedup_log_has_no_staging_notice() -> kd_testkit::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let db = rt.block_on(TestDb::create("guards_hung"))?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let opts = UpOpts {
        duration: 70,
        production: Some(db.url.clone()),
        ..UpOpts::default()
    };
    let mut up = Up::start(BIN.as_ref(), &dir, &opts)?;
    up.wait_ready(Duration::from_secs(90))?;
    // A gatherer that has been collecting a while, not one stopped in the first milliseconds
    // after it began to serve (seen: 50 ms), before `up`'s liveness check ever saw it answer —
    // a process is judged hung only after a first answer (crates/ops/src/up/liveness.rs).
    let first = up
        .deltas_head("gatherer-b")
        .ok_or_else(|| kd_testkit::Error::Failed("gatherer-b: no deltas head".into()))?;
    up.wait_deltas_above("gatherer-b", first + 200, Duration::from_secs(30))?;
    let head = up
        .deltas_head("gatherer-b")
        .ok_or_else(|| kd_testkit::Error::Failed("gatherer-b: no deltas head".into()))?;
    let t0 = Instant::now();
    // Running but silent: only the liveness check can tell (the process never exits).
    let old = up.signal("gatherer-b", "STOP")?;
    let new = up
        .wait_restarted("gatherer-b", old, Duration::from_secs(30))
        .map_err(|e| kd_testkit::Error::Failed(format!("{e}\nup's log:\n{}", up.log_text())))?;
    let replaced = t0.elapsed();
    up.wait_deltas_above("gatherer-b", head, Duration::from_secs(30))?;
    let flowing = t0.elapsed();
    eprintln!(
        "FIGURES guards-hung: SIGSTOP pid {old} → replaced by pid {new} after {:.1}s, storing \
         data after {:.1}s",
        replaced.as_secs_f64(),
        flowing.as_secs_f64()
    );
    assert!(
        flowing < Duration::from_secs(30),
        "data flowed again only after {flowing:?}"
    );
    let up_log = up.log_text();
    assert!(
        up_log.contains("gatherer-b") && up_log.contains("hung"),
        "{up_log}"
    );
    up.wait_exit(Duration::from_secs(300))?;

    let dedup_log = std::fs::read_to_string(dir.join("logs").join("dedup.log"))?;
    assert!(!dedup_log.is_empty(), "no deduplicator log");
    let notices: Vec<&str> = dedup_log
        .lines()
        .filter(|l| l.contains("already exists, skipping"))
        .collect();
    assert!(
        notices.is_empty(),
        "{} staging NOTICE lines in the deduplicator log, e.g. {}",
        notices.len(),
        notices[0]
    );
    Ok(())
}
