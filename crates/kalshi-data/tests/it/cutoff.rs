//! The historical cutoff passing through a downtime of every gatherer (issue 16, item 7): the
//! simulator's `/historical/cutoff` trails now by 5 s, every gatherer is frozen for 12 s and
//! then killed and restarted by `up`, so by the time the downtime repair reads the outage's
//! trades most of them are served only by `/historical/trades`. Every trade must still be in
//! production (`verify: OK`, trades exact, none excused).
//!
//! Run: `cargo test -p kalshi-data --test it cutoff:: -- --nocapture`.

use crate::reliability_support::*;
use std::time::Duration;

const READY: Duration = Duration::from_secs(90);
const EXIT: Duration = Duration::from_secs(360);
/// The cutoff's lag behind now, shorter than the outage.
const LAG_S: u64 = 5;
/// The outage of every gatherer: a fixed window by design.
const DOWN: Duration = Duration::from_secs(12);

#[test]
fn cutoff_passing_through_a_downtime_of_every_gatherer_loses_no_trade() -> Res<()> {
    let tmp = tempfile::Builder::new().prefix("kd-cutoff-").tempdir()?;
    let mut up = start_up(
        &tmp.path().join("data"),
        &UpOpts {
            duration: 50,
            sim_args: vec!["--historical-cutoff-lag-s".into(), LAG_S.to_string()],
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    for g in GATHERERS {
        up.wait_subscribed(g, READY)?;
    }
    let lag = LagMonitor::start(&up.dir);
    let outage = freeze_then_kill_all(&up, DOWN)?;
    let t_stop = outage.stopped_us;
    for (g, h) in GATHERERS.iter().zip(&outage.heads) {
        up.wait_deltas_above(g, *h, Duration::from_secs(60))?;
    }
    let storing = outage.killed.elapsed();
    up.wait_exit(EXIT)?;
    let max_lag = lag.finish();
    let v = verify(&up.dir, &up.production)?;
    let fig = Figures::collect(
        "cutoff-through-downtime",
        &up,
        &v,
        max_lag,
        vec![("all_storing".into(), storing)],
    )?;
    println!("{fig}");
    // The outage's trades: published while every gatherer was frozen, older than the cutoff
    // once the gatherers were back.
    let outage_trades = truth(&up.dir)?
        .iter()
        .filter(|(r, _)| r.table() == kd_core::Table::Trades)
        .filter(|(r, _)| {
            let ts = r.exchange_ts().micros();
            ts > t_stop && ts < t_stop + DOWN.as_micros() as i64 - (LAG_S as i64 * 1_000_000)
        })
        .count();
    let trades = v.cats.get("trades").copied().unwrap_or_default();
    println!(
        "cutoff-through-downtime: trades ok {} of {} (missing {}, excused {}); {outage_trades} \
         trades of the outage older than the cutoff at restart",
        trades.ok, trades.expected, trades.missing, trades.excused
    );
    assert!(outage_trades > 0, "the outage made no trades");
    assert!(
        trades.expected > 0 && trades.ok == trades.expected && trades.missing == 0,
        "{}",
        v.text
    );
    assert_eq!(
        trades.excused, 0,
        "trades are repaired, never excused:\n{}",
        v.text
    );
    v.assert_ok()
}
