//! `--quick --json`: the smoke mode CI runs. Checks the shape of the figures, never their size.

use kd_bench::{BenchArgs, REQUIRED_KEYS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_json_has_every_key_as_a_number_or_null_with_a_reason()
-> Result<(), Box<dyn std::error::Error>> {
    let mut args = BenchArgs::quick();
    // Use the test PostgreSQL when the environment names one; null-with-reason otherwise.
    args.production = std::env::var("KALSHI_DATA_BENCH_PG").ok();
    // The platform stage runs `kalshi-data up`: the workspace's binary when it has been built
    // (this test binary lives in target/<profile>/deps/, the binary one level up). Without it
    // the platform figures are null with a reason.
    args.gatherer_exe = std::env::current_exe().ok().and_then(|t| {
        let exe = t.parent()?.parent()?.join("kalshi-data");
        exe.is_file().then_some(exe)
    });
    let report = kd_bench::run(&args).await?;
    let json: serde_json::Value = serde_json::from_str(&report.to_json().to_string())?;
    eprintln!("{json}");
    for key in REQUIRED_KEYS {
        let v = &json[key];
        assert!(
            v.is_number() || (v.is_null() && json["reasons"][key].is_string()),
            "{key}: {v} (reason {})",
            json["reasons"][key]
        );
    }
    // The stages that need nothing outside this process must have produced figures.
    for key in [
        "parse_msgs_per_s",
        "gatherer_msgs_per_s",
        "dedup_sqlite_rows_per_s",
    ] {
        assert!(
            json[key].is_number(),
            "{key} not measured: {}",
            json["reasons"][key]
        );
    }
    Ok(())
}
