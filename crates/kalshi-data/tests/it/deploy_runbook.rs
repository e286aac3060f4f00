//! The runbook's commands that can run on this machine: the host installation
//! (deploy/install.sh into a staging root, twice, never overwriting configuration) and the
//! production backup / point-in-time-recovery drill (deploy/drills/pitr.sh against a throwaway
//! PostgreSQL cluster).

use crate::deploy_support::{root, run_ok, skip};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn install_sh_lays_out_a_host_and_is_idempotent() {
    let stage = tempfile::tempdir().expect("tempdir");
    let binary = env!("CARGO_BIN_EXE_kalshi-data");
    let install = root().join("deploy/install.sh");
    let r = stage.path();
    run_ok(
        Command::new(&install)
            .arg("--root")
            .arg(r)
            .arg("--binary")
            .arg(binary),
    );

    for unit in [
        "kalshi-data-gatherer@.service",
        "kalshi-data-dedup.service",
        "kalshi-data-export.service",
    ] {
        assert!(
            r.join("etc/systemd/system").join(unit).is_file(),
            "{unit} installed"
        );
    }
    assert_eq!(mode(&r.join("usr/local/bin/kalshi-data")), 0o755);
    assert_eq!(
        mode(&r.join("etc/kalshi-data/gatherer.env.example")),
        0o600,
        "secrets are root-only"
    );
    assert!(r.join("usr/share/doc/kalshi-data/runbook.md").is_file());
    if crate::deploy_support::find_tool("systemd-sysusers").is_some() {
        let passwd = std::fs::read_to_string(r.join("etc/passwd")).expect("passwd");
        assert!(
            passwd.lines().any(|l| l.starts_with("kalshi-data:")),
            "dedicated user created"
        );
    }

    // An operator edits the configuration; a re-install (upgrade) must keep it and keep the
    // previous binary for rollback.
    let edited = r.join("etc/kalshi-data/gatherer-a.toml.example");
    std::fs::write(&edited, "gatherer_id = \"edited\"\n").expect("edit");
    let other = stage.path().join("other-binary");
    std::fs::copy("/bin/true", &other).expect("copy");
    run_ok(
        Command::new(&install)
            .arg("--root")
            .arg(r)
            .arg("--binary")
            .arg(&other),
    );
    assert_eq!(
        std::fs::read_to_string(&edited).expect("read"),
        "gatherer_id = \"edited\"\n"
    );
    assert!(
        r.join("usr/local/bin/kalshi-data.previous").is_file(),
        "rollback binary kept"
    );
}

#[test]
fn production_backup_and_point_in_time_recovery_drill() {
    let script = root().join("deploy/drills/pitr.sh");
    let out = Command::new(&script).output().expect("run pitr drill");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    match out.status.code() {
        Some(0) => assert!(text.contains("pitr drill: PASSED"), "{text}"),
        Some(77) => skip(
            "PITR drill",
            "PostgreSQL server binaries (initdb) not installed",
        ),
        _ => panic!("PITR drill failed:\n{text}"),
    }
}
