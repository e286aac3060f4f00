//! Production over TLS, as an operator of managed PostgreSQL would run it: a private server
//! that accepts only TLS (`hostssl`, a certificate from a test CA: kd-testkit's `TlsPg`).
//! `migrate` with a CA that did not sign the server's certificate, or without TLS, is refused
//! with the cause named and the password absent; `up` with `sslmode=verify-full` runs its
//! deduplicator, exporter and migration through TLS and `verify` (over TLS too) says OK.

use crate::reliability_support::*;
use kd_testkit::pg::tls::TlsPg;
use std::process::Command;
use std::time::Duration;

/// `kalshi-data migrate --production URL`: (success, stdout + stderr).
fn migrate(url: &str) -> Res<(bool, String)> {
    let out = Command::new(BIN)
        .args(["migrate", "--production", url])
        .env_remove("KALSHI_DATA_DEDUP_PRODUCTION")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn migrate_is_refused_with_the_wrong_ca_or_in_clear_and_works_over_tls() -> Res<()> {
    let srv = TlsPg::start()?;
    let wrong_ca = srv.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        srv.other_ca.display()
    ));
    let cases = [
        (wrong_ca, "unknown issuer"),
        (srv.url("sslmode=disable"), "no pg_hba.conf entry"),
    ];
    for (url, cause) in &cases {
        let (ok, text) = migrate(url)?;
        println!("migrate {url}\n  -> {text}");
        assert!(!ok, "migrate succeeded with {url}: {text}");
        assert!(text.contains(cause), "{text}");
        assert!(!text.contains(TlsPg::PASSWORD), "password leaked: {text}");
    }
    let (ok, text) = migrate(&srv.url("sslmode=require"))?;
    assert!(ok && text.contains("version 0 → 5"), "{text}");
    let (ok, text) = migrate(&srv.verify_full())?;
    assert!(ok && text.contains("version 5 → 5"), "{text}");
    assert!(!text.contains(TlsPg::PASSWORD), "password leaked: {text}");
    Ok(())
}

#[test]
fn up_and_verify_over_verify_full() -> Res<()> {
    let srv = TlsPg::start()?;
    let url = srv.verify_full();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let mut up = start_up(
        &dir,
        &UpOpts {
            markets: 40,
            duration: 20,
            production: Some(url.clone()),
            ..UpOpts::default()
        },
    )?;
    up.wait_exit(Duration::from_secs(240))?;
    let verified = verify(&dir, &url)?;
    println!("{}", verified.text);
    verified.assert_ok()?;
    assert!(
        verified.sum(|c| c.ok) > 0,
        "nothing verified: {}",
        verified.text
    );
    // Every row came through TLS: the server refuses anything else (hostssl only).
    let rows = srv
        .pg
        .psql("postgres", "kd", "SELECT count(*) FROM trades")?;
    assert!(rows.parse::<u64>().is_ok_and(|n| n > 0), "trades: {rows}");
    Ok(())
}
