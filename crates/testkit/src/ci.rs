//! Tests that need an external tool (promtool, systemd-analyze, s3s-fs, pyarrow, PostgreSQL
//! server binaries) skip loudly on a developer's machine without it; under CI a skip is a
//! failure, since `scripts/test-deps` installs every such tool (`.ci/run` sets `CI=true`).

/// True under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says loudly that a test did not run, so a skipped check is never mistaken for a pass; under
/// CI it panics instead: a missing tool there means the set-up broke.
pub fn skip(test: &str, reason: &str) {
    assert!(
        !in_ci(),
        "{test} cannot run under CI: {reason} (scripts/test-deps should have provided it)"
    );
    eprintln!();
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! SKIPPED {test}: {reason}");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!();
}
