//! The alert rules and scrape configuration under deploy/prometheus/ are valid, every alert has
//! a promtool unit test that fires and one that stays silent, the seed's alert tables are all
//! covered, and every runbook link points at a real section of docs/runbook.md.
//!
//! promtool comes from Debian's `prometheus` package (scripts/test-deps.d/prometheus.sh). When
//! it is missing the promtool checks are skipped with a loud message, except under CI (`CI=true`,
//! set by `.ci/run`) or with `KALSHI_DATA_REQUIRE_PROMTOOL` set, where they fail.

use crate::deploy_support::{alert_names, find_tool, read, root, run_ok, skip};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn promtool() -> Option<std::path::PathBuf> {
    let found = find_tool("promtool");
    if found.is_none() {
        assert!(
            std::env::var_os("KALSHI_DATA_REQUIRE_PROMTOOL").is_none(),
            "promtool is required (KALSHI_DATA_REQUIRE_PROMTOOL is set) but not on PATH; \
             run scripts/test-deps"
        );
    }
    found
}

#[test]
fn promtool_checks_the_rules_and_the_scrape_config() {
    let Some(promtool) = promtool() else {
        skip(
            "promtool check",
            "promtool not on PATH (apt-get install prometheus)",
        );
        return;
    };
    let dir = root().join("deploy/prometheus");
    let out =
        run_ok(
            Command::new(&promtool)
                .current_dir(&dir)
                .args(["check", "rules", "alerts.yml"]),
        );
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = alert_names(&read("deploy/prometheus/alerts.yml")).len();
    assert!(
        text.contains(&format!("SUCCESS: {expected} rules found")),
        "{text}"
    );
    run_ok(
        Command::new(&promtool)
            .current_dir(&dir)
            .args(["check", "config", "prometheus.yml"]),
    );
}

#[test]
fn promtool_unit_tests_of_every_alert_pass() {
    let Some(promtool) = promtool() else {
        skip(
            "promtool test rules",
            "promtool not on PATH (apt-get install prometheus)",
        );
        return;
    };
    let dir = root().join("deploy/prometheus");
    let out = run_ok(Command::new(&promtool).current_dir(&dir).args([
        "test",
        "rules",
        "alerts_test.yml",
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

#[test]
fn the_unit_tests_can_fail() {
    // Guard against a test file that passes whatever the rules say: a rules file with every
    // threshold broken must make `promtool test rules` fail.
    let Some(promtool) = promtool() else {
        skip("promtool negative control", "promtool not on PATH");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = read("deploy/prometheus/alerts.yml")
        .replace("> 0.80", "> 0.99")
        .replace("> 300", "> 100000")
        .replace("== 0", "== 7");
    std::fs::write(dir.path().join("alerts.yml"), broken).expect("write");
    std::fs::write(
        dir.path().join("alerts_test.yml"),
        read("deploy/prometheus/alerts_test.yml"),
    )
    .expect("write");
    let out = Command::new(&promtool)
        .current_dir(dir.path())
        .args(["test", "rules", "alerts_test.yml"])
        .output()
        .expect("run promtool");
    assert!(!out.status.success(), "promtool accepted broken rules");
}

/// For each alert name: (a case expects it to fire, a case expects silence).
fn coverage(test_yaml: &str) -> BTreeMap<String, (bool, bool)> {
    let mut cover: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in test_yaml.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("alertname:") {
            current = Some(name.trim().to_string());
        } else if let Some(rest) = t.strip_prefix("exp_alerts:")
            && let Some(name) = current.take()
        {
            let entry = cover.entry(name).or_default();
            // `exp_alerts: []  # comment` asserts silence.
            if rest.split('#').next().unwrap_or_default().trim() == "[]" {
                entry.1 = true;
            } else {
                entry.0 = true;
            }
        }
    }
    cover
}

#[test]
fn every_alert_has_a_firing_and_a_silent_case() {
    let cover = coverage(&read("deploy/prometheus/alerts_test.yml"));
    let mut missing = Vec::new();
    for alert in alert_names(&read("deploy/prometheus/alerts.yml")) {
        match cover.get(&alert) {
            Some((true, true)) => {}
            Some((fires, silent)) => {
                missing.push(format!("{alert}: fires case {fires}, silent case {silent}"))
            }
            None => missing.push(format!("{alert}: no test case")),
        }
    }
    assert!(
        missing.is_empty(),
        "alerts without both cases:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_seed_alert_tables_are_covered() {
    // reliability.md "Monitoring Alerts" (Critical and Warning) and DESIGN §7's extras.
    let alerts: BTreeSet<String> = alert_names(&read("deploy/prometheus/alerts.yml"))
        .into_iter()
        .collect();
    let required = [
        ("AllGatherersDown", "critical"),
        ("ProductionUnreachable", "critical"),
        ("DedupSyncStalled", "critical"),
        ("GathererDown", "warning"),
        ("DiskUsageHigh", "warning"),
        ("ProductionConnectionsHigh", "warning"),
        ("DedupSyncLagHigh", "warning"),
        ("SequenceGapsFrequent", "warning"),
        ("RouterDropping", "warning"),
        ("WriterDropping", "warning"),
        ("KalshiAuthFailure", "critical"),
        ("ExportLagHigh", "warning"),
    ];
    let rules = read("deploy/prometheus/alerts.yml");
    for (name, severity) in required {
        assert!(alerts.contains(name), "missing alert {name}");
        let block = &rules[rules
            .find(&format!("- alert: {name}\n"))
            .expect("alert block")..];
        let block = &block[..block[1..].find("- alert:").map_or(block.len(), |i| i + 1)];
        assert!(
            block.contains(&format!("severity: {severity}")),
            "{name} must be {severity}"
        );
    }
}

/// GitHub-style anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn runbook_links_resolve() {
    let runbook = read("docs/runbook.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules = read("deploy/prometheus/alerts.yml");
    let mut broken = Vec::new();
    for line in rules.lines() {
        if let Some(link) = line.trim().strip_prefix("runbook: ") {
            let link = link.trim_matches('"');
            let Some(fragment) = link.strip_prefix("docs/runbook.md#") else {
                broken.push(link.to_string());
                continue;
            };
            if !anchors.contains(fragment) {
                broken.push(link.to_string());
            }
        }
    }
    assert!(
        broken.is_empty(),
        "runbook links without a matching heading: {broken:?}"
    );
}
