//! The continuous exporter's `/health` and `/metrics` over real HTTP on port 0: every series
//! the alert rules and the dashboard read is served from the start, and `/health` reports the
//! watermarks the export reached, then a failing archive.

use crate::support::{TestResult, synthetic};
use kd_archive::server::{self, Health};
use kd_archive::{Archive, ExportConfig, Exporter, S3Options, WindowLen};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn get_json(url: &str) -> Result<serde_json::Value, reqwest::Error> {
    reqwest::get(url).await?.error_for_status()?.json().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_follow_the_export() -> TestResult {
    let dir = tempfile::tempdir()?;
    let archive_dir = dir.path().join("archive");
    let archive = Archive::open(
        &format!("file://{}", archive_dir.display()),
        &S3Options::default(),
    )?;
    let config = ExportConfig {
        settle_secs: 0,
        window: Some(WindowLen::DAY),
        poll_interval_secs: 1,
        listen: "127.0.0.1:0".parse()?,
        ..ExportConfig::default()
    };
    let health = Arc::new(Health::default());
    let shutdown = CancellationToken::new();
    let served = server::serve(config.listen, Arc::clone(&health), shutdown.clone()).await?;
    assert_ne!(served.addr.port(), 0, "port 0 picks a free port");
    let base = format!("http://{}", served.addr);

    // Before the first cycle: answering, `starting`, and every series already registered.
    assert_eq!(
        get_json(&format!("{base}/health")).await?["status"],
        "starting"
    );
    let exporter = Exporter::new(synthetic(3, 200, 7), archive, config).with_health(health);
    let task_stop = shutdown.clone();
    let task = tokio::spawn(async move { exporter.run(task_stop).await });

    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let report = get_json(&format!("{base}/health")).await?;
        if report["status"] == "ok" {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "export never completed: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(report["cycles"].as_u64().unwrap_or(0) >= 1, "{report}");
    assert!(report["last_error"].is_null(), "{report}");
    for table in [
        "trades",
        "deltas",
        "snapshots",
        "tickers",
        "lifecycle",
        "gaps",
    ] {
        let t = &report["tables"][table];
        assert!(t["watermark"].is_string(), "{table}: {report}");
        assert!(t["lag_seconds"].as_f64().unwrap_or(-1.0) >= 0.0, "{report}");
    }

    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    for needle in [
        "export_lag_seconds{table=\"deltas\"}",
        "export_rows_total{table=\"trades\",tier=\"raw\"}",
        "export_rows_total{table=\"trades\",tier=\"processed\"}",
        "export_rows_total{table=\"hourly_ohlc\",tier=\"aggregates\"}",
        "export_bytes_total{table=\"deltas\",tier=\"raw\"}",
        "export_duration_seconds_count{table=\"deltas\"}",
        "export_errors_total{stage=\"write\"}",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    // The synthetic production was exported: its rows were counted.
    let raw_trades = text
        .lines()
        .find_map(|l| l.strip_prefix("export_rows_total{table=\"trades\",tier=\"raw\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(raw_trades > 0, "{text}");

    shutdown.cancel();
    task.await?;
    served.task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_archive_shows_in_health() -> TestResult {
    let dir = tempfile::tempdir()?;
    let blocked = dir.path().join("archive");
    let archive = Archive::open(
        &format!("file://{}", blocked.display()),
        &S3Options::default(),
    )?;
    // A file where the archive folder was: every put fails (root ignores permissions).
    std::fs::remove_dir_all(&blocked)?;
    std::fs::write(&blocked, b"x")?;
    let config = ExportConfig {
        settle_secs: 0,
        window: Some(WindowLen::DAY),
        listen: "127.0.0.1:0".parse()?,
        ..ExportConfig::default()
    };
    let health = Arc::new(Health::default());
    let shutdown = CancellationToken::new();
    let served = server::serve(config.listen, Arc::clone(&health), shutdown.clone()).await?;
    let base = format!("http://{}", served.addr);
    let exporter = Exporter::new(synthetic(3, 200, 7), archive, config).with_health(health);
    let task_stop = shutdown.clone();
    let task = tokio::spawn(async move { exporter.run(task_stop).await });

    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report = get_json(&format!("{base}/health")).await?;
        if report["status"] == "failing" {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "failure never reported: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(report["consecutive_failures"].as_u64().unwrap_or(0) >= 1);
    assert!(report["last_error"].is_string(), "{report}");
    shutdown.cancel();
    task.await?;
    served.task.await?;
    Ok(())
}

#[tokio::test]
async fn a_taken_port_is_an_error() -> TestResult {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let err = server::serve(addr, Arc::new(Health::default()), CancellationToken::new())
        .await
        .err()
        .ok_or("binding a taken port must fail")?;
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    Ok(())
}
