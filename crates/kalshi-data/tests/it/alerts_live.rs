//! Issue 17 "alerts that are true": deploy/prometheus/alerts.yml loaded into a real Prometheus
//! server (Debian's `prometheus`, scripts/test-deps.d/prometheus.sh) scraping a running
//! `kalshi-data up` (3 gatherers, the deduplicator and the exporter, production on a private
//! PostgreSQL server of the test's own), scrape and evaluation every second.
//!
//! 1. Healthy, with the real rules unchanged: for two minutes after the platform is ready no
//!    rule is pending or firing (every target scraped, every rule evaluated without error, the
//!    metrics the rules read present).
//! 2. Each condition made to happen, with a test-only copy of the rules whose times are scaled
//!    down by 10 so the test takes minutes, not a quarter of an hour. Exactly what the copy
//!    changes: every `for: Nm` becomes `for: 6·N s` (1m → 6s, 2m → 12s, 5m → 30s,
//!    15m → 90s), and DedupSyncStalled's threshold `dedup_sync_lag_seconds > 300` (five
//!    minutes, a time too) becomes `> 30`. No range window needs scaling: the three rules under
//!    test have none. Expressions, labels and every other threshold are the real ones.
//!    - GathererDown: gatherer-b frozen (SIGSTOP; `up`'s hang replacement disabled with
//!      `KALSHI_DATA_UP_HUNG_AFTER=0`, else it would be replaced within 16 s): it fires naming
//!      gatherer-b's target, and clears after SIGCONT.
//!    - ProductionUnreachable and DedupSyncStalled: the production PostgreSQL server stopped
//!      (`pg_ctl stop -m fast`, the server gone as in an instance failure): both fire; after
//!      the server is started again both clear.
//!
//! Prints `FIGURES alerts-live:` with the time from each fault to its alert firing.

mod prometheus;

use kd_testkit::pg::PrivatePg;
use kd_testkit::up::{GATHERERS, Up, UpOpts};
use kd_testkit::wait::wait_for;
use prometheus::{Alert, Job, Prometheus};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The healthy period the issue asks for.
const HEALTHY: Duration = Duration::from_secs(120);
/// `for:` and time thresholds of the test-only copy are divided by this.
const SCALE: u64 = 10;

/// Metrics the rules read that a healthy platform exports from the start: a rule over a
/// missing metric is silent whatever happens, so silence would prove nothing.
const READ_BY_RULES: &[&str] = &[
    "up",
    "dedup_gatherer_health",
    "dedup_rds_connected",
    "dedup_sync_lag_seconds",
    "dedup_pg_connections",
    "dedup_pg_max_connections",
    "store_write_failing",
    "gatherer_clock_offset_seconds",
    "export_lag_seconds",
    "dedup_quarantined_total",
];

fn prometheus_exe() -> Option<PathBuf> {
    let debian = Path::new("/usr/bin/prometheus");
    if debian.is_file() {
        return Some(debian.to_owned());
    }
    crate::deploy_support::find_tool("prometheus")
}

/// The test-only copy of the rules (see the module comment for exactly what changes).
fn scaled_rules(real: &str) -> String {
    let mut fors = 0;
    let mut out: String = real
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let minutes = trimmed
                .strip_prefix("for: ")
                .and_then(|v| v.trim().strip_suffix('m'))
                .and_then(|n| n.parse::<u64>().ok());
            match minutes {
                Some(m) => {
                    fors += 1;
                    let indent = &line[..line.len() - trimmed.len()];
                    format!("{indent}for: {}s\n", m * 60 / SCALE)
                }
                None => format!("{line}\n"),
            }
        })
        .collect();
    let stalled = "max by (gatherer, table) (dedup_sync_lag_seconds) > 300";
    assert_eq!(
        out.matches(stalled).count(),
        1,
        "DedupSyncStalled's threshold changed shape: update scaled_rules"
    );
    out = out.replace(
        stalled,
        &stalled.replace("> 300", &format!("> {}", 300 / SCALE)),
    );
    assert!(fors >= 10, "only {fors} `for: Nm` lines scaled");
    out
}

/// The scrape jobs of deploy/prometheus/prometheus.yml, pointed at `up`'s processes.
fn jobs(up: &Up) -> Res<Vec<Job>> {
    let target = |name: &str| -> Res<(String, String)> {
        let url = up
            .process(name)
            .and_then(|p| p["metrics_url"].as_str().map(str::to_string))
            .ok_or_else(|| format!("{name}: no metrics_url in up.json"))?;
        let host = url
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix("/metrics"))
            .ok_or_else(|| format!("{name}: unexpected metrics_url {url}"))?;
        Ok((host.to_string(), name.to_string()))
    };
    Ok(vec![
        Job {
            name: "kalshi-data-gatherer",
            targets: GATHERERS.iter().map(|g| target(g)).collect::<Res<_>>()?,
        },
        Job {
            name: "kalshi-data-dedup",
            targets: vec![target("dedup")?],
        },
        Job {
            name: "kalshi-data-export",
            targets: vec![target("exporter")?],
        },
    ])
}

fn show(alerts: &BTreeSet<Alert>) -> String {
    alerts
        .iter()
        .map(|a| format!("{} {} {{{}}}", a.name, a.state, a.labels))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until `name` is firing with `pick` true of it; the time since `since`.
fn wait_firing(
    prom: &Prometheus,
    name: &str,
    since: Instant,
    limit: Duration,
    pick: impl Fn(&Alert) -> bool,
) -> Res<(Duration, Alert)> {
    let found = wait_for(limit, &format!("{name} firing"), || {
        prom.alerts()?
            .into_iter()
            .find(|a| a.name == name && a.state == "firing" && pick(a))
    })
    .map_err(|e| {
        format!(
            "{e}; alerts now: {:?}; max sync lag: {:?}",
            prom.alerts(),
            prom.query("max(dedup_sync_lag_seconds)")
        )
    })?;
    Ok((since.elapsed(), found))
}

/// Waits until no alert named in `names` is pending or firing.
fn wait_cleared(prom: &Prometheus, names: &[&str], limit: Duration) -> Res<Duration> {
    let t0 = Instant::now();
    wait_for(limit, &format!("{names:?} cleared"), || {
        let alerts = prom.alerts()?;
        (!alerts.iter().any(|a| names.contains(&a.name.as_str()))).then_some(())
    })
    .map_err(|e| format!("{e}; alerts now: {:?}", prom.alerts()))?;
    Ok(t0.elapsed())
}

/// Every alert seen pending or firing, polled each second for `period`, and what the failed
/// scrapes said when one was.
fn alerts_during(prom: &Prometheus, period: Duration) -> Res<(BTreeSet<Alert>, Vec<String>)> {
    let t0 = Instant::now();
    let mut seen = BTreeSet::new();
    let mut why = Vec::new();
    while t0.elapsed() < period {
        let now = prom.alerts().ok_or("Prometheus stopped answering")?;
        if !now.is_empty() {
            why.push(format!(
                "at {:.0}s: {}; failed scrapes: {:?}",
                t0.elapsed().as_secs_f64(),
                show(&now.iter().cloned().collect()),
                prom.target_errors()
            ));
        }
        seen.extend(now);
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok((seen, why))
}

#[test]
fn alert_rules_are_silent_while_healthy_and_fire_on_their_faults() -> Res<()> {
    let Some(exe) = prometheus_exe() else {
        kd_testkit::ci::skip(
            "alerts_live",
            "the Prometheus server is not installed (scripts/test-deps.d/prometheus.sh)",
        );
        return Ok(());
    };
    let real = crate::deploy_support::read("deploy/prometheus/alerts.yml");
    let scaled = scaled_rules(&real);
    let pg = PrivatePg::start(&[])?;
    let tmp = tempfile::tempdir()?;
    let up = Up::start(
        Path::new(BIN),
        &tmp.path().join("data"),
        &UpOpts {
            markets: 6,
            rate: 30,
            duration: 900,
            production: Some(pg.url("postgres", "postgres")),
            env: vec![("KALSHI_DATA_UP_HUNG_AFTER".into(), "0".into())],
            ..UpOpts::default()
        },
    )?;
    up.wait_ready(Duration::from_secs(120))?;
    let prom_dir = tmp.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir)?;
    let prom = Prometheus::start(&exe, &prom_dir, &jobs(&up)?, &real)?;

    // --- 1. Healthy, real rules: two minutes without a pending or firing alert. ---
    let n_rules = crate::deploy_support::alert_names(&real).len();
    wait_for(
        Duration::from_secs(30),
        "every target scraped and every rule evaluated",
        || {
            let (up_n, all) = prom.targets_up()?;
            let rules = prom.rules()?;
            (up_n == 5 && all == 5 && rules.len() == n_rules && rules.iter().all(|r| r.2))
                .then_some(())
        },
    )
    .map_err(|e| {
        format!(
            "{e}: targets {:?}, rules {:?}",
            prom.targets_up(),
            prom.rules()
        )
    })?;
    // Before a target's first scrape its rules' conditions are really true (no `up`, no
    // `export_lag_seconds` yet) and go pending; the healthy window starts once the evaluation
    // after the first scrapes has cleared them (seen: DedupSyncStalled and ExporterDown still
    // pending at the window's first second, under load).
    wait_for(
        Duration::from_secs(30),
        "the alerts pending from before the first scrapes cleared",
        || prom.alerts().filter(|a| a.is_empty()).map(|_| ()),
    )
    .map_err(|e| format!("{e}: {:?}", prom.alerts()))?;
    let (healthy, why) = alerts_during(&prom, HEALTHY)?;
    let missing: Vec<&str> = READ_BY_RULES
        .iter()
        .copied()
        .filter(|m| prom.query(m).is_none_or(|r| r.is_empty()))
        .collect();
    let bad_rules: Vec<String> = prom
        .rules()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !r.2)
        .map(|r| r.0)
        .collect();
    eprintln!(
        "alerts-live: healthy {}s with the real rules ({n_rules} alerts): {} alert(s) \
         pending or firing{}",
        HEALTHY.as_secs(),
        healthy.len(),
        if healthy.is_empty() {
            String::new()
        } else {
            format!(": {}", show(&healthy))
        }
    );
    assert!(
        missing.is_empty(),
        "metrics the rules read are absent: {missing:?}"
    );
    assert!(
        bad_rules.is_empty(),
        "rules failing to evaluate: {bad_rules:?}"
    );
    assert!(
        healthy.is_empty(),
        "alerts on a healthy platform: {}\n{}",
        show(&healthy),
        why.join("\n")
    );

    // --- 2. The faults, with the scaled copy. ---
    prom.reload_rules(&scaled, |rules| {
        rules
            .iter()
            .any(|(name, secs, _)| name == "DedupSyncStalled" && *secs == 30.0)
    })?;
    let mut also = BTreeSet::new();

    // GathererDown: gatherer-b frozen.
    let target_b = up
        .url("gatherer-b", "")
        .and_then(|u| u.strip_prefix("http://").map(str::to_string))
        .ok_or("gatherer-b: no port")?;
    let frozen = Instant::now();
    let pid_b = up.signal("gatherer-b", "STOP")?;
    let down = wait_firing(
        &prom,
        "GathererDown",
        frozen,
        Duration::from_secs(60),
        |_| true,
    );
    let down_all = prom.alerts().unwrap_or_default();
    kd_testkit::process::signal(pid_b, "CONT")?;
    let (down_after, down_alert) = down?;
    let down_named: Vec<&Alert> = down_all
        .iter()
        .filter(|a| a.name == "GathererDown")
        .collect();
    also.extend(
        down_all
            .iter()
            .filter(|a| a.name != "GathererDown")
            .cloned(),
    );
    assert_eq!(
        (down_alert.label("instance"), down_alert.label("process")),
        (Some(target_b.as_str()), Some("gatherer-b")),
        "GathererDown names the wrong gatherer: {down_alert:?}"
    );
    assert_eq!(
        down_named.len(),
        1,
        "only gatherer-b is down: {down_named:?}"
    );
    let down_cleared = wait_cleared(&prom, &["GathererDown"], Duration::from_secs(60))?;
    let head_b = up.deltas_head("gatherer-b").unwrap_or(0);
    up.wait_deltas_above("gatherer-b", head_b, Duration::from_secs(60))?;

    // ProductionUnreachable and DedupSyncStalled: production's server stopped.
    pg.stop_server()?;
    let stopped = Instant::now();
    let unreachable = wait_firing(
        &prom,
        "ProductionUnreachable",
        stopped,
        Duration::from_secs(90),
        |_| true,
    );
    let stalled = unreachable.as_ref().ok().map(|_| {
        wait_firing(
            &prom,
            "DedupSyncStalled",
            stopped,
            Duration::from_secs(180),
            |_| true,
        )
    });
    also.extend(prom.alerts().unwrap_or_default());
    pg.start_server()?;
    let restarted = Instant::now();
    let (unreachable_after, unreachable_alert) = unreachable?;
    let (stalled_after, stalled_alert) = stalled.ok_or("unreachable")??;
    let prod_cleared = wait_cleared(
        &prom,
        &["ProductionUnreachable", "DedupSyncStalled"],
        Duration::from_secs(120),
    )?;
    also.retain(|a| !["ProductionUnreachable", "DedupSyncStalled"].contains(&a.name.as_str()));
    eprintln!(
        "FIGURES alerts-live: healthy {}s real rules: 0 alerts; rules scaled /{SCALE}: \
         GathererDown (for {}s) firing {:.1}s after SIGSTOP of gatherer-b {{{}}}, cleared {:.1}s \
         after SIGCONT; ProductionUnreachable (for {}s) firing {:.1}s and DedupSyncStalled \
         (for {}s, lag > {}s) firing {:.1}s after production's server stopped {{{}}}, both \
         cleared {:.1}s after it restarted ({:.1}s after the stop); also pending or firing \
         meanwhile: {}",
        HEALTHY.as_secs(),
        60 / SCALE,
        down_after.as_secs_f64(),
        down_alert.labels,
        down_cleared.as_secs_f64(),
        60 / SCALE,
        unreachable_after.as_secs_f64(),
        300 / SCALE,
        300 / SCALE,
        stalled_after.as_secs_f64(),
        stalled_alert.labels,
        prod_cleared.as_secs_f64(),
        (restarted - stopped + prod_cleared).as_secs_f64(),
        if also.is_empty() {
            "none".to_string()
        } else {
            show(&also)
        },
    );
    assert!(
        unreachable_alert.label("job") == Some("kalshi-data-dedup"),
        "{unreachable_alert:?}"
    );
    drop(prom);
    drop(up);
    drop(pg);
    Ok(())
}

#[test]
fn the_scaled_copy_changes_only_times() {
    let real = crate::deploy_support::read("deploy/prometheus/alerts.yml");
    let scaled = scaled_rules(&real);
    let differing: Vec<(&str, &str)> = real
        .lines()
        .zip(scaled.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(real.lines().count(), scaled.lines().count());
    for (a, b) in &differing {
        let ok = (a.trim_start().starts_with("for: ") && b.trim_start().starts_with("for: "))
            || (a.contains("dedup_sync_lag_seconds) > 300") && b.contains("> 30"));
        assert!(ok, "unexpected change: {a:?} → {b:?}");
    }
    assert!(scaled.contains("for: 6s") && scaled.contains("for: 30s"));
}
