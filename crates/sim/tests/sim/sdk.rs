//! Kalshi's official Python SDK (`kalshi-python-sync` 3.34.0, unchanged) calls every REST
//! endpoint the simulator serves and parses every response (`tests/sdk_check.py`).
//!
//! The SDK is installed by `scripts/test-deps.d/kalshi-sdk.sh`. Without it the test skips with
//! a message, except under `CI=true`, where a missing SDK is a failure.

use crate::helpers::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_official_python_sdk_parses_every_response() -> TestResult {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk_check.py");
    let sim = start(kd_sim::SimConfig {
        rate: 5_000,
        combo_markets: 9,
        combo_create_every: Duration::from_millis(200),
        fee_update_every: Duration::from_millis(100),
        create_every: Duration::from_millis(200),
        market_life: Duration::from_secs(2),
        historical_cutoff_lag: Duration::from_secs(1),
        rest_book_cache: Duration::from_millis(500),
        faults: vec![kd_sim::parse_fault("maintenance:3600:60")?],
        ..config()
    })
    .await?;
    // Trades on both sides of the cutoff, settled markets, combos created while running.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.stats().await.trades < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let combo = sim
        .active_combo_markets(1)
        .pop()
        .ok_or("no active combo market")?;
    let event = combo
        .rsplit_once("-M")
        .map(|(e, _)| e.to_string())
        .ok_or("combo ticker")?;
    let base = sim.rest_base();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, &base, &event, &combo])
            .output()
    })
    .await?;
    sim.shutdown().await?;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = match out {
        Ok(out) => out,
        Err(e) if !ci => {
            eprintln!(
                "\n*** SKIPPED SDK TEST: cannot run python3 ({e}); run scripts/test-deps ***\n"
            );
            return Ok(());
        }
        Err(e) => return Err(format!("cannot run python3 under CI=true: {e}").into()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(2) {
        let what = "kalshi-python-sync is not installed (scripts/test-deps.d/kalshi-sdk.sh)";
        if ci {
            return Err(format!("{what}; under CI=true this is a failure").into());
        }
        eprintln!("\n*** SKIPPED SDK TEST: {what}; run scripts/test-deps ***\n");
        return Ok(());
    }
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the SDK rejected responses:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" calls parsed, 0 failed"), "{stdout}");
    Ok(())
}
