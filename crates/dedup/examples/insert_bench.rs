//! Production write throughput: unique rows/s when three gatherers carry identical copies,
//! against a bare binary `COPY` of the same rows into the same table, in the same run.
//!
//! ```sh
//! cargo run --release -p kd-dedup --example insert_bench -- [UNIQUE_ROWS] [BATCH]
//! ```
//! Needs PostgreSQL (`KALSHI_DATA_TEST_PG`, default postgres://postgres@127.0.0.1:5432/postgres);
//! creates and drops its own databases. Figures only — nothing is asserted.

use kd_core::pull::PulledRecord;
use kd_core::records::{OrderbookDelta, WirePos};
use kd_core::{Count, Price, Record, Side, Table, TimestampUs};
use kd_dedup::merge::{Batch, RecentIdentities, merge, merge_with};
use kd_dedup::store::{self, CursorUpdate, Store};
use kd_testkit::pg::TestDb;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Realistic deltas: 500 markets, µs timestamps rising, prices and sizes varying.
fn deltas(n: usize) -> Vec<Record> {
    let start = TimestampUs::now().micros();
    (0..n)
        .map(|i| {
            let i64i = i as i64;
            Record::Delta(OrderbookDelta {
                ticker: format!("KXBENCH-26NOV27-T{}", i % 500),
                exchange_ts: TimestampUs::from_micros(start + i64i * 37),
                side: if i % 2 == 0 { Side::Yes } else { Side::No },
                price: Price::new((i64i * 7919) % 99_000 + 1_000).unwrap_or(Price::ZERO),
                delta: Count::new((i64i % 400) - 200),
                occurrence: 0,
                received_at: TimestampUs::from_micros(start + i64i * 37 + 900),
                pos: WirePos {
                    sid: Some(1),
                    seq: Some(i as u64),
                },
            })
        })
        .collect()
}

fn pulled(rows: &[Record], first_seq: u64) -> Vec<PulledRecord> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| PulledRecord {
            seq: first_seq + i as u64 + 1,
            record: r.clone(),
        })
        .collect()
}

fn cursors(last_seq: u64) -> Vec<CursorUpdate> {
    (0..3)
        .map(|g| CursorUpdate {
            gatherer: format!("g{g}"),
            table: Table::Deltas,
            last_seq,
            store_id: String::new(),
        })
        .collect()
}

async fn fresh(prefix: &str) -> Result<(TestDb, Store)> {
    let db = TestDb::create(prefix).await?;
    let s = store::open(&db.url).await?;
    s.migrate().await?;
    Ok((db, s))
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rows = deltas(n);
    println!("{n} unique orderbook deltas, 3 identical copies, pulls of {batch} rows");

    // (a) The deduplicator's normal case: the three copies of a batch arrive together and are
    // merged in memory; one transaction inserts the survivors and moves three cursors.
    let (db_a, s_a) = fresh("bench_merged").await?;
    let t = Instant::now();
    for (k, chunk) in rows.chunks(batch).enumerate() {
        let first = (k * batch) as u64;
        let batches = (0..3)
            .map(|g| Batch {
                gatherer: g,
                records: pulled(chunk, first),
                ..Batch::default()
            })
            .collect();
        let merged = merge(batches);
        s_a.insert_unique(
            Table::Deltas,
            &merged.records,
            &cursors(first + chunk.len() as u64),
        )
        .await?;
    }
    let merged_secs = t.elapsed().as_secs_f64();
    assert_eq!(s_a.count(Table::Deltas).await?, n as u64);

    // (b) The usual live case: copies arrive a few milliseconds apart, so each lands in its own
    // transaction; the writer's memory of committed identities drops the late copies.
    let (db_b, s_b) = fresh("bench_serial").await?;
    let mut recent = RecentIdentities::new(500_000);
    let t = Instant::now();
    for (k, chunk) in rows.chunks(batch).enumerate() {
        let first = (k * batch) as u64;
        for g in 0..3 {
            let merged = merge_with(
                vec![Batch {
                    gatherer: g,
                    records: pulled(chunk, first),
                    ..Batch::default()
                }],
                Some(&recent),
            );
            let c = vec![CursorUpdate {
                gatherer: format!("g{g}"),
                table: Table::Deltas,
                last_seq: first + chunk.len() as u64,
                store_id: String::new(),
            }];
            s_b.insert_unique(Table::Deltas, &merged.records, &c)
                .await?;
            recent.remember(merged.keys.iter().copied());
        }
    }
    let serial_secs = t.elapsed().as_secs_f64();
    assert_eq!(s_b.count(Table::Deltas).await?, n as u64);

    // (b') Worst case: the same without that memory (after a restart): the database absorbs
    // two copies of three through the staging path.
    let (db_w, s_w) = fresh("bench_worst").await?;
    let t = Instant::now();
    for (k, chunk) in rows.chunks(batch).enumerate() {
        let first = (k * batch) as u64;
        for g in 0..3 {
            let merged = merge(vec![Batch {
                gatherer: g,
                records: pulled(chunk, first),
                ..Batch::default()
            }]);
            let c = vec![CursorUpdate {
                gatherer: format!("g{g}"),
                table: Table::Deltas,
                last_seq: first + chunk.len() as u64,
                store_id: String::new(),
            }];
            s_w.insert_unique(Table::Deltas, &merged.records, &c)
                .await?;
        }
    }
    let worst_secs = t.elapsed().as_secs_f64();
    assert_eq!(s_w.count(Table::Deltas).await?, n as u64);

    // (c) The baseline: a bare binary COPY of the same unique rows into the same table.
    let (db_c, s_c) = fresh("bench_copy").await?;
    let Store::Postgres(pg) = &s_c else {
        return Err("expected PostgreSQL".into());
    };
    let t = Instant::now();
    for chunk in rows.chunks(batch) {
        pg.bare_copy(Table::Deltas, chunk).await?;
    }
    let copy_secs = t.elapsed().as_secs_f64();
    assert_eq!(s_c.count(Table::Deltas).await?, n as u64);

    let per_sec = |secs: f64| n as f64 / secs;
    println!(
        "merged copies:   {:>10.0} unique rows/s ({:>10.0} rows/s read)  {merged_secs:.2} s",
        per_sec(merged_secs),
        3.0 * per_sec(merged_secs)
    );
    println!(
        "separate copies: {:>10.0} unique rows/s ({:>10.0} rows/s read)  {serial_secs:.2} s",
        per_sec(serial_secs),
        3.0 * per_sec(serial_secs)
    );
    println!(
        "no memory:       {:>10.0} unique rows/s ({:>10.0} rows/s read)  {worst_secs:.2} s",
        per_sec(worst_secs),
        3.0 * per_sec(worst_secs)
    );
    println!(
        "bare COPY:       {:>10.0} rows/s                                  {copy_secs:.2} s",
        per_sec(copy_secs)
    );
    println!(
        "ratio to bare COPY: merged {:.2}, separate {:.2}, no memory {:.2}",
        copy_secs / merged_secs,
        copy_secs / serial_secs,
        copy_secs / worst_secs
    );
    drop((s_a, s_b, s_w, s_c));
    db_w.drop_db().await?;
    db_a.drop_db().await?;
    db_b.drop_db().await?;
    db_c.drop_db().await?;
    Ok(())
}
