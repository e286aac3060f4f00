//! The local store and the pull API over real HTTP: rows after a cursor, in order, no gaps,
//! while writes continue; acknowledgements; retention keeps what is not acknowledged; sequence
//! numbers never reused across restarts.

use crate::common;
use kd_core::pull::{PullResponse, PulledRecord};
use kd_core::records::{TradeSource, WirePos};
use kd_core::{Count, Price, Record, Table, TimestampUs, Trade};
use kd_gatherer::config::GathererConfig;
use kd_gatherer::store::{ReadPool, WriteConn};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn trade(n: u64) -> Record {
    Record::Trade(Trade {
        trade_id: format!("t-{n}"),
        ticker: format!("M-{}", n % 7),
        exchange_ts: TimestampUs::from_micros(1_700_000_000_000_000 + n as i64),
        yes_price: Price::new(40_000 + (n % 100) as i64).unwrap_or(Price::ZERO),
        no_price: Price::new(60_000 - (n % 100) as i64).unwrap_or(Price::ZERO),
        count: Count::new(100 + n as i64),
        taker_side: Some(kd_core::Side::Yes),
        is_block_trade: false,
        source: TradeSource::Ws,
        received_at: TimestampUs::now(),
        pos: WirePos {
            sid: Some(3),
            seq: Some(n),
        },
    })
}

fn test_config(dir: &std::path::Path) -> GathererConfig {
    GathererConfig {
        gatherer_id: "g-test".into(),
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or(GathererConfig::default().listen),
        // Nothing to connect to in these tests: the pipeline idles.
        rest_url: "http://127.0.0.1:9/trade-api/v2".into(),
        ws_url: "ws://127.0.0.1:9/trade-api/ws/v2".into(),
        ..GathererConfig::default()
    }
}

#[test]
fn records_round_trip_exactly_and_sequences_survive_reopen() -> TestResult {
    // Writes a store: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.blocking_read();
    let dir = tempfile::tempdir()?;
    let written: Vec<Record> = (0..50).map(trade).collect();
    {
        let mut w = WriteConn::open(dir.path())?;
        let heads = w.insert_batch(&written)?;
        assert_eq!(heads.get(Table::Trades), 50);
        w.ack(Table::Trades, 50, TimestampUs::now())?;
        // Everything acknowledged and old: retention empties the table.
        let deleted = w.retention(TimestampUs::from_micros(i64::MAX))?;
        assert_eq!(deleted[0], 50);
        assert_eq!(w.count(Table::Trades)?, 0);
    }
    let mut w = WriteConn::open(dir.path())?;
    assert_eq!(
        w.heads().get(Table::Trades),
        50,
        "high-water mark survives an empty table"
    );
    let heads = w.insert_batch(&written[..1])?;
    assert_eq!(
        heads.get(Table::Trades),
        51,
        "a sequence number is never reused"
    );
    let pool = ReadPool::new(dir.path())?;
    let rows = pool.pull(Table::Trades, 0, 10)?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].seq, 51);
    assert_eq!(rows[0].record, written[0]);
    Ok(())
}

/// The pull API copies stored bodies into its answer instead of decoding and encoding them:
/// what it sends must decode to exactly the records a decoding read returns.
#[test]
fn raw_pull_pages_decode_to_the_stored_records() -> TestResult {
    // Writes a store: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.blocking_read();
    let dir = tempfile::tempdir()?;
    let written = kd_testkit::fixtures::one_of_each();
    let mut w = WriteConn::open(dir.path())?;
    w.insert_batch(&written)?;
    w.insert_batch(&written)?;
    let pool = ReadPool::new(dir.path())?;
    for table in Table::ALL {
        for after in [0, 1, 2] {
            let decoded = pool.pull(table, after, 100)?;
            let page = pool.pull_json(table, after, 100)?;
            let raw: Vec<PulledRecord> = serde_json::from_slice(&page.json)?;
            assert_eq!(raw, decoded, "{table:?} after {after}");
            assert_eq!(page.rows, decoded.len());
            assert_eq!(page.last_seq, decoded.last().map(|r| r.seq));
        }
        assert_eq!(pool.pull(table, 0, 100)?.len(), 2, "{table:?}");
    }
    let empty = pool.pull_json(Table::Trades, 100, 10)?;
    assert_eq!(&empty.json[..], b"[]");
    Ok(())
}

#[test]
fn retention_never_deletes_unacknowledged_or_young_rows() -> TestResult {
    // Writes a store: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.blocking_read();
    let dir = tempfile::tempdir()?;
    let mut w = WriteConn::open(dir.path())?;
    let mut rows: Vec<Record> = (0..100).map(trade).collect();
    // Rows 0..60 are old (received long ago), 60..100 young.
    for (i, r) in rows.iter_mut().enumerate() {
        if let Record::Trade(t) = r {
            t.received_at = TimestampUs::from_micros(if i < 60 { 1_000 } else { 9_000_000 });
        }
    }
    w.insert_batch(&rows)?;
    let cutoff = TimestampUs::from_micros(5_000_000);
    // Nothing acknowledged: nothing deleted, however old.
    assert_eq!(w.retention(cutoff)?[0], 0);
    // Acknowledged through 40: only 1..=40 go.
    w.ack(Table::Trades, 40, TimestampUs::now())?;
    assert_eq!(w.retention(cutoff)?[0], 40);
    // Acknowledged through 100: only the old ones (41..=60) go, the young stay.
    w.ack(Table::Trades, 100, TimestampUs::now())?;
    assert_eq!(w.retention(cutoff)?[0], 20);
    assert_eq!(w.count(Table::Trades)?, 40);
    // An ack beyond the head is refused; an older ack never moves the cursor back.
    assert!(w.ack(Table::Trades, 101, TimestampUs::now()).is_err());
    w.ack(Table::Trades, 10, TimestampUs::now())?;
    assert_eq!(w.acks()?.get(Table::Trades), 100);
    Ok(())
}

#[test]
fn a_store_belongs_to_one_gatherer() -> TestResult {
    // Writes a store: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.blocking_read();
    let dir = tempfile::tempdir()?;
    WriteConn::open(dir.path())?.claim_gatherer_id("a")?;
    WriteConn::open(dir.path())?.claim_gatherer_id("a")?;
    assert!(WriteConn::open(dir.path())?.claim_gatherer_id("b").is_err());
    Ok(())
}

async fn pull(
    client: &reqwest::Client,
    base: &str,
    after: u64,
    limit: usize,
    wait_ms: u64,
) -> Result<PullResponse, reqwest::Error> {
    client
        .get(format!(
            "{base}/v1/pull/trades?after={after}&limit={limit}&wait_ms={wait_ms}"
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_returns_exactly_the_rows_after_a_cursor_while_writes_continue() -> TestResult {
    // Writes a store: never beside a test that asserts on process-wide counters.
    let _shared = common::SERIAL.read().await;
    let dir = tempfile::tempdir()?;
    let handle = kd_gatherer::start(test_config(dir.path()), CancellationToken::new()).await?;
    let base = format!("http://{}", handle.addr());
    let client = reqwest::Client::new();
    let sender = handle.test_sender().ok_or("no record sender")?;
    const TOTAL: u64 = 20_000;
    let producer = tokio::spawn(async move {
        for n in 0..TOTAL {
            if sender.send(trade(n)).await.is_err() {
                return;
            }
            if n % 1000 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut cursor = 0;
    let mut seen: Vec<PulledRecord> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < TOTAL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} rows after 60 s",
            seen.len()
        );
        let page = pull(&client, &base, cursor, 777, 1_000).await?;
        for r in &page.records {
            assert_eq!(r.seq, cursor + 1, "rows come in order with no gap");
            cursor = r.seq;
        }
        assert!(page.head >= cursor);
        seen.extend(page.records);
    }
    producer.await?;
    for (i, r) in seen.iter().enumerate() {
        match &r.record {
            Record::Trade(t) => assert_eq!(t.trade_id, format!("t-{i}")),
            other => panic!("unexpected record {other:?}"),
        }
    }
    // Caught up: a long-poll waits, then returns nothing; a new row wakes it early.
    let started = tokio::time::Instant::now();
    let empty = pull(&client, &base, cursor, 10, 200).await?;
    assert!(empty.records.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(190));
    let waiting = {
        let client = client.clone();
        let base = base.clone();
        tokio::spawn(async move { pull(&client, &base, cursor, 10, 20_000).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let woke_at = tokio::time::Instant::now();
    handle
        .test_sender()
        .ok_or("no sender")?
        .send(trade(TOTAL))
        .await?;
    let page = waiting.await??;
    assert_eq!(page.records.len(), 1);
    assert!(
        woke_at.elapsed() < Duration::from_secs(5),
        "long-poll woken by the commit"
    );

    // Acknowledge, then check /health reports it.
    let status = client
        .post(format!("{base}/v1/ack/trades"))
        .json(&serde_json::json!({ "cursor": cursor }))
        .send()
        .await?
        .status();
    assert_eq!(status, 204);
    let status = client
        .post(format!("{base}/v1/ack/trades"))
        .json(&serde_json::json!({ "cursor": cursor + 1_000 }))
        .send()
        .await?
        .status();
    assert_eq!(status, 400, "an ack beyond the head is refused");
    let unknown = client
        .get(format!("{base}/v1/pull/nope"))
        .send()
        .await?
        .status();
    assert_eq!(unknown, 404);
    handle.stop().await?;
    Ok(())
}

/// Issue 17's pull bounds: a 50,000-row page asked for is cut at `MAX_PAGE_BYTES` (8 MiB; on
/// main the whole 50,000 rows, about 15 MB, came in one body), and pulling on from the last
/// row still delivers every row once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_page_is_bounded_in_bytes_and_paging_on_loses_nothing() -> TestResult {
    let _shared = common::SERIAL.read().await;
    let dir = tempfile::tempdir()?;
    const TOTAL: u64 = 50_000;
    let written: Vec<Record> = (0..TOTAL)
        .map(|n| {
            let Record::Trade(mut t) = trade(n) else {
                unreachable!("trade() makes trades")
            };
            // A longer id, as Kalshi's UUIDs plus room: about 330 bytes a row.
            t.trade_id = format!("{n:08}-{}", "f".repeat(100));
            Record::Trade(t)
        })
        .collect();
    {
        let mut w = WriteConn::open(dir.path())?;
        w.claim_gatherer_id("g-test")?;
        w.insert_batch(&written)?;
    }
    let handle = kd_gatherer::start(test_config(dir.path()), CancellationToken::new()).await?;
    let base = format!("http://{}", handle.addr());
    let client = reqwest::Client::new();
    let bound = kd_gatherer::store::read::MAX_PAGE_BYTES;
    let mut after = 0;
    let (mut pages, mut largest, mut rows) = (0, 0_usize, 0_u64);
    while rows < TOTAL {
        let body = client
            .get(format!("{base}/v1/pull/trades?after={after}&limit=50000"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        largest = largest.max(body.len());
        let page: PullResponse = serde_json::from_slice(&body)?;
        let Some(last) = page.records.last() else {
            return Err(format!("empty page after {after} with {rows} rows seen").into());
        };
        for (i, r) in page.records.iter().enumerate() {
            assert_eq!(r.seq, after + 1 + i as u64, "rows out of order or missing");
        }
        rows += page.records.len() as u64;
        after = last.seq;
        pages += 1;
    }
    println!(
        "FIGURES pull-page-bound: {TOTAL} rows of ~330 B in {pages} pages, largest body {largest} B (bound {bound} B)"
    );
    assert_eq!(rows, TOTAL);
    assert!(pages >= 2, "one page held all {TOTAL} rows ({largest} B)");
    assert!(
        largest <= bound + 4096,
        "a page of {largest} B exceeds the bound"
    );

    // 24 such pages at once: at most MAX_CONCURRENT_PULLS (8) are read together, the rest wait
    // for a permit (counted) and are answered in full all the same.
    let _ = kd_core::telemetry::metrics_handle();
    let concurrent = 24;
    let mut tasks = Vec::new();
    for _ in 0..concurrent {
        let (client, url) = (
            client.clone(),
            format!("{base}/v1/pull/trades?after=0&limit=50000"),
        );
        tasks.push(tokio::spawn(async move {
            let page: PullResponse = client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            Ok::<_, reqwest::Error>(page.records.len())
        }));
    }
    for t in tasks {
        let n = t.await??;
        assert!(
            n > 0 && (n as u64) < TOTAL,
            "a concurrent page held {n} rows"
        );
    }
    let waits = common::metric(&kd_core::telemetry::render_metrics(), "pull_waits_total");
    println!(
        "FIGURES pull-concurrency: {concurrent} concurrent 8 MiB pulls, {waits} waited for a permit"
    );
    assert!(
        waits > 0.0,
        "no pull waited: more than 8 pages were read at once"
    );
    handle.stop().await?;
    Ok(())
}
