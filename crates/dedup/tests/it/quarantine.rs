//! Issue 17, cases 1–3, on both production backends: rows production refuses and rows a
//! gatherer cannot read end in `quarantine` while every good row reaches production; a store
//! replaced under the same gatherer id (docs/runbook.md's procedure) loses nothing.
//!
//! The bad rows are written straight into a running gatherer's SQLite store, as a bug or a
//! disk fault would leave them (the parser now refuses such messages at the edge, so they can
//! no longer arrive over the socket).

use crate::common::cluster::*;
use crate::common::*;
use kd_core::{Record, Table};
use kd_testkit::pg::TestDb;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Writes one row with `body` into `table` of the gatherer store in `dir` (another connection
/// than the gatherer's writer, as SQLite allows); returns its sequence number.
fn inject(
    dir: &Path,
    table: &str,
    subject: &str,
    exchange_ts: i64,
    body: &[u8],
) -> Result<u64, rusqlite::Error> {
    let conn = rusqlite::Connection::open(kd_gatherer::store::db_path(dir))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // `table` is one of the test's literals below, never input.
    conn.execute(
        &format!(
            "INSERT INTO {table} (received_at, sid, wire_seq, subject, exchange_ts, body)
             VALUES (?1, NULL, NULL, ?2, ?3, ?4)"
        ),
        rusqlite::params![BASE_US, subject, exchange_ts, body],
    )?;
    Ok(u64::try_from(conn.last_insert_rowid()).unwrap_or(0))
}

/// `expected_counts` with every table named (0 where none).
fn all_counts(records: &[Record]) -> HashMap<Table, u64> {
    let mut counts = expected_counts(records);
    for t in Table::ALL {
        counts.entry(t).or_insert(0);
    }
    counts
}

/// `records` with every trade id prefixed (a trade's identity is its id alone).
fn renamed(records: Vec<Record>, prefix: &str) -> Vec<Record> {
    records
        .into_iter()
        .map(|r| match r {
            Record::Trade(mut t) => {
                t.trade_id = format!("{prefix}{}", t.trade_id);
                Record::Trade(t)
            }
            other => other,
        })
        .collect()
}

fn json(r: &Record) -> Result<Vec<u8>, serde_json::Error> {
    // The store keeps the inner record (the table says which).
    match r {
        Record::Trade(t) => serde_json::to_vec(t),
        Record::Ticker(t) => serde_json::to_vec(t),
        Record::Lifecycle(l) => serde_json::to_vec(l),
        Record::Delta(d) => serde_json::to_vec(d),
        Record::Snapshot(s) => serde_json::to_vec(s),
        Record::Gap(g) => serde_json::to_vec(g),
    }
}

async fn poisoned_rows_are_quarantined(production: &str) -> TestResult {
    let cluster = Cluster::start(2).await?;
    let first = stream(1_500, BASE_US);
    for g in 0..2 {
        cluster.feed(g, &first).await?;
    }
    // Wait for the writers to commit, so the injected rows sit between good ones.
    let settled = kd_testkit::wait::until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || cluster.gatherers[0].heads().borrow().get(Table::Trades) >= 500,
    )
    .await;
    assert!(settled, "gatherer 0 never committed the first trades");
    let dir = cluster.dirs[0].path();
    // Case 1: a trade production cannot partition, a ticker with a NUL byte.
    let Record::Trade(mut far) = trade(90_001, BASE_US) else {
        return Err("fixture".into());
    };
    far.trade_id = "far-future".into();
    far.exchange_ts = kd_core::TimestampUs::from_micros(9_223_372_036_854_775_000);
    inject(
        dir,
        "trades",
        &far.ticker,
        0,
        &json(&Record::Trade(far.clone()))?,
    )?;
    let Record::Ticker(mut nul) = ticker(90_002, BASE_US) else {
        return Err("fixture".into());
    };
    nul.ticker = "MKT-\0X".into();
    inject(
        dir,
        "tickers",
        "MKT-X",
        BASE_US,
        &json(&Record::Ticker(nul))?,
    )?;
    // Storable by the predicate, refused by PostgreSQL only (22021: NUL in `text`).
    let Record::Lifecycle(mut payload) = lifecycle(90_003, BASE_US) else {
        return Err("fixture".into());
    };
    payload.payload = "{\"note\":\"a\u{0}b\"}".into();
    let refused_lifecycle = Record::Lifecycle(payload.clone());
    inject(
        dir,
        "lifecycle",
        &payload.subject,
        BASE_US,
        &json(&refused_lifecycle)?,
    )?;
    // Case 2: a body that is not JSON, and JSON of the wrong shape.
    inject(dir, "trades", "MKT-0", BASE_US, b"\x00not json {")?;
    inject(dir, "deltas", "MKT-0", BASE_US, br#"{"wrong":"shape"}"#)?;
    // More good rows after the bad ones, on both gatherers.
    let second = renamed(stream(1_500, BASE_US + 10_000_000_000), "b-");
    for g in 0..2 {
        cluster.feed(g, &second).await?;
    }
    let mut everything = first.clone();
    everything.extend(second.iter().cloned());
    let pg = production.starts_with("postgres");
    if !pg {
        // SQLite stores the NUL payload as it is: a good row there.
        everything.push(refused_lifecycle.clone());
    }
    let expected = all_counts(&everything);

    let dedup = kd_dedup::start(cluster.dedup_config(production), CancellationToken::new()).await?;
    let started = std::time::Instant::now();
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(60)).await?;
    assert_eq!(counts, expected, "every good row within 60 s");
    let took = started.elapsed();
    assert_production_equals(dedup.store(), &everything).await?;

    let quarantined = dedup.store().quarantined().await?;
    let want = if pg { 5 } else { 4 };
    let reasons: Vec<String> = quarantined
        .iter()
        .map(|q| format!("{}#{} {}", q.table, q.seq, q.reason))
        .collect();
    assert_eq!(quarantined.len(), want, "{reasons:#?}");
    assert!(
        quarantined
            .iter()
            .all(|q| q.gatherer == "g0" && !q.store_id.is_empty())
    );
    let has = |table: Table, needle: &str| {
        quarantined
            .iter()
            .any(|q| q.table == table && q.reason.contains(needle))
    };
    assert!(
        has(Table::Trades, "not storable: field `exchange_ts`"),
        "{reasons:#?}"
    );
    assert!(
        has(Table::Tickers, "control character U+0000"),
        "{reasons:#?}"
    );
    assert!(has(Table::Trades, "unreadable"), "{reasons:#?}");
    assert!(has(Table::Deltas, "unreadable"), "{reasons:#?}");
    if pg {
        assert!(has(Table::Lifecycle, "22021"), "{reasons:#?}");
    }
    assert!(
        quarantined.iter().any(|q| q.body.contains("far-future")),
        "the refused row's body is kept"
    );
    // The cursors pass the bad rows: they reach the gatherer's heads and are acknowledged.
    let heads = *cluster.gatherers[0].heads().borrow();
    let ok = kd_testkit::wait::until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let Ok(cursors) = dedup.store().cursors().await else {
                return false;
            };
            Table::ALL.iter().all(|t| {
                cursors.get(&("g0".to_string(), *t)).copied().unwrap_or(0) >= heads.get(*t)
            })
        },
    )
    .await;
    assert!(ok, "g0's cursors never passed the quarantined rows");

    let base = format!("http://{}", dedup.addr());
    let health: serde_json::Value = reqwest::get(format!("{base}/health")).await?.json().await?;
    assert_eq!(health["quarantine"]["total"], want as u64, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("dedup_quarantined_total{"),
        "dedup_quarantined_total missing"
    );
    println!(
        "quarantine figures ({}): {} good rows in {:.1} s, {} quarantined: {reasons:#?}",
        if pg { "postgres" } else { "sqlite" },
        counts.values().sum::<u64>(),
        took.as_secs_f64(),
        quarantined.len()
    );
    dedup.stop().await?;
    cluster.stop().await
}

/// docs/runbook.md, "Store problems": the store is moved aside and the gatherer starts on a
/// new empty one under the same id — which writes more rows than the old cursor before the
/// deduplicator pulls again.
async fn a_replaced_store_loses_nothing(production: &str) -> TestResult {
    let shutdown = CancellationToken::new();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("gatherer-g0");
    let old = kd_gatherer::start(gatherer_config("g0", &data), shutdown.clone()).await?;
    let first = records(Table::Trades, 969, BASE_US);
    let sender = old.test_sender().ok_or("gatherer stopping")?;
    for r in &first {
        sender.send(r.clone()).await?;
    }
    drop(sender);
    let config = |addr: std::net::SocketAddr| {
        let mut c = Cluster {
            gatherers: Vec::new(),
            dirs: Vec::new(),
            shutdown: CancellationToken::new(),
        }
        .dedup_config(production);
        c.gatherers = vec![kd_dedup::config::GathererEndpoint {
            id: "g0".into(),
            url: format!("http://{addr}"),
            ..Default::default()
        }];
        c
    };
    let dedup = kd_dedup::start(config(old.addr()), CancellationToken::new()).await?;
    let want = all_counts(&first);
    wait_for_counts(dedup.store(), &want, Duration::from_secs(60)).await?;
    let reached = kd_testkit::wait::until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || {
            dedup
                .store()
                .cursors()
                .await
                .ok()
                .and_then(|c| c.get(&("g0".to_string(), Table::Trades)).copied())
                == Some(969)
        },
    )
    .await;
    assert!(reached, "the old store's cursor never reached 969");
    dedup.stop().await?;
    shutdown.cancel();
    old.wait().await?;

    // The runbook: stop, move the store aside, start on a new empty store, same gatherer_id.
    std::fs::rename(&data, dir.path().join("gatherer-g0.broken"))?;
    let shutdown = CancellationToken::new();
    let new = kd_gatherer::start(gatherer_config("g0", &data), shutdown.clone()).await?;
    let second = renamed(
        records(Table::Trades, 2_136, BASE_US + 5_000_000_000),
        "new-",
    );
    let sender = new.test_sender().ok_or("gatherer stopping")?;
    for r in &second {
        sender.send(r.clone()).await?;
    }
    drop(sender);
    let written = kd_testkit::wait::until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || new.heads().borrow().get(Table::Trades) >= 2_136,
    )
    .await;
    assert!(written, "the new store never held 2,136 trades");

    let dedup = kd_dedup::start(config(new.addr()), CancellationToken::new()).await?;
    let mut everything = first.clone();
    everything.extend(second.iter().cloned());
    let want = all_counts(&everything);
    let started = std::time::Instant::now();
    let counts = wait_for_counts(dedup.store(), &want, Duration::from_secs(60)).await?;
    assert_eq!(counts, want, "every row of both stores in production");
    assert_production_equals(dedup.store(), &everything).await?;
    let stores = dedup.store().cursor_stores().await?;
    let cursors = dedup.store().cursors().await?;
    assert_eq!(
        cursors.get(&("g0".to_string(), Table::Trades)),
        Some(&2_136)
    );
    assert!(!stores[&("g0".to_string(), Table::Trades)].is_empty());
    let base = format!("http://{}", dedup.addr());
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    let resets = kd_testkit::prom::value(&metrics, "dedup_gatherer_resets_total");
    assert!(resets >= 1.0, "dedup_gatherer_resets_total = {resets}");
    println!(
        "store replacement ({production_kind}): old cursor 969, new store 2,136 rows, {} trades in production after {:.1} s, resets {resets}",
        counts[&Table::Trades],
        started.elapsed().as_secs_f64(),
        production_kind = if production.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        },
    );
    dedup.stop().await?;
    shutdown.cancel();
    new.wait().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_poisoned_rows_are_quarantined() -> TestResult {
    let db = TestDb::create("quarantine").await?;
    poisoned_rows_are_quarantined(&db.url).await?;
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_poisoned_rows_are_quarantined() -> TestResult {
    let dir = tempfile::tempdir()?;
    poisoned_rows_are_quarantined(&format!("sqlite://{}", dir.path().join("p.db").display())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_replaced_store_loses_nothing() -> TestResult {
    let db = TestDb::create("store_replaced").await?;
    a_replaced_store_loses_nothing(&db.url).await?;
    db.drop_db().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_replaced_store_loses_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    a_replaced_store_loses_nothing(&format!("sqlite://{}", dir.path().join("p.db").display())).await
}
