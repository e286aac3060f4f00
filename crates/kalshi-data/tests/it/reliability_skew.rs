//! Reliability row "a gatherer with a skewed clock": gatherer-a's clock runs 45 s ahead,
//! gatherer-b's 45 s behind (`clock_offset_ms`, the gatherer's fault-injection key), gatherer-c
//! is right — under faults that make gaps and repairs (dropped WebSocket messages, abnormal
//! closes, a `kill -9` of the clock-behind gatherer and its downtime repair). Each gatherer
//! must measure its offset from the exchange (`/health` `clock.offset_ms`,
//! `gatherer_clock_offset_seconds`) and put everything it compares with exchange times on the
//! exchange's clock — gap windows, trade backfill windows, snapshot times, lifecycle minutes —
//! so `verify` against the simulator's truth ends OK with nothing duplicated.
//!
//! Run: `cargo test -p kalshi-data --test it reliability_skew:: -- --nocapture`.

use crate::reliability_support::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(90);
const EXIT: Duration = Duration::from_secs(360);
/// The injected offsets, ms: ahead, behind, none.
const SKEW: [(&str, i64); 3] = [
    ("gatherer-a", 45_000),
    ("gatherer-b", -45_000),
    ("gatherer-c", 0),
];
/// Seconds `up` runs before draining: longer than the skew, so a snapshot stamped 45 s early
/// or late by a gatherer lands among the book check points of the run.
const DURATION: u64 = 55;

/// The `up --config` plan: the simulator (with `faults`), the three gatherers with their
/// clock offsets, the deduplicator.
fn plan(dir: &std::path::Path, production: &str, faults: &[&str]) -> Res<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("config"))?;
    // Distinct ports for the simulator, each gatherer and the deduplicator.
    let mut ports = kd_ops::up::plan::free_ports(SKEW.len() + 2)?.into_iter();
    let mut free_port = move || ports.next().ok_or("no free port left");
    let sim_port = free_port()?;
    let rest = format!("http://127.0.0.1:{sim_port}/trade-api/v2");
    let ws = format!("ws://127.0.0.1:{sim_port}/trade-api/ws/v2");
    let path = |p: &std::path::Path| p.display().to_string();
    // JSON strings and string arrays are valid TOML.
    let list = |v: Vec<String>| serde_json::to_string(&v);
    let q = |s: &str| serde_json::to_string(s);
    let mut sim_args: Vec<String> = vec![
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
    for f in faults {
        sim_args.extend(["--fault".into(), (*f).to_string()]);
    }
    let mut plan = format!(
        "[[process]]\nname = \"sim\"\nkind = \"sim\"\nport = {sim_port}\nargs = {}\n\n",
        list(sim_args)?
    );
    let mut dedup_args = vec![
        "dedup".to_string(),
        "--production".into(),
        production.to_string(),
        "--rest-url".into(),
        rest.clone(),
    ];
    for (g, offset_ms) in SKEW {
        let gport = free_port()?;
        let config = dir.join("config").join(format!("{g}.toml"));
        std::fs::write(
            &config,
            format!(
                "gatherer_id = {}\nrest_url = {}\nws_url = {}\ndata_dir = {}\nlisten = {}\n\
                 clock_offset_ms = {offset_ms}\n",
                q(g)?,
                q(&rest)?,
                q(&ws)?,
                q(&path(&dir.join(g)))?,
                q(&format!("127.0.0.1:{gport}"))?,
            ),
        )?;
        plan.push_str(&format!(
            "[[process]]\nname = \"{g}\"\nkind = \"gatherer\"\nport = {gport}\nargs = {}\n\n",
            list(vec!["gatherer".into(), "--config".into(), path(&config)])?
        ));
        dedup_args.extend(["--gatherer".into(), format!("{g}=http://127.0.0.1:{gport}")]);
    }
    let dedup_port = free_port()?;
    dedup_args.extend(["--listen".into(), format!("127.0.0.1:{dedup_port}")]);
    plan.push_str(&format!(
        "[[process]]\nname = \"dedup\"\nkind = \"dedup\"\nport = {dedup_port}\nargs = {}\n",
        list(dedup_args)?
    ));
    let plan_path = dir.join("plan.toml");
    std::fs::write(&plan_path, &plan)?;
    Ok(plan_path)
}

/// The trades of the truth delivered to subscribers that the store of gatherer `name` lacks:
/// every gatherer must hold every trade on its own (its gap and downtime backfills read them
/// over REST), whatever its clock says.
fn trades_missing_in(dir: &std::path::Path, name: &str, delivered: &HashSet<String>) -> Res<usize> {
    let pool = kd_gatherer::store::ReadPool::new(&dir.join(name))?;
    let mut stored = HashSet::new();
    let mut after = 0;
    loop {
        let page = pool.pull(kd_core::Table::Trades, after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in page {
            if let kd_core::Record::Trade(t) = row.record {
                stored.insert(t.trade_id);
            }
        }
    }
    Ok(delivered.difference(&stored).count())
}

/// Waits until `name` reports an estimated offset within 1 s of `injected_ms` (the estimate
/// adds the smallest latency, well under a second on loopback); returns it.
fn wait_offset(up: &Up, name: &str, injected_ms: i64) -> Res<i64> {
    wait_for(
        Duration::from_secs(30),
        &format!("{name} estimating its clock offset"),
        || {
            let off = up.health(name)?["clock"]["offset_ms"].as_i64()?;
            ((off - injected_ms).abs() < 1_000).then_some(off)
        },
    )
    .map_err(|e| {
        let seen = up.health(name).map(|h| h["clock"].to_string());
        format!("{e}; /health clock: {seen:?}").into()
    })
}

#[test]
fn skewed_gatherer_clocks_lose_and_duplicate_nothing() -> Res<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix("kd-reliability-skew-")
        .tempdir()?;
    if std::env::var_os("KD_RELIABILITY_KEEP").is_some() {
        tmp.disable_cleanup(true);
        eprintln!("keeping {}", tmp.path().display());
    }
    let dir = tmp.path().join("data");
    let production = format!("sqlite://{}", dir.join("production.db").display());
    let faults = ["ws-drop:0.005", "ws-close:1006:13"];
    let plan_path = plan(&dir, &production, &faults)?;
    let mut up = start_up(
        &dir,
        &UpOpts {
            duration: DURATION,
            production: Some(production),
            config: Some(plan_path),
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(READY)?;
    // Trades from here on were published while every gatherer was subscribed (one made
    // before a gatherer's first subscription is not that gatherer's to repair).
    let ready_us = now_us();
    let lag = LagMonitor::start(&up.dir);
    for (g, injected) in SKEW {
        let off = wait_offset(&up, g, injected)?;
        eprintln!("{g}: injected {injected} ms, estimated {off} ms");
        let warned = up.health(g).and_then(|h| h["clock"]["warning"].as_bool());
        assert_eq!(warned, Some(injected != 0), "{g}: clock warning");
        let gauge = up
            .metrics(g)
            .and_then(|m| prom::sum(&m, "gatherer_clock_offset_seconds"));
        assert!(
            gauge.is_some_and(|s| (s * 1_000.0 - injected as f64).abs() < 1_000.0),
            "{g}: gatherer_clock_offset_seconds {gauge:?}"
        );
    }
    // The clock-behind gatherer crashes: its downtime gap and trade backfill are computed
    // from a store written on a skewed clock, by a process that must measure its offset anew.
    let head = up.deltas_head("gatherer-b").ok_or("no gatherer-b head")?;
    let t_kill = Instant::now();
    let old = up.signal("gatherer-b", "KILL")?;
    up.wait_restarted("gatherer-b", old, Duration::from_secs(30))?;
    up.wait_deltas_above("gatherer-b", head, Duration::from_secs(60))?;
    let storing = t_kill.elapsed();
    wait_offset(&up, "gatherer-b", -45_000)?;
    // `up --duration` drains until the heads stop moving; a close every 13 s would keep them
    // moving, so the faults are cleared shortly before the end, as an operator would.
    up.clear_faults_before_end(DURATION)?;
    up.wait_exit(EXIT)?;
    let max_lag = lag.finish();
    let v = verify(&up.dir, &up.production)?;
    let fig = Figures::collect(
        "clock-skew",
        &up,
        &v,
        max_lag,
        vec![("b_storing_after_kill".into(), storing)],
    )?;
    println!("{fig}");
    let logs = up.child_logs();
    println!(
        "clock-skew: gap lines in logs {}, backfill lines {}",
        logs.matches("\"gap\"").count() + logs.matches(" gap ").count(),
        logs.matches("trade backfill done").count()
    );
    let delivered: HashSet<String> = truth(&up.dir)?
        .into_iter()
        .filter_map(|(r, d)| match r {
            kd_core::Record::Trade(t) if d && t.exchange_ts.micros() >= ready_us => {
                Some(t.trade_id)
            }
            _ => None,
        })
        .collect();
    let mut missing = Vec::new();
    for (g, _) in SKEW {
        missing.push((g, trades_missing_in(&up.dir, g, &delivered)?));
    }
    println!(
        "clock-skew: trades delivered after all were ready {}, missing per gatherer {missing:?}",
        delivered.len()
    );
    v.assert_ok()?;
    assert_eq!(fig.duplicated, 0, "{}", v.text);
    for (g, n) in missing {
        assert_eq!(n, 0, "{g} lacks {n} delivered trades");
    }
    Ok(())
}
