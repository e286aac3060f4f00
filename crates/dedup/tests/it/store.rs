//! Production store tests on both backends: PostgreSQL (a fresh database per test) and SQLite
//! (a temp file per test).

use crate::common::*;
use kd_core::{Table, TimestampUs};
use kd_dedup::store::{self, CursorUpdate, MarketRow, ProductionStatus, Store};

async fn migrate_twice_is_a_noop(s: &Store) -> TestResult {
    assert_eq!(s.schema_version().await?, 0);
    s.migrate().await?;
    assert_eq!(s.schema_version().await?, 5);
    s.migrate().await?;
    assert_eq!(s.schema_version().await?, 5);
    for t in Table::ALL {
        assert_eq!(s.count(t).await?, 0);
    }
    Ok(())
}

async fn insert_twice_counts_duplicates(s: &Store) -> TestResult {
    s.migrate().await?;
    for table in Table::ALL {
        let recs = records(table, 50, BASE_US);
        let first = s.insert_batch(table, &recs, &[]).await?;
        assert_eq!((first.inserted, first.duplicates), (50, 0), "{table}");
        let again = s.insert_batch(table, &recs, &[]).await?;
        assert_eq!((again.inserted, again.duplicates), (0, 50), "{table}");
        // Repeats inside one batch are absorbed too.
        let mut doubled = records(table, 60, BASE_US);
        doubled.extend(records(table, 60, BASE_US));
        let mixed = s.insert_batch(table, &doubled, &[]).await?;
        assert_eq!((mixed.inserted, mixed.duplicates), (10, 110), "{table}");
        assert_eq!(s.count(table).await?, 60, "{table}");
        let back = s
            .read_window(
                table,
                TimestampUs::from_micros(BASE_US),
                TimestampUs::from_micros(BASE_US + 60 * 1_000_000),
            )
            .await?;
        assert_eq!(
            sorted(back.clone()),
            sorted(records(table, 60, BASE_US)),
            "{table}"
        );
        // Sorted by (ticker, exchange_ts).
        let keys: Vec<(String, i64)> = back
            .iter()
            .map(|r| (format!("{:?}", subject(r)), r.exchange_ts().micros()))
            .collect();
        let mut expected = keys.clone();
        expected.sort();
        if table != Table::Gaps {
            assert_eq!(keys, expected, "{table} order");
        }
        // A narrower window.
        let some = s
            .read_window(
                table,
                TimestampUs::from_micros(BASE_US + 10 * 1_000_000),
                TimestampUs::from_micros(BASE_US + 20 * 1_000_000),
            )
            .await?;
        assert_eq!(some.len(), 10, "{table}");
    }
    Ok(())
}

fn subject(r: &kd_core::Record) -> String {
    use kd_core::Record::*;
    match r {
        Trade(t) => t.ticker.clone(),
        Delta(d) => d.ticker.clone(),
        Snapshot(s) => s.ticker.clone(),
        Ticker(t) => t.ticker.clone(),
        Lifecycle(l) => l.subject.clone(),
        Gap(g) => g.ticker.clone().unwrap_or_default(),
    }
}

async fn cursor_moves_only_with_its_rows(s: &Store) -> TestResult {
    s.migrate().await?;
    let a = records(Table::Deltas, 20, BASE_US);
    let cursor = |seq| CursorUpdate {
        gatherer: "g1".into(),
        table: Table::Deltas,
        last_seq: seq,
        store_id: String::new(),
    };
    s.insert_batch(Table::Deltas, &a, &[cursor(5)]).await?;
    assert_eq!(
        s.cursors().await?.get(&("g1".to_string(), Table::Deltas)),
        Some(&5)
    );
    // A batch whose transaction fails after its rows went in (the cursor cannot be stored)
    // must leave neither rows nor cursor behind.
    let b = records(Table::Deltas, 40, BASE_US + 3_600_000_000);
    let failed = s.insert_batch(Table::Deltas, &b, &[cursor(u64::MAX)]).await;
    assert!(failed.is_err());
    assert_eq!(
        s.cursors().await?.get(&("g1".to_string(), Table::Deltas)),
        Some(&5)
    );
    assert_eq!(s.count(Table::Deltas).await?, 20);
    // Cursor-only updates (all duplicates) still advance.
    s.insert_batch(
        Table::Deltas,
        &a,
        &[
            cursor(9),
            CursorUpdate {
                gatherer: "g2".into(),
                table: Table::Deltas,
                last_seq: 3,
                store_id: String::new(),
            },
        ],
    )
    .await?;
    let c = s.cursors().await?;
    assert_eq!(c.get(&("g1".to_string(), Table::Deltas)), Some(&9));
    assert_eq!(c.get(&("g2".to_string(), Table::Deltas)), Some(&3));
    Ok(())
}

async fn far_dates_and_trade_ids(s: &Store) -> TestResult {
    s.migrate().await?;
    // 2099 and 1975: partitions are created on demand.
    let far = 4_102_444_800_000_000_i64 + 12 * 3_600_000_000;
    let old = 157_766_400_000_000_i64;
    for table in Table::ALL {
        let mut recs = records(table, 3, far);
        recs.extend(records(table, 3, old).into_iter().map(|r| rename(r, "old")));
        let out = s.insert_batch(table, &recs, &[]).await?;
        assert_eq!(out.inserted, 6, "{table}");
    }
    // One trade, two copies with different times (WS ts_ms vs REST created_time): one row.
    let t1 = trade(777, BASE_US);
    let t2 = trade(777, BASE_US + 999);
    s.insert_batch(Table::Trades, &[t1], &[]).await?;
    let out = s.insert_batch(Table::Trades, &[t2], &[]).await?;
    assert_eq!((out.inserted, out.duplicates), (0, 1));
    Ok(())
}

fn rename(r: kd_core::Record, prefix: &str) -> kd_core::Record {
    use kd_core::Record::*;
    match r {
        Trade(mut t) => {
            t.trade_id = format!("{prefix}-{}", t.trade_id);
            Trade(t)
        }
        Gap(mut g) => {
            g.gap_id = format!("{prefix}-{}", g.gap_id);
            Gap(g)
        }
        other => other,
    }
}

async fn metadata_and_watermarks(s: &Store) -> TestResult {
    s.migrate().await?;
    assert_eq!(s.watermark("trades").await?, None);
    s.set_watermark("trades", TimestampUs::from_micros(5))
        .await?;
    s.set_watermark("trades", TimestampUs::from_micros(7))
        .await?;
    assert_eq!(
        s.watermark("trades").await?,
        Some(TimestampUs::from_micros(7))
    );
    let mut m = MarketRow {
        ticker: "MKT-1".into(),
        event_ticker: Some("EV".into()),
        title: Some("t".into()),
        kalshi_status: "active".into(),
        status: ProductionStatus::from_kalshi("active"),
        open_time: Some(TimestampUs::from_micros(1)),
        close_time: None,
        result: None,
        raw: "{}".into(),
    };
    s.upsert_markets(std::slice::from_ref(&m)).await?;
    m.kalshi_status = "finalized".into();
    m.status = ProductionStatus::from_kalshi("finalized");
    m.result = Some("yes".into());
    s.upsert_markets(std::slice::from_ref(&m)).await?;
    let back = s.markets().await?;
    assert_eq!(back, vec![m]);
    assert_eq!(back[0].status, Some(ProductionStatus::Settled));
    s.upsert_series(&[store::SeriesRow {
        ticker: "S".into(),
        title: None,
        category: Some("c".into()),
        frequency: None,
        raw: "{}".into(),
    }])
    .await?;
    s.upsert_events(&[store::EventRow {
        event_ticker: "EV".into(),
        series_ticker: Some("S".into()),
        title: None,
        category: None,
        raw: "{}".into(),
    }])
    .await?;
    Ok(())
}

both_backends!(
    migrate_twice_is_a_noop,
    insert_twice_counts_duplicates,
    cursor_moves_only_with_its_rows,
    far_dates_and_trade_ids,
    metadata_and_watermarks
);

#[tokio::test]
async fn postgres_partitions_exist_for_far_days() -> TestResult {
    let (db, s) = pg("partitions").await?;
    s.migrate().await?;
    let far = 4_102_444_800_000_000_i64; // 2100-01-01
    s.insert_batch(Table::Deltas, &records(Table::Deltas, 2, far), &[])
        .await?;
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'orderbook_deltas_p21000101'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(n, 1);
    let ahead: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = 'trades'",
            &[],
        )
        .await?
        .get(0);
    assert!(ahead >= 5, "yesterday..today+3 plus the far day: {ahead}");
    drop(client);
    let _ = task.await;
    drop(s);
    db.drop_db().await?;
    Ok(())
}

/// The figures behind `dedup_pg_connections` / `dedup_pg_max_connections`: connections held
/// open by this test are counted, and the limit is the server's `max_connections`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_usage_counts_open_connections() -> TestResult {
    let (db, s) = pg("connections").await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await?;
        held.push((client, tokio::spawn(conn)));
    }
    let usage = s
        .connection_usage()
        .await?
        .ok_or("PostgreSQL reports connection usage")?;
    let max: String = held[0]
        .0
        .query_one("SHOW max_connections", &[])
        .await?
        .get(0);
    assert_eq!(usage.max, max.parse::<u64>()?);
    // The three held here plus the store's own.
    assert!(usage.in_use >= 4, "{usage:?}");
    assert!(usage.in_use <= usage.max, "{usage:?}");
    for (client, task) in held {
        drop(client);
        let _ = task.await;
    }
    drop(s);
    db.drop_db().await?;
    Ok(())
}

#[tokio::test]
async fn sqlite_has_no_connection_usage() -> TestResult {
    let (_dir, s) = sqlite().await?;
    assert_eq!(s.connection_usage().await?, None);
    Ok(())
}

#[tokio::test]
async fn unknown_urls_are_refused() {
    assert!(matches!(
        store::open("mysql://x").await,
        Err(kd_dedup::StoreError::UnsupportedUrl(_))
    ));
    assert!(matches!(
        store::open("postgres://u:pw@h/db?sslmode=allow").await,
        Err(kd_dedup::StoreError::Tls(_))
    ));
}

/// What the server said reaches the operator: `tokio_postgres` alone displays "db error".
#[tokio::test]
async fn a_refusal_by_postgres_is_shown_in_the_servers_words() -> TestResult {
    let admin = std::env::var("KALSHI_DATA_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let Some((base, _)) = admin.rsplit_once('/') else {
        return Err("admin URL without a database".into());
    };
    let url = format!("{base}/kd_no_such_database_{}", std::process::id());
    let err = match store::open(&url).await {
        Ok(s) => s.ping().await.err(),
        Err(e) => Some(e),
    };
    let Some(err) = err else {
        return Err("a missing database was accepted".into());
    };
    let text = err.to_string();
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains("3D000"), "{text}");
    Ok(())
}
