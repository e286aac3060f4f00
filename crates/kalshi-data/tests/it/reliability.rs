//! Reliability suite: the failure tables of the seed (`reliability.md`), each row made to
//! happen against the real binary — `kalshi-data up` (simulator, 3 gatherers, deduplicator,
//! exporter as supervised OS processes) at small scale — and every scenario ending in
//! `verify` against the simulator's ground truth. Each prints one line starting `FIGURES`:
//! messages published, captured per gatherer, rows in production, missing, duplicated, worst
//! deduplicator sync lag, and time to recover. docs/reliability.md collects the figures.
//!
//! How outages are made:
//! - process crash: `kill -9`; `up` restarts the child (1 s backoff, as systemd would).
//! - a gatherer *down* for a while (instance gone, AZ outage): `SIGSTOP` — it reads nothing,
//!   stores nothing and answers nothing, like a host that vanished — then `kill -9` at the end
//!   of the window, after which `up` starts its replacement on the same store.
//!
//! Run: `cargo test -p kalshi-data --test it reliability:: -- --nocapture` (PostgreSQL at
//! 127.0.0.1:5432 for the secrets scenario; the production-outage scenarios start their own
//! private server from the PostgreSQL binaries).

use crate::reliability_support::*;
use kd_core::records::Identity;
use kd_testkit::pg::PrivatePg;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(90);
const EXIT: Duration = Duration::from_secs(360);
/// The target of issue 9: a crashed gatherer stores data again within 10 s.
const GATHERER_RTO: Duration = Duration::from_secs(10);

fn data_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    tmp.path().join("data")
}

/// A scratch directory, kept (and named on stderr) when `KD_RELIABILITY_KEEP` is set.
fn scratch() -> Res<tempfile::TempDir> {
    let mut tmp = tempfile::Builder::new()
        .prefix("kd-reliability-")
        .tempdir()?;
    if std::env::var_os("KD_RELIABILITY_KEEP").is_some() {
        tmp.disable_cleanup(true);
        eprintln!("keeping {}", tmp.path().display());
    }
    Ok(tmp)
}

/// Kills `name` with SIGKILL and measures, from the kill, until `up` has restarted it and
/// until the new process has committed new WebSocket data.
fn crash_and_measure(up: &Up, name: &str) -> Res<(Duration, Duration)> {
    let head = up
        .deltas_head(name)
        .ok_or("no deltas head before the kill")?;
    let t0 = Instant::now();
    let old = up.signal(name, "KILL")?;
    let new = up.wait_restarted(name, old, Duration::from_secs(30))?;
    let restarted = t0.elapsed();
    up.wait_deltas_above(name, head, Duration::from_secs(60))?;
    let flowing = t0.elapsed();
    eprintln!(
        "{name}: kill -9 pid {old} → new pid {new} after {:.1}s, storing data after {:.1}s",
        restarted.as_secs_f64(),
        flowing.as_secs_f64()
    );
    Ok((restarted, flowing))
}

/// Seed: gatherer process crash → "auto-restart", impact none (2 copies remain); RTO 5 min.
#[test]
fn gatherer_kill9_restarts_and_stores_again_within_10s() -> Res<()> {
    let tmp = scratch()?;
    let mut up = start_up(&data_dir(&tmp), &UpOpts::default())?;
    up.wait_ready(READY)?;
    let lag = LagMonitor::start(&up.dir);
    let (b_restart, b_flow) = crash_and_measure(&up, "gatherer-b")?;
    let (a_restart, a_flow) = crash_and_measure(&up, "gatherer-a")?;
    let (v, fig) = end_run(
        &mut up,
        lag,
        "gatherer-kill9",
        vec![
            ("b_restarted".into(), b_restart),
            ("b_storing".into(), b_flow),
            ("a_restarted".into(), a_restart),
            ("a_storing".into(), a_flow),
        ],
    )?;
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0, "{}", v.text);
    for (what, d) in [("b", b_flow), ("a", a_flow)] {
        assert!(
            d < GATHERER_RTO,
            "gatherer-{what} stored data again only after {d:?} (target {GATHERER_RTO:?})"
        );
    }
    let restarts = |n: &str| up.process(n).and_then(|p| p["restarts"].as_u64());
    assert_eq!(restarts("gatherer-a"), Some(1));
    assert_eq!(restarts("gatherer-b"), Some(1));
    Ok(())
}

/// Holds `names` frozen (SIGSTOP) for `down`, then kills them; returns when every one of them
/// stores data again and has every market subscribed, with the times from the kill.
fn outage(up: &Up, names: &[&str], down: Duration) -> Res<(Duration, Duration)> {
    let heads: Vec<u64> = names
        .iter()
        .map(|n| up.deltas_head(n).ok_or(format!("{n}: no head")))
        .collect::<Result<_, _>>()?;
    let pids: Vec<u32> = names
        .iter()
        .map(|n| up.signal(n, "STOP"))
        .collect::<kd_testkit::Result<_>>()?;
    // The outage itself: a fixed window by design, not a wait for a condition.
    std::thread::sleep(down);
    for pid in &pids {
        signal(*pid, "KILL")?;
    }
    let t_kill = Instant::now();
    for ((n, pid), head) in names.iter().zip(&pids).zip(&heads) {
        up.wait_restarted(n, *pid, Duration::from_secs(30))?;
        up.wait_deltas_above(n, *head, Duration::from_secs(60))?;
    }
    let storing = t_kill.elapsed();
    for n in names {
        up.wait_subscribed(n, Duration::from_secs(60))?;
    }
    Ok((storing, t_kill.elapsed()))
}

/// Seed: 1 gatherer down / 2 gatherers down → impact none (1 copy remains), data 100 %.
/// The second outage starts only once the first victim is back with every market
/// subscribed: one complete copy remains throughout, as the row says.
#[test]
fn one_then_two_gatherers_down_lose_nothing() -> Res<()> {
    let tmp = scratch()?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            duration: 50,
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    for g in GATHERERS {
        up.wait_subscribed(g, READY)?;
    }
    let lag = LagMonitor::start(&up.dir);
    let (one, one_sub) = outage(&up, &["gatherer-b"], Duration::from_secs(8))?;
    let (two, two_sub) = outage(&up, &["gatherer-a", "gatherer-c"], Duration::from_secs(10))?;
    let (v, fig) = end_run(
        &mut up,
        lag,
        "gatherers-down",
        vec![
            ("one_down_8s_storing".into(), one),
            ("one_down_subscribed".into(), one_sub),
            ("two_down_10s_storing".into(), two),
            ("two_down_subscribed".into(), two_sub),
        ],
    )?;
    v.assert_ok()?;
    assert_eq!(fig.excused, 0, "one copy remained all along:\n{}", v.text);
    assert_eq!(fig.duplicated, 0);
    Ok(())
}

/// What one all-gatherers-down run measured.
struct AllDown {
    v: Verified,
    absent: Vec<(kd_core::Table, i64)>,
    outside: Vec<(kd_core::Table, i64)>,
    surely_lost: u64,
    trades_absent: u64,
}

/// How many absent messages of each table, for a failure message.
fn absent_by_table(absent: &[(kd_core::Table, i64)]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for (table, _) in absent {
        *by.entry(format!("{table:?}")).or_default() += 1;
    }
    by
}

/// All three gatherers frozen for 8 s, then killed and restarted by `up`; `verify` at the end,
/// and an independent comparison of the truth with production.
fn all_down_run(name: &str) -> Res<AllDown> {
    let tmp = scratch()?;
    let mut up = start_up(&data_dir(&tmp), &UpOpts::default())?;
    up.wait_ready(READY)?;
    for g in GATHERERS {
        up.wait_subscribed(g, READY)?;
    }
    let lag = LagMonitor::start(&up.dir);
    let outage = freeze_then_kill_all(&up, Duration::from_secs(8))?;
    let (heads, t_stop, t_kill, killed) = (
        outage.heads,
        outage.stopped_us,
        outage.killed_us,
        outage.killed,
    );
    // The outage ends when the first replacement stores WebSocket data again.
    wait_for(Duration::from_secs(60), "a gatherer storing again", || {
        GATHERERS
            .iter()
            .zip(&heads)
            .any(|(g, h)| up.deltas_head(g).is_some_and(|n| n > *h))
            .then_some(())
    })?;
    let t_flow = now_us();
    let first = killed.elapsed();
    for (g, h) in GATHERERS.iter().zip(&heads) {
        up.wait_deltas_above(g, *h, Duration::from_secs(60))?;
    }
    let all = killed.elapsed();
    let (v, _) = end_run(
        &mut up,
        lag,
        name,
        vec![("first_storing".into(), first), ("all_storing".into(), all)],
    )?;

    // Independently of verify: which messages are absent from production?
    let present = production_identities(&up.production)?;
    let truth = truth(&up.dir)?;
    // verify's window starts at the first message delivered to anyone: trades before it were
    // published before any gatherer subscribed, and nobody is expected to hold them.
    // Measured in send times, as verify does: a lifecycle record's own time is its event's (a
    // market's open time, often long before the run), which made this window start early and
    // count warm-up messages nobody could have received as absent whenever such a record was
    // delivered (the CI failure of this test: 66 deltas and 10 tickers too many).
    let first_delivered = truth
        .iter()
        .filter(|(_, d)| *d)
        .map(|(r, _)| sent_at(r))
        .min()
        .unwrap_or(0);
    let mut run = AllDown {
        v,
        absent: Vec::new(),
        outside: Vec::new(),
        surely_lost: 0,
        trades_absent: 0,
    };
    let mut seen = HashSet::new();
    let (lo, hi) = (t_stop - 1_000_000, t_flow + 2_000_000);
    for (record, delivered) in truth {
        let id = record.identity();
        if !seen.insert(id.clone()) {
            continue;
        }
        // When the exchange sent it: a lifecycle record's own time is the event's (a `created`
        // carries the market's future open time); the truth keeps the send time in
        // `received_at`.
        let ts = sent_at(&record);
        let table = record.table();
        let is_trade = table == kd_core::Table::Trades;
        let stored = match &record {
            // Filed at a gatherer's receipt, not at the send instant: matched within the
            // tolerance of `kd_core::identity::lifecycle`.
            kd_core::Record::Lifecycle(l) => lifecycle_present(&present, l),
            _ => present.contains(&id),
        };
        if !stored {
            if is_trade && ts >= first_delivered {
                run.trades_absent += 1;
                eprintln!("trade absent: {record:?}");
            } else if !is_trade && (delivered || ts >= first_delivered + 2_000_000) {
                // Issue 16: a message sent while nobody was subscribed is expected too, once
                // the platform could have been (verify's 2 s allowance after its start).
                run.absent.push((table, ts));
                if ts < lo || ts > hi {
                    run.outside.push((table, ts));
                }
            }
        }
        // Published while every gatherer was frozen (a margin for in-flight frames).
        if delivered && !is_trade && ts > t_stop + 500_000 && ts < t_kill {
            run.surely_lost += 1;
        }
    }
    println!(
        "{name}: outage {:.1}s (freeze → first storing); absent delivered={} (in the frozen \
         core {}), absent outside [freeze-1s, storing+2s]={} {:?}, trades absent={}",
        (t_flow - t_stop) as f64 / 1e6,
        run.absent.len(),
        run.surely_lost,
        run.outside.len(),
        &run.outside[..run.outside.len().min(5)],
        run.trades_absent
    );
    Ok(run)
}

/// A stored lifecycle row of `l`'s change: same subject, event type and payload, filed within
/// the lifecycle tolerance of its send instant.
fn lifecycle_present(present: &HashSet<Identity>, l: &kd_core::records::Lifecycle) -> bool {
    let tolerance = kd_core::identity::lifecycle::LIFECYCLE_MATCH_US.unsigned_abs();
    present.iter().any(|id| {
        matches!(id, Identity::Lifecycle { subject, event_type, exchange_ts, payload_hash }
            if *subject == l.subject && *event_type == l.event_type
                && *payload_hash == l.payload_hash()
                && exchange_ts.abs_diff(l.received_at.micros()) <= tolerance)
    })
}

/// Seed: all gatherers down → RPO "duration of outage". Every trade must still be present
/// (downtime repair over REST); the order-book changes and tickers that are absent must all
/// lie in the outage window, and every one published while all three were frozen is absent.
#[test]
fn all_gatherers_down_trades_repaired_only_the_outage_window_missing() -> Res<()> {
    let run = all_down_run("all-gatherers-down")?;
    let v = &run.v;
    assert_eq!(
        run.trades_absent, 0,
        "every trade must be repaired over REST"
    );
    let trades = v.cats.get("trades").copied().unwrap_or_default();
    assert!(
        trades.expected > 0 && trades.ok == trades.expected,
        "{}",
        v.text
    );
    assert_eq!(trades.excused, 0, "{}", v.text);
    let deltas_tickers_outside: Vec<_> = run
        .outside
        .iter()
        .filter(|(t, _)| matches!(t, kd_core::Table::Deltas | kd_core::Table::Tickers))
        .collect();
    assert!(
        deltas_tickers_outside.is_empty(),
        "deltas/tickers absent outside the outage window: {deltas_tickers_outside:?}"
    );
    assert!(
        run.surely_lost > 0 && run.absent.len() as u64 >= run.surely_lost,
        "the frozen window published {} messages but only {} are absent",
        run.surely_lost,
        run.absent.len()
    );
    assert_eq!(
        v.sum(|c| c.duplicated) + v.sum(|c| c.extra),
        0,
        "{}",
        v.text
    );
    Ok(())
}

/// The strict form of the row: `verify: OK`, every absent message excused by a gap record
/// of every gatherer, every book check point equal or set apart because a change nobody could
/// store lies between it and its snapshot (the deltas made before the restarted gatherers had
/// subscribed again reached no one).
#[test]
fn all_gatherers_down_verify_ok() -> Res<()> {
    let run = all_down_run("all-gatherers-down-strict")?;
    assert!(
        run.outside.is_empty(),
        "absent outside the outage: {:?}",
        run.outside
    );
    assert_eq!(
        run.v.sum(|c| c.excused),
        run.absent.len() as u64,
        "verify must excuse exactly the absent messages (absent by table: {:?}):\n{}",
        absent_by_table(&run.absent),
        run.v.text
    );
    run.v.assert_ok()
}

/// Seed: deduplicator process crash → sync delay, auto-restart, resume from the cursor; RTO
/// 10 min, RPO 0. Killed twice: once while current, once right after its first commit of the
/// catch-up (mid-batch).
#[test]
fn dedup_kill9_mid_run_resumes_from_cursors() -> Res<()> {
    let tmp = scratch()?;
    let mut up = start_up(&data_dir(&tmp), &UpOpts::default())?;
    up.wait_ready(READY)?;
    let lag = LagMonitor::start(&up.dir);
    let mut recover = Vec::new();
    for round in 1..=2 {
        let t0 = Instant::now();
        let old = up.signal("dedup", "KILL")?;
        up.wait_restarted("dedup", old, Duration::from_secs(30))?;
        recover.push((format!("restarted{round}"), t0.elapsed()));
        // Committing again: the new process's transaction counter moves.
        wait_for(Duration::from_secs(60), "dedup committing again", || {
            up.metrics("dedup")
                .and_then(|m| prom::sum(&m, "dedup_transactions_total"))
                .filter(|n| *n > 0.0)
        })?;
        recover.push((format!("committing{round}"), t0.elapsed()));
        if round == 2 {
            // Caught up: every gatherer's lag back under a second.
            wait_for(Duration::from_secs(90), "dedup caught up", || {
                up.metrics("dedup")
                    .and_then(|m| prom::max(&m, "dedup_sync_lag_seconds"))
                    .filter(|l| *l < 1.0)
            })?;
            recover.push(("caught_up".into(), t0.elapsed()));
        }
    }
    let (v, fig) = end_run(&mut up, lag, "dedup-kill9", recover)?;
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0);
    assert_eq!(fig.excused, 0, "{}", v.text);
    Ok(())
}

/// Reads the deduplicator's committed-transaction counter (0 when it does not answer).
fn dedup_transactions(up: &Up) -> f64 {
    up.metrics("dedup")
        .and_then(|m| prom::sum(&m, "dedup_transactions_total"))
        .unwrap_or(0.0)
}

/// Waits until the deduplicator commits more transactions than `above`.
fn wait_committing(up: &Up, above: f64, limit: Duration) -> Res<()> {
    Ok(wait_for(limit, "dedup committing to production", || {
        (dedup_transactions(up) > above).then_some(())
    })?)
}

/// Seed: production instance failure → write failure; gatherers keep buffering, the
/// deduplicator retries with backoff. A private PostgreSQL is stopped for 10 s and restarted.
#[test]
fn production_postgres_stopped_and_restarted() -> Res<()> {
    let pg = PrivatePg::start(&[])?;
    let tmp = scratch()?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            production: Some(pg.url("postgres", "postgres")),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    wait_committing(&up, 0.0, Duration::from_secs(30))?;
    let lag = LagMonitor::start(&up.dir);
    pg.stop_server()?;
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    // While production is away nothing can commit; the gatherers must keep every row.
    let during = up.health("dedup").ok_or("dedup does not answer")?;
    pg.start_server()?;
    let t1 = Instant::now();
    let outage = stopped.elapsed();
    let before = dedup_transactions(&up);
    wait_committing(&up, before, Duration::from_secs(90))?;
    let (v, fig) = catch_up_and_verify(&mut up, lag, "production-restart", t1, ("outage", outage))?;
    assert_eq!(
        during["production"]["connected"], false,
        "dedup /health during the outage: {during}"
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0);
    Ok(())
}

/// Seed: production storage full → write failure, "increase storage". The private
/// PostgreSQL's data directory is on a 192 MiB tmpfs; mid-run a filler file takes every free
/// byte for 10 s, then is removed (the storage "grown"). The deduplicator must show the
/// server's refusal, commit nothing partial, retry, and catch up; nothing may be lost.
#[test]
fn production_storage_full_then_grown() -> Res<()> {
    let tmp = scratch()?;
    let disk_dir = tmp.path().join("pgdisk");
    let disk = tmpfs::Tmpfs::mount(&disk_dir, "192m")?;
    let pg = PrivatePg::start_in(&[], &disk_dir)?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            production: Some(pg.url("postgres", "postgres")),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    wait_committing(&up, 0.0, Duration::from_secs(30))?;
    let lag = LagMonitor::start(&up.dir);
    let filler = disk_dir.join("filler");
    let filled = tmpfs::fill(&filler)?;
    let full_at = Instant::now();
    let refusal = wait_for(
        Duration::from_secs(30),
        "dedup to report the full disk",
        || {
            up.health("dedup").and_then(|h| {
                h["production"]["last_error"]
                    .as_str()
                    .filter(|e| e.contains("53100") || e.contains("No space left"))
                    .map(String::from)
            })
        },
    )?;
    let noticed = full_at.elapsed();
    std::thread::sleep(Duration::from_secs(10).saturating_sub(full_at.elapsed()));
    std::fs::remove_file(&filler)?;
    let freed = Instant::now();
    let full_for = full_at.elapsed();
    // PostgreSQL stays up when a table cannot grow (the statement fails); a WAL write that
    // cannot grow is a PANIC that takes the server down, and the operator starts it again.
    let restarted = if pg.is_running() {
        false
    } else {
        pg.start_server()?;
        true
    };
    let before = dedup_transactions(&up);
    wait_committing(&up, before, Duration::from_secs(90))?;
    let (v, fig) = catch_up_and_verify(
        &mut up,
        lag,
        "production-storage-full",
        freed,
        ("full", full_for),
    )?;
    println!(
        "production-storage-full: filler {filled} bytes, refusal seen after {noticed:?}: \
         {refusal}; server restarted by the test: {restarted}"
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0, "{}", v.text);
    drop(pg);
    drop(disk);
    Ok(())
}

/// Seed: production connection exhaustion → partial writes, "connection pooling". A private
/// PostgreSQL with `max_connections = 20`: other clients take every slot, the platform's
/// sessions are ended and cannot come back for 12 s; then the slots are released.
#[test]
fn production_connection_exhaustion() -> Res<()> {
    let pg = PrivatePg::start(&["max_connections = 20", "superuser_reserved_connections = 3"])?;
    // The platform and the hogs are ordinary roles; the test keeps the reserved superuser
    // slots to end sessions and look.
    pg.psql("postgres", "postgres", "CREATE ROLE kd LOGIN")?;
    pg.psql("postgres", "postgres", "CREATE DATABASE kd OWNER kd")?;
    let tmp = scratch()?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            production: Some(pg.url("kd", "kd")),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    wait_committing(&up, 0.0, Duration::from_secs(30))?;
    let lag = LagMonitor::start(&up.dir);
    let platform_sessions = || -> Res<u64> {
        Ok(pg
            .psql(
                "postgres",
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'kd' \
                 AND application_name <> 'psql'",
            )?
            .parse()?)
    };
    let before = platform_sessions()?;
    let mut hogs: Vec<std::process::Child> = Vec::new();
    let mut refusal = String::new();
    // Takes every free ordinary slot; keeps the refusal PostgreSQL gave the first extra one.
    let mut fill = |hogs: &mut Vec<std::process::Child>| -> Res<()> {
        loop {
            let mut h = pg.hold_connection("kd", "kd")?;
            std::thread::sleep(Duration::from_millis(150));
            if h.try_wait()?.is_some() {
                if refusal.is_empty() {
                    let mut err = String::new();
                    if let Some(mut e) = h.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    refusal = err;
                }
                return Ok(());
            }
            hogs.push(h);
            if hogs.len() > 40 {
                return Err("max_connections did not bite".into());
            }
        }
    };
    let exhausted_at = Instant::now();
    fill(&mut hogs)?;
    // End the platform's sessions and take their slots before its reconnect backoff ends.
    for _ in 0..5 {
        pg.psql(
            "postgres",
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'kd' \
             AND application_name <> 'psql'",
        )?;
        fill(&mut hogs)?;
        if platform_sessions()? == 0 {
            break;
        }
    }
    // Hold the server full for 12 s. A session of the platform that slips into a slot freed
    // in between (its reconnect racing a hog) is ended again and its slot taken.
    let mut sneaked = 0;
    let mut dedup_saw_down = false;
    let tx_at_full = dedup_transactions(&up);
    let full = Instant::now();
    while full.elapsed() < Duration::from_secs(12) {
        let n = platform_sessions()?;
        if n > 0 {
            sneaked += n;
            pg.psql(
                "postgres",
                "postgres",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'kd' \
                 AND application_name <> 'psql'",
            )?;
            fill(&mut hogs)?;
        }
        if up
            .health("dedup")
            .is_some_and(|h| h["production"]["connected"] == false)
        {
            dedup_saw_down = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let tx_during = dedup_transactions(&up) - tx_at_full;
    let health = up.health("dedup").ok_or("dedup does not answer")?;
    let held = hogs.len();
    // A backend asleep in pg_sleep does not notice its client going away: end the sessions
    // on the server, then the clients.
    pg.psql(
        "postgres",
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'kd' \
         AND application_name = 'psql'",
    )?;
    for h in &mut hogs {
        let _ = h.kill();
        let _ = h.wait();
    }
    let released = Instant::now();
    let exhausted = exhausted_at.elapsed();
    let tx = dedup_transactions(&up);
    wait_committing(&up, tx, Duration::from_secs(90)).map_err(|e| {
        format!(
            "{e}\nafter the slots were released:\n{}\nserver log tail:\n{}",
            up.diagnose("dedup", 40),
            pg.server_log()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let (v, fig) = catch_up_and_verify(
        &mut up,
        lag,
        "connection-exhaustion",
        released,
        ("exhausted", exhausted),
    )?;
    println!(
        "connection-exhaustion: platform sessions before={before}, slipped back in and ended \
         again={sneaked}, \
         slots held by others={held}, dedup transactions while full={tx_during}, dedup saw \
         production down={dedup_saw_down}, dedup production at the end: {}; refusal: {}",
        health["production"],
        refusal.trim()
    );
    assert!(
        refusal.contains("too many clients") || refusal.contains("connection slots"),
        "the extra connection was refused for another reason: {refusal}"
    );
    assert!(
        dedup_saw_down,
        "the deduplicator never saw production unavailable: not exhausted"
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0);
    Ok(())
}

/// Inserts `password` into a `postgres://user@host/db` URL.
fn with_password(url: &str, password: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => format!(
                "{scheme}://{}:{password}@{host}",
                user.split(':').next().unwrap_or(user)
            ),
            None => format!("{scheme}://postgres:{password}@{rest}"),
        },
        None => url.to_string(),
    }
}

/// Seed / issue 9: secrets — the private key, the production password, the pull-API token —
/// never appear in logs, `status` or any `/health` and `/metrics`; the pull API refuses
/// requests without the token; a non-loopback listener without a token is refused at start.
/// Greps the complete output of a full run.
#[test]
fn secrets_never_in_logs_status_or_health() -> Res<()> {
    const PASSWORD: &str = "Pw-reliability-5eCr3t-91f4";
    const TOKEN: &str = "tok-reliability-7c1d9e0a2b";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let db = rt.block_on(kd_testkit::pg::TestDb::create("reliability_secrets"))?;
    // Trust authentication ignores the password, so the run works and the password travels
    // through every component that handles the URL.
    let production = with_password(&db.url, PASSWORD);
    let tmp = scratch()?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            duration: 30,
            production: Some(production.clone()),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    let mut seen: Vec<(String, String)> = Vec::new();
    for p in ["sim", "gatherer-a", "gatherer-b", "gatherer-c", "dedup"] {
        for path in ["/health", "/metrics", "/_sim/stats", "/ready"] {
            if let Some((_, body)) = up.url(p, path).and_then(|u| http::get(&u, None)) {
                seen.push((format!("{p}{path}"), body));
            }
        }
    }
    for args in [&["status"][..], &["status", "--json"][..]] {
        let out = std::process::Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&up.dir)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push((args.join(" "), text));
    }

    // A gatherer with a pull-API token, fed by the same exchange.
    let key = up.dir.join("keys").join("kalshi-data.pem");
    let sim = up.url("sim", "").ok_or("no sim url")?;
    let port = kd_testkit::ports::free_port()?;
    let glog = tmp.path().join("token-gatherer.log");
    let mut g = std::process::Command::new(BIN)
        .args(["gatherer", "--gatherer-id", "gatherer-t"])
        .args(["--rest-url", &format!("{sim}/trade-api/v2")])
        .args([
            "--ws-url",
            &format!("{}/trade-api/ws/v2", sim.replace("http://", "ws://")),
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("gatherer-t"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--key-id", "kalshi-data-local", "--private-key-path"])
        .arg(&key)
        .env("KALSHI_DATA_GATHERER_TOKEN", TOKEN)
        .stdout(std::fs::File::create(&glog)?)
        .stderr(std::fs::File::create(
            tmp.path().join("token-gatherer.err"),
        )?)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let health = wait_for(Duration::from_secs(30), "token gatherer /health", || {
        http::get(&format!("{base}/health"), None)
    })?;
    seen.push(("gatherer-t /health".into(), health.1));
    let no_token = http::get(&format!("{base}/v1/pull/trades?after=0&limit=1"), None);
    let wrong = http::get(
        &format!("{base}/v1/pull/trades?after=0&limit=1"),
        Some("nope"),
    );
    let right = http::get(
        &format!("{base}/v1/pull/trades?after=0&limit=1"),
        Some(TOKEN),
    );
    if let Some((_, m)) = http::get(&format!("{base}/metrics"), None) {
        seen.push(("gatherer-t /metrics".into(), m));
    }
    signal(g.id(), "TERM")?;
    let _ = g.wait();
    seen.push((
        "gatherer-t log".into(),
        std::fs::read_to_string(&glog).unwrap_or_default(),
    ));
    seen.push((
        "gatherer-t stderr".into(),
        std::fs::read_to_string(tmp.path().join("token-gatherer.err")).unwrap_or_default(),
    ));

    // Beyond loopback without a token: refused at start, naming the key.
    let refused = std::process::Command::new(BIN)
        .args([
            "gatherer",
            "--gatherer-id",
            "gatherer-u",
            "--listen",
            "0.0.0.0:0",
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("gatherer-u"))
        .output()?;
    let refused_text = String::from_utf8_lossy(&refused.stderr).into_owned();

    up.wait_exit(EXIT)?;
    let v = verify(&up.dir, &up.production)?;
    seen.push(("up output".into(), up.log_text()));
    seen.extend(up.child_log_files());
    let found = |needle: &str| -> Vec<&str> {
        seen.iter()
            .filter(|(_, text)| text.contains(needle))
            .map(|(src, _)| src.as_str())
            .collect()
    };
    let bytes: usize = seen.iter().map(|(_, t)| t.len()).sum();
    let fig = Figures::collect("secrets", &up, &v, f64::NAN, Vec::new())?;
    println!("{fig}");
    let _ = rt.block_on(db.drop_db());

    let pem = std::fs::read_to_string(&key)?;
    let key_lines: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(key_lines.len() > 5, "the key file looks empty: {pem}");
    let leaked_key: Vec<(&str, Vec<&str>)> = key_lines
        .iter()
        .map(|l| (*l, found(l)))
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let (password_in, token_in) = (found(PASSWORD), found(TOKEN));
    println!(
        "secrets: {} bytes of logs, status, /health and /metrics searched; key lines leaked {}, \
         password in {:?}, token in {:?}; pull without token {:?}, wrong token {:?}, right token {:?}",
        bytes,
        leaked_key.len(),
        password_in,
        token_in,
        no_token.as_ref().map(|r| r.0),
        wrong.as_ref().map(|r| r.0),
        right.as_ref().map(|r| r.0),
    );
    assert!(
        leaked_key.is_empty(),
        "private key text leaked: {leaked_key:?}"
    );
    // `up`'s own summary prints the production URL unredacted: a known bug with its own
    // (ignored) test below; every other place is held to the rule here.
    let password_elsewhere: Vec<&&str> =
        password_in.iter().filter(|s| **s != "up output").collect();
    assert!(
        password_elsewhere.is_empty(),
        "the production password leaked into {password_elsewhere:?}"
    );
    assert!(
        token_in.is_empty(),
        "the pull-API token leaked into {token_in:?}"
    );
    assert!(
        bytes > 10_000 && !found("gatherer-a").is_empty(),
        "nothing was collected to search"
    );
    assert_eq!(no_token.map(|r| r.0), Some(401));
    assert_eq!(wrong.map(|r| r.0), Some(401));
    assert_eq!(right.map(|r| r.0), Some(200));
    assert!(
        !refused.status.success() && refused_text.contains("token"),
        "a non-loopback listener without a token must be refused naming `token`: {refused_text}"
    );
    v.assert_ok()?;
    Ok(())
}

/// `up` prints where production is (summary, `verify`/`book` hints, the closing line): the
/// password of a `postgres://` URL must not be among it.
#[test]
fn up_output_never_shows_the_production_password() -> Res<()> {
    const PASSWORD: &str = "Pw-reliability-up-0b7e";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let db = rt.block_on(kd_testkit::pg::TestDb::create("reliability_up_pw"))?;
    let tmp = scratch()?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            duration: 6,
            markets: 10,
            rate: 100,
            production: Some(with_password(&db.url, PASSWORD)),
            ..UpOpts::default()
        },
    )?;
    let exit = up.wait_exit(EXIT);
    let out = up.log_text();
    let _ = rt.block_on(db.drop_db());
    exit?;
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(PASSWORD)).collect();
    assert!(
        lines.is_empty(),
        "up printed the password:\n{}",
        lines.join("\n")
    );
    Ok(())
}

/// Issue 9: malformed messages from the exchange. The gatherers reach the exchange through a
/// proxy that inserts a malformed text frame before every 50th message (not JSON, missing and
/// wrong-typed fields, an unknown type, a truncated object, a 200 kB frame); the platform runs
/// under `up --config` with the same processes as the local plan. Every real message must
/// still arrive, the malformed ones must be counted, and the connections kept.
#[test]
fn malformed_exchange_messages_lose_nothing() -> Res<()> {
    use crate::reliability_support::mangle::MangleProxy;
    let tmp = scratch()?;
    let dir = data_dir(&tmp);
    std::fs::create_dir_all(dir.join("config"))?;
    let port = || -> Res<u16> { Ok(kd_testkit::ports::free_port()?) };
    let sim_port = port()?;
    let proxy = MangleProxy::start(sim_port, 50)?;
    let production = format!("sqlite://{}", dir.join("production.db").display());
    let rest = format!("http://127.0.0.1:{sim_port}/trade-api/v2");
    let path = |p: &std::path::Path| p.display().to_string();
    // JSON string arrays are valid TOML arrays.
    let list = |v: Vec<String>| serde_json::to_string(&v);
    let mut plan = String::new();
    let sim_args = vec![
        "sim".into(),
        "--listen".into(),
        format!("127.0.0.1:{sim_port}"),
        "--no-auth".into(),
        "--markets".into(),
        "30".into(),
        "--rate".into(),
        "300".into(),
        "--truth".into(),
        path(&dir.join("truth.jsonl")),
        "--state-dir".into(),
        path(&dir.join("sim")),
    ];
    plan.push_str(&format!(
        "[[process]]\nname = \"sim\"\nkind = \"sim\"\nport = {sim_port}\nargs = {}\n\n",
        list(sim_args)?
    ));
    let mut dedup_args = vec![
        "dedup".to_string(),
        "--production".into(),
        production.clone(),
        "--rest-url".into(),
        rest.clone(),
    ];
    for g in GATHERERS {
        let gport = port()?;
        let config = dir.join("config").join(format!("{g}.toml"));
        std::fs::write(
            &config,
            format!(
                "gatherer_id = {}\nrest_url = {}\nws_url = {}\ndata_dir = {}\nlisten = {}\n",
                serde_json::to_string(g)?,
                serde_json::to_string(&rest)?,
                serde_json::to_string(&format!("ws://127.0.0.1:{}/trade-api/ws/v2", proxy.port))?,
                serde_json::to_string(&path(&dir.join(g)))?,
                serde_json::to_string(&format!("127.0.0.1:{gport}"))?,
            ),
        )?;
        plan.push_str(&format!(
            "[[process]]\nname = \"{g}\"\nkind = \"gatherer\"\nport = {gport}\nargs = {}\n\n",
            list(vec!["gatherer".into(), "--config".into(), path(&config)])?
        ));
        dedup_args.extend(["--gatherer".into(), format!("{g}=http://127.0.0.1:{gport}")]);
    }
    let dedup_port = port()?;
    dedup_args.extend(["--listen".into(), format!("127.0.0.1:{dedup_port}")]);
    plan.push_str(&format!(
        "[[process]]\nname = \"dedup\"\nkind = \"dedup\"\nport = {dedup_port}\nargs = {}\n",
        list(dedup_args)?
    ));
    let plan_path = tmp.path().join("plan.toml");
    std::fs::write(&plan_path, &plan)?;
    let mut up = start_up(
        &dir,
        &UpOpts {
            duration: 40,
            production: Some(production),
            config: Some(plan_path),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    let lag = LagMonitor::start(&up.dir);
    let sum_metric = |name: &str| -> f64 {
        GATHERERS
            .iter()
            .filter_map(|g| up.metrics(g).and_then(|m| prom::sum(&m, name)))
            .sum()
    };
    let reconnects_before = sum_metric("connection_reconnects_total");
    // Every kind of junk has reached the gatherers several times over.
    wait_for(Duration::from_secs(60), "malformed frames counted", || {
        let counted =
            sum_metric("router_parse_errors_total") + sum_metric("router_unknown_messages_total");
        (proxy.injected.load(std::sync::atomic::Ordering::Relaxed) >= 48 && counted >= 24.0)
            .then_some(counted)
    })?;
    // Read the counters again just before the end: the whole run's junk, not only the first.
    std::thread::sleep(
        (up.started + Duration::from_secs(36)).saturating_duration_since(Instant::now()),
    );
    let parse_errors = sum_metric("router_parse_errors_total");
    let unknown = sum_metric("router_unknown_messages_total");
    let reconnects = sum_metric("connection_reconnects_total") - reconnects_before;
    let (v, fig) = end_run(&mut up, lag, "malformed-messages", Vec::new())?;
    let injected = proxy.injected.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "malformed-messages: injected={injected} (all gatherers, whole run); counted by the \
         gatherers 4 s before the end: parse errors={parse_errors} unknown types={unknown}; \
         reconnects meanwhile={reconnects}"
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0);
    assert_eq!(
        reconnects, 0.0,
        "a malformed frame must not cost the connection"
    );
    Ok(())
}

/// Seed: Kalshi API error handling — REST 429/500/502/503/504, WebSocket closes 1000, 1001,
/// 1006, 1011, per-connection drops, and an exchange maintenance window (exchange inactive,
/// REST 503, nothing published) — all at once in one run; nothing may be lost.
#[test]
fn exchange_errors_and_maintenance_lose_nothing() -> Res<()> {
    let tmp = scratch()?;
    let faults = [
        "http:429:/markets*:0.05",
        "http:500:/markets*:0.05",
        "http:502:/events*:0.1",
        "http:503:/markets/trades*:0.1",
        "http:504:/markets/*/orderbook*:0.1",
        "ws-close:1000:9",
        "ws-close:1001:11",
        "ws-close:1006:13",
        "ws-close:1011:7",
        "ws-drop:0.005",
        "maintenance:20:8",
    ];
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            duration: 45,
            faults: faults.iter().map(|s| (*s).to_string()).collect(),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    let lag = LagMonitor::start(&up.dir);
    let published = || {
        up.url("sim", "/_sim/stats")
            .and_then(|u| http::get_json(&u))
            .and_then(|s| {
                s["published"].as_object().map(|m| {
                    m.values()
                        .filter_map(serde_json::Value::as_u64)
                        .sum::<u64>()
                })
            })
    };
    // Maintenance begins when publishing stops for 2 s, ends when it starts again.
    let mut last = (published().unwrap_or(0), Instant::now());
    wait_for(Duration::from_secs(60), "maintenance to start", || {
        let now = published()?;
        if now != last.0 {
            last = (now, Instant::now());
        }
        (last.1.elapsed() >= Duration::from_secs(2)).then_some(())
    })?;
    let frozen = last.0;
    let heads: Vec<u64> = GATHERERS
        .iter()
        .map(|g| up.deltas_head(g).unwrap_or(0))
        .collect();
    wait_for(Duration::from_secs(60), "maintenance to end", || {
        published().filter(|n| *n > frozen)
    })?;
    let resumed = Instant::now();
    for (g, h) in GATHERERS.iter().zip(&heads) {
        up.wait_deltas_above(g, *h, Duration::from_secs(60))?;
    }
    let storing = resumed.elapsed();
    // `up --duration` drains until the gatherers' heads stop moving, and a close every few
    // seconds (each one re-subscribes: snapshots, gap records) would keep them moving for
    // ever; the faults are cleared just before the end, as an operator would.
    up.clear_faults_before_end(45)?;
    let (v, fig) = end_run(
        &mut up,
        lag,
        "exchange-errors",
        vec![("after_maintenance_all_storing".into(), storing)],
    )?;
    let stats = up.child_logs();
    println!(
        "exchange-errors: reconnect lines in logs {}",
        stats.matches("reconnect").count()
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0);
    Ok(())
}

/// Seed: "Ping timeout — no heartbeat response: close connection, reconnect". Every 7 s the
/// exchange goes silent on one random connection for 5 s (no data, no pings, no answers). The
/// time scale is shrunk to fit the suite: the exchange pings every second instead of 10 s and
/// the gatherers give a connection 3 s of silence instead of 30 s. Each silent connection must
/// be replaced and resubscribed, and nothing may be lost.
#[test]
fn ping_timeout_replaces_the_silent_connection_and_loses_nothing() -> Res<()> {
    let tmp = scratch()?;
    let mut up = start_up(
        &data_dir(&tmp),
        &UpOpts {
            duration: 40,
            faults: vec!["ws-stall:7:5".into()],
            env: vec![
                ("KALSHI_DATA_SIM_PING_INTERVAL".into(), "1s".into()),
                (
                    "KALSHI_DATA_GATHERER_SILENCE_TIMEOUT_SECS".into(),
                    "3".into(),
                ),
            ],
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    let lag = LagMonitor::start(&up.dir);
    let silence_replacements = |up: &Up| -> f64 {
        GATHERERS
            .iter()
            .filter_map(|g| up.metrics(g))
            .map(|text| {
                prom::Metrics::parse(&text)
                    .all("connection_reconnects_total")
                    .iter()
                    .filter(|(labels, _)| labels.contains("reason=\"silence\""))
                    .map(|(_, v)| *v)
                    .sum::<f64>()
            })
            .sum()
    };
    let stalled = Instant::now();
    let replaced = wait_for(
        Duration::from_secs(30),
        "a silent connection replaced",
        || {
            let n = silence_replacements(&up);
            (n >= 1.0).then_some(n)
        },
    )?;
    let first_replacement = stalled.elapsed();
    // A stall every 7 s would outlast `up --duration`'s drain; clear it shortly before the
    // end, as an operator would.
    up.clear_faults_before_end(40)?;
    let replaced_total = silence_replacements(&up);
    let stalls = up
        .url("sim", "/_sim/stats")
        .and_then(|u| http::get_json(&u))
        .and_then(|s| s["ws_stalls"].as_u64());
    let (v, fig) = end_run(
        &mut up,
        lag,
        "ping-timeout",
        vec![("first_silent_connection_replaced".into(), first_replacement)],
    )?;
    println!(
        "ping-timeout: stalls {stalls:?}, connections replaced for silence {replaced_total} \
         (first seen {replaced})"
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0, "{}", v.text);
    Ok(())
}

/// The end of a production fault: production is back since `since` and the deduplicator is
/// committing; wait until it has caught up, let the run end, verify, and print the figures
/// (the fault's own duration, time to commit again, time to catch up).
fn catch_up_and_verify(
    up: &mut Up,
    lag: LagMonitor,
    name: &str,
    since: Instant,
    fault: (&str, Duration),
) -> Res<(Verified, Figures)> {
    let committing = since.elapsed();
    wait_for(Duration::from_secs(90), "dedup caught up", || {
        up.metrics("dedup")
            .and_then(|m| prom::max(&m, "dedup_sync_lag_seconds"))
            .filter(|l| *l < 1.0)
    })?;
    let caught_up = since.elapsed();
    end_run(
        up,
        lag,
        name,
        vec![
            (fault.0.into(), fault.1),
            ("committing".into(), committing),
            ("caught_up".into(), caught_up),
        ],
    )
}

/// The end of every scenario: wait for `up --duration` to drain and exit, verify against the
/// truth, and print the scenario's figures line (`recover`: what came back, how fast).
fn end_run(
    up: &mut Up,
    lag: LagMonitor,
    name: &str,
    recover: Vec<(String, Duration)>,
) -> Res<(Verified, Figures)> {
    up.wait_exit(EXIT)?;
    let max_lag = lag.finish();
    let v = verify(&up.dir, &up.production)?;
    let fig = Figures::collect(name, up, &v, max_lag, recover)?;
    println!("{fig}");
    Ok((v, fig))
}
