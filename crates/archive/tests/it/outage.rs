//! The S3 endpoint unreachable for a minute (issue 17): the continuous exporter, running over a
//! real PostgreSQL production, fails its cycles while `s3s-fs` is stopped, retries with backoff,
//! and once the server is back on the same port and folder catches up by itself; the archive
//! then equals production row by row (the independent pyarrow reader, `tests/archive_rows.py`).

use crate::support::{HOUR, S3Server, TestResult, archive_rows, day0, synthetic};
use kd_archive::production::ProductionSource;
use kd_archive::server::Health;
use kd_archive::{Archive, ExportConfig, Exporter, WindowSource, layout};
use kd_core::{Table, TimestampUs};
use kd_testkit::wait::until;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const OUTAGE: Duration = Duration::from_secs(60);
const HOURS: i64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_for_a_minute_the_exporter_catches_up() -> TestResult {
    let Some(mut server) = S3Server::start("kd-outage")? else {
        return Ok(());
    };
    let db = kd_testkit::pg::TestDb::create("archive_s3_outage").await?;
    let result = run(&db.url, &mut server).await;
    db.drop_db().await?;
    result
}

async fn run(url: &str, server: &mut S3Server) -> TestResult {
    let store = kd_production::open(url).await?;
    store.migrate().await?;
    let generated = synthetic(HOURS, 300, 5);
    for table in Table::ALL {
        store
            .insert_batch(table, generated.records(table), &[])
            .await?;
    }
    let mut source = ProductionSource::new(store.clone());
    source.start = Some(day0());
    let archive = Archive::open("s3://kd-outage/archive/v1", &server.options())?;
    let config = ExportConfig {
        // Day windows: the data is from January and the exporter catches up to now, one window
        // after another, table after table — with 30-minute windows that was ~16,000 empty
        // windows a table, and the last tables' watermarks reached the data's end only after
        // minutes of empty steps (the first failure of this test, not an outage effect).
        window: Some("1d".parse()?),
        ..ExportConfig::default()
    };
    let health = Arc::new(Health::default());
    let exporter =
        Arc::new(Exporter::new(source, archive, config).with_health(Arc::clone(&health)));
    // The first two steps go out while S3 is up; then the server stops with the rest due.
    let plan = exporter.plan(TimestampUs::now()).await?;
    for step in plan.steps.iter().take(2) {
        exporter.run_step(*step, true).await?;
    }
    server.stop()?;
    let stopped = Instant::now();
    let shutdown = CancellationToken::new();
    let running = {
        let exporter = Arc::clone(&exporter);
        let shutdown = shutdown.clone();
        tokio::spawn(async move { exporter.run(shutdown).await })
    };
    let failing = until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || health.report().consecutive_failures >= 2,
    )
    .await;
    assert!(failing, "cycles must fail while S3 is down");
    // The outage itself: a fixed length by design.
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    let failures_during = health.report().consecutive_failures;
    let error_during = health.report().last_error.unwrap_or_default();
    server.restart()?;
    let restarted = Instant::now();
    let end = TimestampUs::from_micros(day0().micros() + HOURS * HOUR);
    let src = exporter.source();
    let caught = until(
        Duration::from_secs(180),
        Duration::from_millis(100),
        async || {
            let mut all = true;
            for table in Table::ALL {
                let wm = src
                    .watermark(&layout::watermark_name(table))
                    .await
                    .ok()
                    .flatten();
                all &= wm.is_some_and(|w| w >= end);
            }
            all && health.report().consecutive_failures == 0
        },
    )
    .await;
    assert!(caught, "every table exported after S3 returned");
    let caught_up = restarted.elapsed();
    shutdown.cancel();
    running.await?;

    let Some(archived) = archive_rows(&server.bucket_dir().join("archive").join("v1"))? else {
        return Ok(());
    };
    let mut produced: BTreeMap<String, Vec<(String, i64, String)>> = BTreeMap::new();
    for table in Table::ALL {
        let mut rows: Vec<_> = src
            .read_window(table, day0(), end)
            .await?
            .iter()
            .map(kd_archive::schema::row_name)
            .collect();
        rows.sort();
        produced.insert(table.name().to_string(), rows);
    }
    let mut counts = Vec::new();
    for (table, rows) in &produced {
        let got = archived.get(table).cloned().unwrap_or_default();
        counts.push(format!("{table}={}/{}", got.len(), rows.len()));
        assert_eq!(&got, rows, "{table}: archive ≠ production");
    }
    println!(
        "FIGURES archive-s3-outage outage_s={} failed_cycles_during={failures_during} \
         caught_up_after_restart_s={:.1} archived/production {}",
        OUTAGE.as_secs(),
        caught_up.as_secs_f64(),
        counts.join(" ")
    );
    assert!(failures_during >= 2, "cycles must fail while S3 is down");
    assert!(!error_during.is_empty());
    Ok(())
}
