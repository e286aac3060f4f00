//! The systemd units under deploy/systemd/ pass `systemd-analyze verify` (when systemd is on
//! this machine), keep the seed's recovery promise (restart forever) and the hardening we ship,
//! and the example configurations under deploy/config/ load with the processes' own loaders.

use crate::deploy_support::{find_tool, read, root, skip};
use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// (file under deploy/systemd, name to verify it under).
const UNITS: &[(&str, &str)] = &[
    (
        "kalshi-data-gatherer@.service",
        "kalshi-data-gatherer@a.service",
    ),
    ("kalshi-data-dedup.service", "kalshi-data-dedup.service"),
    ("kalshi-data-export.service", "kalshi-data-export.service"),
    ("kalshi-data-sim.service", "kalshi-data-sim.service"),
];

/// Copies the units into `dir`, pointing ExecStart at the binary built for this test (verify
/// checks that the executable exists).
fn stage_units(dir: &Path) {
    let binary = env!("CARGO_BIN_EXE_kalshi-data");
    for (file, name) in UNITS {
        let text =
            read(&format!("deploy/systemd/{file}")).replace("/usr/local/bin/kalshi-data", binary);
        std::fs::write(dir.join(name), text).expect("stage unit");
    }
}

fn systemd_version(analyze: &Path) -> Option<u32> {
    let out = Command::new(analyze).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn verify(analyze: &Path, dir: &Path) -> (bool, String) {
    let mut cmd = Command::new(analyze);
    cmd.arg("verify").current_dir(dir);
    for (_, name) in UNITS {
        cmd.arg(format!("./{name}"));
    }
    let out = cmd.output().expect("run systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(analyze) = find_tool("systemd-analyze") else {
        skip("systemd-analyze verify", "systemd-analyze not on PATH");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    stage_units(dir.path());
    let (ok, text) = verify(&analyze, dir.path());
    println!("systemd-analyze verify:\n{text}");
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify complained:\n{text}"
    );
}

#[test]
fn the_restart_backoff_drop_in_verifies_where_systemd_knows_it() {
    let Some(analyze) = find_tool("systemd-analyze") else {
        skip("restart-backoff drop-in", "systemd-analyze not on PATH");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    stage_units(dir.path());
    for (_, name) in UNITS {
        let drop_in = dir.path().join(format!("{name}.d"));
        std::fs::create_dir_all(&drop_in).expect("drop-in dir");
        std::fs::write(
            drop_in.join("restart-backoff.conf"),
            read("deploy/systemd/restart-backoff.conf"),
        )
        .expect("drop-in");
    }
    let (ok, text) = verify(&analyze, dir.path());
    println!("systemd-analyze verify with restart-backoff.conf:\n{text}");
    assert!(ok, "{text}");
    match systemd_version(&analyze) {
        Some(v) if v >= 254 => assert!(text.trim().is_empty(), "systemd {v}:\n{text}"),
        version => {
            // Older systemd ignores the two keys (with a warning) and keeps RestartSec=.
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.contains("Unknown key 'RestartSteps'")
                        || line.contains("Unknown key 'RestartMaxDelaySec'"),
                    "systemd {version:?}: unexpected complaint: {line}"
                );
            }
        }
    }
}

fn directive_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn units_restart_forever_and_are_hardened() {
    for (file, _) in UNITS {
        let unit = read(&format!("deploy/systemd/{file}"));
        let expect = |key: &str, value: &str| {
            assert!(
                directive_values(&unit, key).contains(&value),
                "{file}: expected {key}={value}"
            );
        };
        expect("Restart", "always");
        expect("StartLimitIntervalSec", "0");
        expect("User", "kalshi-data");
        expect("NoNewPrivileges", "yes");
        expect("ProtectSystem", "strict");
        expect("PrivateTmp", "yes");
        expect("CapabilityBoundingSet", "");
        assert!(
            !directive_values(&unit, "ReadWritePaths").is_empty(),
            "{file}: ReadWritePaths"
        );
        assert!(
            !directive_values(&unit, "RestartSec").is_empty(),
            "{file}: RestartSec"
        );
        if !file.contains("-sim") {
            let env = directive_values(&unit, "EnvironmentFile");
            assert!(
                env.len() == 1 && env[0].starts_with("/etc/kalshi-data/"),
                "{file}: EnvironmentFile"
            );
            assert!(
                unit.contains("--config /etc/kalshi-data/"),
                "{file}: --config"
            );
        }
    }
    let sysusers = read("deploy/systemd/kalshi-data.sysusers.conf");
    assert!(sysusers.lines().any(|l| l.starts_with("u kalshi-data ")));
}

/// Issue 17: a hung process is restarted. Every unit waits for READY=1 and expects WATCHDOG=1
/// (the processes send both through `kd_core::sd_notify`) within a bounded WatchdogSec.
#[test]
fn units_are_notify_with_a_watchdog() {
    for (file, _) in UNITS {
        let unit = read(&format!("deploy/systemd/{file}"));
        assert_eq!(directive_values(&unit, "Type"), ["notify"], "{file}: Type");
        assert_eq!(
            directive_values(&unit, "NotifyAccess"),
            ["main"],
            "{file}: NotifyAccess"
        );
        let watchdog = directive_values(&unit, "WatchdogSec");
        let secs: Vec<u64> = watchdog
            .iter()
            .filter_map(|v| v.strip_suffix('s')?.parse().ok())
            .collect();
        assert!(
            secs.len() == 1 && (10..=300).contains(&secs[0]),
            "{file}: WatchdogSec {watchdog:?}"
        );
    }
}

#[derive(Serialize, Default)]
struct NoOverrides {}

#[test]
fn the_example_gatherer_config_loads() {
    // Secrets come from the environment file in production; give them here the way the
    // environment would, and keep everything else exactly as shipped.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gatherer.toml");
    let mut text = read("deploy/config/gatherer.toml");
    text.push_str("\ntoken = \"from-gatherer-a.env\"\nkey_id = \"from-gatherer-a.env\"\n");
    std::fs::write(&path, text).expect("write");
    let config =
        kd_gatherer::GathererConfig::load(Some(&path), &kd_gatherer::config::Overrides::default())
            .unwrap_or_else(|e| panic!("deploy/config/gatherer.toml: {e}"));
    assert_eq!(config.gatherer_id, "gatherer-a");
    assert!(config.data_dir.starts_with("/var/lib/kalshi-data"));
    let unit = read("deploy/systemd/kalshi-data-gatherer@.service");
    assert!(unit.contains("ReadWritePaths=/var/lib/kalshi-data/gatherer-%i"));
    // Every secret key of the environment file is a real configuration key.
    for line in read("deploy/config/gatherer.env.example").lines() {
        if let Some((var, _)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            let key = var
                .strip_prefix("KALSHI_DATA_GATHERER_")
                .expect("prefix")
                .to_lowercase();
            assert!(
                ["key_id", "token"].contains(&key.as_str()),
                "unexpected secret {var}"
            );
        }
    }
}

#[test]
fn the_example_export_config_loads() {
    let path = root().join("deploy/config/export.toml");
    let config: kd_archive::ExportConfig =
        kd_core::config::load(Some(&path), "KALSHI_DATA_TEST_NO_ENV_", &NoOverrides {})
            .unwrap_or_else(|e| panic!("deploy/config/export.toml: {e}"));
    assert!(config.archive_url.starts_with("s3://"));
    assert!(
        config.production_url.is_empty(),
        "the production URL is a secret: export.env"
    );
}

#[test]
fn the_example_status_config_parses() {
    let text = read("deploy/config/status.toml");
    let config: kd_ops::status::collect::StatusConfig =
        toml::from_str(&text).unwrap_or_else(|e| panic!("deploy/config/status.toml: {e}"));
    assert_eq!(config.gatherers.len(), 3);
    assert!(config.dedup.is_some());
}

#[test]
fn the_example_dedup_config_loads() {
    // The production URL is a secret (dedup.env); give it the way the environment would.
    let args = kd_dedup::cli::DedupArgs {
        config: Some(root().join("deploy/config/dedup.toml")),
        production: Some("postgres://kalshi_dedup@db.internal:5432/kalshi".into()),
        gatherers: Vec::new(),
        listen: None,
        rest_url: None,
        batch_size: None,
    };
    let config = args
        .load()
        .unwrap_or_else(|e| panic!("deploy/config/dedup.toml: {e}"));
    assert_eq!(config.gatherers.len(), 3);
    assert_eq!(
        config.listen.port(),
        8720,
        "prometheus.yml scrapes the dedup on 8720"
    );
    let prometheus = read("deploy/prometheus/prometheus.yml");
    assert!(prometheus.contains("dedup.internal:8720"));
    for g in &config.gatherers {
        let host = g.url.trim_start_matches("https://");
        assert!(
            prometheus.contains(host),
            "{host} missing from prometheus.yml"
        );
    }
    let env = read("deploy/config/dedup.env.example");
    assert!(env.contains("KALSHI_DATA_DEDUP_PRODUCTION="));
}
