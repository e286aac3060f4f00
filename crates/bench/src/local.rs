//! Gatherer-side stages on one corpus: parse only, the bare baseline (parse + batched SQLite
//! insert, WAL, `synchronous=NORMAL` like the gatherer's store), and the real gatherer
//! (parse + occurrence + its writer queue + its batched durable commits).

use crate::BenchError;
use crate::corpus;
use crate::harness;
use crate::measure::{cpu_time, per_second};
use crate::report::Report;
use kd_core::TimestampUs;
use kd_core::records::{OccurrenceCounter, Record};
use kd_kalshi::parse::{WsFrame, parse_ws, parse_ws_frame};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Rows per transaction of the bare baseline (the gatherer's default `writer_batch_rows`).
const BASELINE_BATCH: usize = 5_000;

/// Parse-only throughput on one core, best of three passes, of what the gatherer parses: text
/// frames (`parse_ws_text`; the socket library has checked their UTF-8). A message that is not
/// UTF-8 goes through `parse_ws` on its bytes, as a binary frame would.
pub fn parse_only(messages: &[Vec<u8>], report: &mut Report) {
    let received = TimestampUs::now();
    let frames: Vec<WsFrame<'_>> = messages
        .iter()
        .map(|m| std::str::from_utf8(m).map_or(WsFrame::Binary(m), WsFrame::Text))
        .collect();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for frame in &frames {
            let _ = std::hint::black_box(parse_ws_frame(*std::hint::black_box(frame), received));
        }
        best = best.min(start.elapsed());
    }
    report.set(
        "parse_msgs_per_s",
        per_second(messages.len() as u64, best),
        "empty corpus",
    );
}

/// The bare baseline: parse + one batched insert per 5,000 rows into a table shaped like the
/// gatherer's (`received_at, subject, exchange_ts, body` JSON).
pub fn sqlite_baseline(
    messages: &[Vec<u8>],
    dir: &Path,
    report: &mut Report,
) -> Result<(), BenchError> {
    let sql = |e: rusqlite::Error| BenchError::stage("sqlite baseline", e);
    let conn = rusqlite::Connection::open(dir.join("baseline.sqlite")).map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql)?;
    conn.execute_batch(
        "CREATE TABLE rows (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL,
         subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);",
    )
    .map_err(sql)?;
    let mut conn = conn;
    let insert_only = |conn: &mut rusqlite::Connection, records: &[Record]| {
        let mut buf = Vec::with_capacity(256);
        for chunk in records.chunks(BASELINE_BATCH) {
            let tx = conn.transaction().map_err(sql)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO rows (received_at, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(sql)?;
                for r in chunk {
                    buf.clear();
                    serde_json::to_writer(&mut buf, r)
                        .map_err(|e| BenchError::stage("sqlite baseline", e))?;
                    stmt.execute(rusqlite::params![
                        r.received_at().micros(),
                        subject(r),
                        r.exchange_ts().micros(),
                        &buf[..]
                    ])
                    .map_err(sql)?;
                }
            }
            tx.commit().map_err(sql)?;
        }
        Ok::<(), BenchError>(())
    };

    // Parse + insert, as the gatherer does it.
    let start = Instant::now();
    let (records, failed) = corpus::parse_all(messages, TimestampUs::now());
    insert_only(&mut conn, &records)?;
    let both = start.elapsed();
    report.set(
        "baseline_parse_insert_msgs_per_s",
        per_second(messages.len() as u64, both),
        "empty corpus",
    );
    report.note("corpus_parse_failures", failed as u64);

    // Insert only, the same rows again.
    let start = Instant::now();
    insert_only(&mut conn, &records)?;
    report.set(
        "baseline_sqlite_insert_rows_per_s",
        per_second(records.len() as u64, start.elapsed()),
        "empty corpus",
    );
    Ok(())
}

fn subject(r: &Record) -> Option<&str> {
    match r {
        Record::Trade(t) => Some(&t.ticker),
        Record::Delta(d) => Some(&d.ticker),
        Record::Snapshot(s) => Some(&s.ticker),
        Record::Ticker(t) => Some(&t.ticker),
        _ => None,
    }
}

/// The real gatherer, fed from the parser through its own writer queue (the router's entry):
/// messages/s to durable local commit, CPU per 10,000 messages. Feeds `copies` gatherers the
/// same stream (for the deduplicator stage); the rate reported is the first one's, fed alone.
pub async fn gatherers(
    sim: &kd_sim::SimHandle,
    messages: &[Vec<u8>],
    dirs: &[&Path],
    shutdown: &CancellationToken,
    report: &mut Report,
) -> Result<Vec<kd_gatherer::GathererHandle>, BenchError> {
    let mut handles = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = format!("bench-{}", (b'a' + i as u8) as char);
        let g = harness::gatherer(sim, &id, dir, shutdown).await?;
        let before = harness::committed(&g);
        let cpu0 = cpu_time();
        let start = Instant::now();
        let sent = feed(&g, messages).await?;
        wait_committed(&g, before + sent, Duration::from_secs(600)).await?;
        let elapsed = start.elapsed();
        let cpu = cpu_time().saturating_sub(cpu0);
        if i == 0 {
            report.set(
                "gatherer_msgs_per_s",
                per_second(messages.len() as u64, elapsed),
                "nothing committed",
            );
            report.set(
                "gatherer_cpu_ms_per_10k_msgs",
                (!messages.is_empty())
                    .then(|| cpu.as_secs_f64() * 1e3 * 10_000.0 / messages.len() as f64),
                "empty corpus",
            );
        }
        handles.push(g);
    }
    Ok(handles)
}

async fn feed(g: &kd_gatherer::GathererHandle, messages: &[Vec<u8>]) -> Result<u64, BenchError> {
    let tx = g
        .test_sender()
        .ok_or_else(|| BenchError::msg("gatherer", "writer queue closed"))?;
    let mut occurrences = OccurrenceCounter::default();
    let mut sent = 0;
    for m in messages {
        let Ok(event) = parse_ws(m, TimestampUs::now()) else {
            continue;
        };
        if let Some(r) = corpus::to_record(event, &mut occurrences) {
            tx.send(r)
                .await
                .map_err(|_| BenchError::msg("gatherer", "writer queue closed"))?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Waits (polling the heads watch) until `target` rows are committed.
pub async fn wait_committed(
    g: &kd_gatherer::GathererHandle,
    target: u64,
    limit: Duration,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + limit;
    let mut heads = g.heads();
    while harness::committed(g) < target {
        if Instant::now() > deadline {
            return Err(BenchError::msg("gatherer", "rows not committed in time"));
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), heads.changed()).await;
    }
    Ok(())
}
