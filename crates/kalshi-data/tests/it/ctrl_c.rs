//! Ctrl-C ends a run the way `--duration` does (issue 19): a SIGINT to a running `up` stops the
//! exchange's feed, drains gatherers → deduplicator → exporter, then stops every process, so
//! `verify` right after prints `verify: OK` (before, every process stopped at once and rows
//! committed in a gatherer but not yet pulled were missing until the next `up`).

use crate::reliability_support::*;
use std::time::Duration;

#[test]
fn ctrl_c_drains_then_verify_is_ok() -> Res<()> {
    let tmp = tempfile::Builder::new().prefix("kd-ctrl-c-").tempdir()?;
    // A duration far beyond the test: only the SIGINT ends this run.
    let o = UpOpts {
        duration: 3_600,
        rate: 600,
        ..UpOpts::default()
    };
    let mut up = start_up(&tmp.path().join("data"), &o)?;
    up.wait_ready(Duration::from_secs(90))?;
    for g in GATHERERS {
        up.wait_subscribed(g, Duration::from_secs(90))?;
    }
    // Data flowing into every gatherer, the deduplicator behind by whatever it is behind.
    let heads: Vec<u64> = GATHERERS
        .iter()
        .map(|g| up.deltas_head(g).unwrap_or(0))
        .collect();
    for (g, h) in GATHERERS.iter().zip(&heads) {
        up.wait_deltas_above(g, *h + 500, Duration::from_secs(120))?;
    }
    up.signal_up("INT")?;
    // `wait_exit` also requires the drain's "up: drained" line.
    up.wait_exit(Duration::from_secs(360))?;
    let log = up.log_text();
    assert!(log.contains("Ctrl-C"), "the drain names its cause:\n{log}");
    let v = verify(&up.dir, &up.production)?;
    eprintln!("ctrl-c: {}", v.last);
    v.assert_ok()
}
