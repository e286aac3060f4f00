//! Every metric name the alert rules (deploy/prometheus/alerts.yml) and the dashboard
//! (deploy/grafana/kalshi-data.json) use is exported:
//!
//! - statically: declared by a component (its `metrics` module or a `counter!`/`gauge!`/
//!   `histogram!` call), so a renamed metric breaks this test rather than an alert;
//! - live: scraped from the `/metrics` of real processes started by `kalshi-data up`
//!   (simulator, 3 gatherers, deduplicator, exporter) at small scale, on PostgreSQL production
//!   (a database of its own) so the deduplicator's `dedup_pg_*` gauges are sampled.

use crate::deploy_support::{is_external, metric_names, read, root, used_metric_names};
use kd_testkit::pg::TestDb;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Counters of events a healthy run never has (drops, refused credentials, failures). They
/// are declared by their component but only appear in /metrics after the first event.
const EVENT_ONLY: &[&str] = &[
    "router_dropped_total",
    "writer_dropped_total",
    "rest_auth_failures_total",
    "connection_auth_failures_total",
    "connection_policy_closes_total",
    "router_parse_errors_total",
    "router_errors_total",
    "registry_errors_total",
    "registry_retries_total",
    "connection_errors_total",
    "connection_retries_total",
    "writer_errors_total",
    "writer_retries_total",
    "store_errors_total",
    "pull_errors_total",
    "rest_errors_total",
    "rest_retries_total",
    "dedup_errors_total",
    "dedup_retries_total",
    "export_errors_total",
    "sequence_gaps_total",
    "connection_reconnects_total",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// String literals that look like metric names, from `metrics` modules (constants) and from
/// `counter!`/`gauge!`/`histogram!` calls anywhere in the components' sources.
fn declared_metric_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    let crates = root().join("crates");
    for entry in std::fs::read_dir(&crates).expect("crates/").flatten() {
        rust_files(&entry.path().join("src"), &mut files);
    }
    let looks_like_metric = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && s.contains('_')
    };
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let in_metrics_module = file.file_stem().is_some_and(|s| s == "metrics")
            || file
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == "metrics");
        for line in text.lines() {
            let declares = (in_metrics_module && line.contains(": &str = \""))
                || ["counter!(\"", "gauge!(\"", "histogram!(\""]
                    .iter()
                    .any(|m| line.contains(m));
            if !declares {
                continue;
            }
            for literal in line.split('"').skip(1).step_by(2) {
                if looks_like_metric(literal) {
                    names.insert(literal.to_string());
                }
            }
        }
    }
    names
}

#[test]
fn promql_names_are_extracted() {
    let names = metric_names(
        r#"sum by (gatherer, table) (increase(rest_auth_failures_total{job="x",a=~"b|c"}[5m])) > 0
           or (sum(up{job="g"}) or vector(0)) == 0
           or 1 - node_a / on(instance) group_left(zone) node_b > 0.80
           or max(x:y{quantile="0.99"}) offset 5m"#,
    );
    let expected: BTreeSet<String> = ["rest_auth_failures_total", "up", "node_a", "node_b", "x:y"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn every_used_metric_is_declared_by_a_component() {
    let declared = declared_metric_names();
    let mut missing = BTreeMap::new();
    for (name, place) in used_metric_names() {
        if is_external(&name) || declared.contains(&name) {
            continue;
        }
        missing.entry(name).or_insert(place);
    }
    assert!(
        missing.is_empty(),
        "metrics used by alerts/dashboard but declared by no component:\n{missing:#?}"
    );
}

#[test]
fn every_metric_is_documented() {
    // Names the rules and dashboard rely on must be documented; other declared names are
    // listed (not failed) so a component adding a metric does not break this test.
    let doc = read("docs/metrics.md");
    let documented = |n: &String| doc.contains(&format!("`{n}`"));
    let undocumented: BTreeSet<String> = used_metric_names()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !documented(n))
        .collect();
    assert!(
        undocumented.is_empty(),
        "used but missing from docs/metrics.md: {undocumented:?}"
    );
    let unlisted: Vec<String> = declared_metric_names()
        .into_iter()
        .filter(|n| !documented(n))
        .collect();
    if !unlisted.is_empty() {
        eprintln!("!!! declared but not yet in docs/metrics.md: {unlisted:?}");
    }
}

/// Metric names in a Prometheus text exposition (`# TYPE` lines and samples; histogram and
/// summary suffixes folded into their base name).
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let name = if let Some(rest) = line.strip_prefix("# TYPE ") {
            rest.split_whitespace().next()
        } else if line.starts_with('#') || line.trim().is_empty() {
            None
        } else {
            line.split(['{', ' ']).next()
        };
        if let Some(name) = name {
            names.insert(name.to_string());
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    names.insert(base.to_string());
                }
            }
        }
    }
    names
}

fn scrape(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_used_metric_is_scraped_from_running_processes() -> Result<(), Box<dyn std::error::Error>> {
    if crate::deploy_support::find_tool("curl").is_none() {
        crate::deploy_support::skip("live metric scrape", "curl not on PATH");
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let db = runtime.block_on(TestDb::create("deploy_metrics"))?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let log_path = tmp.path().join("up.log");
    let log = std::fs::File::create(&log_path)?;
    let mut up = Command::new(env!("CARGO_BIN_EXE_kalshi-data"))
        .args([
            "up",
            "--duration",
            "60",
            "--markets",
            "30",
            "--rate",
            "300",
            "--plain",
            "--production",
            &db.url,
            "--data-dir",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;

    let wanted: BTreeSet<String> = used_metric_names()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !is_external(n) && !EVENT_ONLY.contains(&n.as_str()))
        .collect();
    assert!(wanted.len() > 15, "too few names to check: {wanted:?}");
    println!("checking {} names live: {wanted:?}", wanted.len());
    let mut seen = BTreeSet::new();
    let mut scraped = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(50);
    while Instant::now() < deadline && !wanted.is_subset(&seen) {
        std::thread::sleep(Duration::from_secs(1));
        let Ok(state) = kd_ops::up::state::UpState::read(&dir) else {
            continue;
        };
        for process in &state.processes {
            if process.metrics_url.is_empty() {
                continue;
            }
            if let Some(text) = scrape(&process.metrics_url) {
                let names = exposed_names(&text);
                scraped.insert(process.name.clone(), names.len());
                seen.extend(names);
            }
        }
    }
    // Like an operator: SIGTERM stops every child, closing their connections.
    kd_testkit::process::stop(&mut up, Duration::from_secs(60));
    runtime.block_on(db.drop_db())?;
    println!("scraped processes (name → metric names): {scraped:?}");
    let missing: Vec<&String> = wanted.difference(&seen).collect();
    assert!(
        !scraped.is_empty(),
        "no /metrics answered; up log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    for process in ["gatherer-a", "dedup", "exporter"] {
        assert!(
            scraped.contains_key(process),
            "{process} served no /metrics; up log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    assert!(
        missing.is_empty(),
        "used by alerts/dashboard but not exported by any running process: {missing:?}"
    );
    let event_seen: Vec<&&str> = EVENT_ONLY.iter().filter(|n| seen.contains(**n)).collect();
    println!("event-only counters already present: {event_seen:?}");
    Ok(())
}
