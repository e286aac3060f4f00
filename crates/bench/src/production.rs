//! Production-side stages: a scratch PostgreSQL database, the bare `COPY` baseline, the
//! deduplicator merging three identical gatherer copies (PostgreSQL and SQLite), and the
//! exporter reading what the deduplicator wrote.

use crate::BenchError;
use crate::harness;
use crate::measure::per_second;
use crate::report::Report;
use kd_core::TimestampUs;
use kd_core::records::Record;
use std::time::{Duration, Instant};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;

/// A database created for this run on the server of `--production`, dropped at the end, so
/// the bench never writes into a real production database.
#[derive(Debug)]
pub struct ScratchDb {
    admin: String,
    pub name: String,
    pub url: String,
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub(crate) async fn connect(url: &str) -> Result<tokio_postgres::Client, BenchError> {
    // The production URL's TLS settings apply here too: one connect path for production.
    kd_production::postgres::connect_client(url)
        .await
        .map_err(|e| BenchError::stage("postgres connect", e))
}

impl ScratchDb {
    /// Creates `kd_bench_<pid>_<nanos>` on the server of `url` (connecting to `url` itself).
    pub async fn create(url: &str) -> Result<ScratchDb, BenchError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("kd_bench_{}_{nanos}", std::process::id());
        let client = connect(url).await?;
        // Identifiers cannot be bound; the name is digits and a fixed prefix.
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| BenchError::stage("create scratch database", e))?;
        Ok(ScratchDb {
            admin: url.to_string(),
            url: with_db(url, &name),
            name,
        })
    }

    /// Drops the database and its connections.
    pub async fn drop_db(self) -> Result<(), BenchError> {
        let client = connect(&self.admin).await?;
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .map_err(|e| BenchError::stage("drop scratch database", e))
    }
}

/// One generic row per record: the columns of `orderbook_deltas`. Rows other than deltas take
/// their position as `occurrence`, so every row is unique under the deltas' constraint.
fn copy_row(i: usize, r: &Record) -> (&str, i64, &'static str, i64, i64, i64, i64) {
    let pos = i as i64;
    match r {
        Record::Delta(d) => (
            &d.ticker,
            d.exchange_ts.micros(),
            d.side.as_str(),
            d.price.units(),
            d.delta.hundredths(),
            i64::from(d.occurrence),
            d.received_at.micros(),
        ),
        Record::Trade(t) => (
            &t.ticker,
            t.exchange_ts.micros(),
            "yes",
            t.yes_price.units(),
            t.count.hundredths(),
            pos,
            t.received_at.micros(),
        ),
        Record::Ticker(t) => (
            &t.ticker,
            t.exchange_ts.micros(),
            "yes",
            0,
            0,
            pos,
            t.received_at.micros(),
        ),
        other => (
            "",
            other.exchange_ts().micros(),
            "yes",
            0,
            0,
            pos,
            other.received_at().micros(),
        ),
    }
}

/// A PostgreSQL error with the server's message (tokio-postgres shows only "db error").
fn pg_err(stage: &'static str, e: tokio_postgres::Error) -> BenchError {
    match e.as_db_error() {
        Some(db) => BenchError::msg(stage, format!("{}: {}", db.code().code(), db.message())),
        None => BenchError::stage(stage, e),
    }
}

/// Bare binary `COPY` of the same rows, one statement per 50,000 rows (the deduplicator's
/// `max_transaction_rows`): into an unindexed table (the ceiling) and into one with the
/// deltas' unique constraint.
pub async fn copy_baseline(
    url: &str,
    records: &[Record],
    report: &mut Report,
) -> Result<(), BenchError> {
    let client = connect(url).await?;
    let pg = |e| pg_err("COPY baseline", e);
    client
        .batch_execute(
            "CREATE TABLE bench_copy (ticker text NOT NULL, exchange_ts bigint NOT NULL,
               side text NOT NULL, price bigint NOT NULL, delta bigint NOT NULL,
               occurrence bigint NOT NULL, received_at bigint NOT NULL);
             CREATE TABLE bench_copy_unique (LIKE bench_copy,
               UNIQUE (ticker, exchange_ts, side, price, delta, occurrence));",
        )
        .await
        .map_err(pg)?;
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ];
    for (table, key) in [
        ("bench_copy", "baseline_pg_copy_rows_per_s"),
        ("bench_copy_unique", "baseline_pg_copy_unique_rows_per_s"),
    ] {
        let start = Instant::now();
        for (n, chunk) in records.chunks(50_000).enumerate() {
            let offset = n * 50_000;
            let sink = client
                .copy_in(&format!("COPY {table} FROM STDIN BINARY"))
                .await
                .map_err(pg)?;
            let writer = BinaryCopyInWriter::new(sink, &types);
            futures::pin_mut!(writer);
            for (j, r) in chunk.iter().enumerate() {
                let (t, ts, side, price, delta, occ, recv) = copy_row(offset + j, r);
                writer
                    .as_mut()
                    .write(&[&t, &ts, &side, &price, &delta, &occ, &recv])
                    .await
                    .map_err(pg)?;
            }
            writer.finish().await.map_err(pg)?;
        }
        report.set(
            key,
            per_second(records.len() as u64, start.elapsed()),
            "no rows",
        );
    }
    // Not needed afterwards; keeps the scratch database small for the deduplicator stage.
    let _ = client
        .batch_execute("DROP TABLE bench_copy, bench_copy_unique")
        .await;
    Ok(())
}

/// The deduplicator merging `gatherers` (each holding the same `unique` rows) into
/// `production`: unique rows/s from its start until every row is in production.
pub async fn dedup(
    production: &str,
    gatherers: &[kd_gatherer::GathererHandle],
    unique: u64,
    key: &str,
    report: &mut Report,
) -> Result<(), BenchError> {
    // Migrate first so schema creation is not timed.
    let store = kd_production::open(production)
        .await
        .map_err(|e| BenchError::stage("production open", e))?;
    store
        .migrate()
        .await
        .map_err(|e| BenchError::stage("production migrate", e))?;
    let already = harness::production_rows(&store).await?;
    let written_before = rows_written();
    let shutdown = CancellationToken::new();
    let ids: Vec<String> = (0..gatherers.len())
        .map(|i| format!("bench-{}", (b'a' + i as u8) as char))
        .collect();
    let pairs: Vec<(&str, &kd_gatherer::GathererHandle)> = ids
        .iter()
        .map(String::as_str)
        .zip(gatherers.iter())
        .collect();
    let start = Instant::now();
    let handle = harness::dedup(production, &pairs, &shutdown).await?;
    let deadline = start + Duration::from_secs(900);
    // The merge of three copies makes exactly `unique` new rows (plus the trickle the quiet
    // simulator sends, which only makes the wait end a little earlier). Progress is read from
    // the deduplicator's own count of inserted rows: counting the growing tables with SQL ten
    // times a second took a share of the database's CPU from the run being measured. The
    // production count afterwards checks it.
    while rows_written().saturating_sub(written_before) < unique {
        if Instant::now() > deadline {
            handle.shutdown();
            return Err(BenchError::msg(
                "deduplicator",
                "rows not in production in time",
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let _ = handle.stop().await;
    let done = harness::production_rows(&store).await?;
    if done < already + unique {
        return Err(BenchError::msg(
            "deduplicator",
            "its count of inserted rows disagrees with production",
        ));
    }
    report.set(key, per_second(unique, elapsed), "no rows");
    Ok(())
}

/// Rows the in-process deduplicator has inserted so far (`dedup_records_written_total`, every
/// table), from the process's metrics recorder.
fn rows_written() -> u64 {
    kd_core::telemetry::render_metrics()
        .lines()
        .filter(|l| l.starts_with("dedup_records_written_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The exporter over `production`: every table's windows covering the corpus, rows/s.
pub async fn export(
    production: &str,
    from: TimestampUs,
    to: TimestampUs,
    dir: &std::path::Path,
    report: &mut Report,
) -> Result<(), BenchError> {
    use kd_archive::exporter::{ExportConfig, Exporter};
    let source = kd_archive::production::open(production)
        .await
        .map_err(|e| BenchError::stage("export source", e))?;
    let archive_url = format!("file://{}", dir.display());
    let config = ExportConfig {
        production_url: production.to_string(),
        archive_url: archive_url.clone(),
        ..ExportConfig::default()
    };
    let archive = kd_archive::store::Archive::open(&archive_url, &config.s3)
        .map_err(|e| BenchError::stage("archive open", e))?;
    let exporter = Exporter::new(source, archive, config);
    let plan = exporter.plan_range(from, to);
    let start = Instant::now();
    let mut rows = 0_u64;
    for step in plan.steps {
        let r = exporter
            .run_step(step, false)
            .await
            .map_err(|e| BenchError::stage("export", e))?;
        rows += r.rows as u64;
    }
    report.set(
        "export_rows_per_s",
        per_second(rows, start.elapsed()),
        "no rows exported",
    );
    report.note("export_rows", rows);
    Ok(())
}
