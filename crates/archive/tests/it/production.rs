//! The exporter over the real production store (PostgreSQL, a fresh database per test): the
//! archive equals production, and the aggregates equal SQL aggregates over production.

use crate::support::{HOUR, MARKETS, TestResult, check_parquet, day0, synthetic};
use kd_archive::production::ProductionSource;
use kd_archive::{Archive, ExportConfig, Exporter, MemorySource, S3Options, WindowSource};
use kd_core::{Table, TimestampUs};
use kd_production::{MarketRow, ProductionStatus};

/// ticker, hour, open, high, low, close, volume, trades, notional.
type OhlcRow = (String, i64, i64, i64, i64, i64, i64, i64, i64);

#[tokio::test]
async fn postgres_production_export_matches_sql_aggregates() -> TestResult {
    let db = kd_testkit::pg::TestDb::create("archive_export").await?;
    let result = run(&db.url).await;
    db.drop_db().await?;
    result
}

async fn run(url: &str) -> TestResult {
    let store = kd_production::open(url).await?;
    store.migrate().await?;
    let generated = synthetic(3, 2000, 21);
    for table in Table::ALL {
        store
            .insert_batch(table, generated.records(table), &[])
            .await?;
    }
    let markets: Vec<MarketRow> = MARKETS
        .iter()
        .filter(|(_, e, _)| !e.is_empty())
        .map(|(m, e, _)| MarketRow {
            ticker: m.to_string(),
            event_ticker: Some(e.to_string()),
            title: None,
            kalshi_status: "active".into(),
            status: Some(ProductionStatus::Open),
            open_time: None,
            close_time: None,
            result: None,
            raw: "{}".into(),
        })
        .collect();
    store.upsert_markets(&markets).await?;

    let mut source = ProductionSource::new(store.clone());
    source.start = Some(day0());
    // Production's own content, as the oracle for the independent reader.
    let mut oracle = MemorySource::new();
    for table in Table::ALL {
        oracle.insert(
            source
                .read_window(
                    table,
                    day0(),
                    TimestampUs::from_micros(day0().micros() + 3 * HOUR),
                )
                .await?,
        );
    }

    let dir = tempfile::tempdir()?;
    let archive = Archive::open(
        &format!("file://{}", dir.path().display()),
        &S3Options::default(),
    )?;
    let config = ExportConfig {
        settle_secs: 0,
        row_group_rows: 4096,
        ..ExportConfig::default()
    };
    let exporter = Exporter::new(source, archive, config);
    let plan = exporter
        .plan(TimestampUs::from_micros(day0().micros() + 25 * HOUR))
        .await?;
    for step in plan.steps {
        exporter.run_step(step, true).await?;
    }
    assert_eq!(
        exporter.source().watermark("archive.aggregates").await?,
        Some(TimestampUs::from_micros(day0().micros() + 24 * HOUR))
    );

    let Some(check) = check_parquet(dir.path())? else {
        return Ok(());
    };
    for table in Table::ALL {
        let raw = &check["datasets"][format!("raw/{}", table.name())];
        let want = oracle.records(table);
        assert_eq!(raw["rows"].as_u64(), Some(want.len() as u64), "{table}");
        assert_eq!(
            raw["rows"].as_u64(),
            Some(store.count(table).await?),
            "{table}"
        );
        let min = want.iter().map(|r| r.exchange_ts().micros()).min();
        let max = want.iter().map(|r| r.exchange_ts().micros()).max();
        assert_eq!(raw["min_ts"].as_i64(), min, "{table}");
        assert_eq!(raw["max_ts"].as_i64(), max, "{table}");
    }
    // Enrichment from production's markets; the series follows the event ticker.
    assert_eq!(
        check["sql"]["hourly_ohlc_match"].as_bool(),
        Some(true),
        "{}",
        check["sql"]
    );

    // SQL over production.
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT ticker, exchange_ts / 3600000000 * 3600000000 AS hour,
                    (array_agg(yes_price ORDER BY exchange_ts, trade_id COLLATE \"C\"))[1] AS open,
                    max(yes_price) AS high, min(yes_price) AS low,
                    (array_agg(yes_price ORDER BY exchange_ts DESC, trade_id COLLATE \"C\" DESC))[1] AS close,
                    sum(count)::bigint AS volume, count(*) AS n, sum(yes_price * count)::bigint AS notional
             FROM trades GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .await?;
    let sql: Vec<OhlcRow> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect();
    let mut ours: Vec<OhlcRow> = check["aggregates"]["hourly_ohlc"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let i = |k: &str| r[k].as_i64().unwrap_or(i64::MIN);
            (
                r["ticker"].as_str().unwrap_or_default().to_string(),
                i("hour"),
                i("open"),
                i("high"),
                i("low"),
                i("close"),
                i("volume"),
                i("trade_count"),
                i("notional"),
            )
        })
        .collect();
    ours.sort();
    assert!(!sql.is_empty());
    assert_eq!(ours, sql, "hourly OHLC: archive vs SQL over production");

    let rows = client
        .query(
            "SELECT t.ticker, sum(count)::bigint, count(*), m.event_ticker
             FROM trades t LEFT JOIN markets m ON m.ticker = t.ticker GROUP BY t.ticker, m.event_ticker ORDER BY 1",
            &[],
        )
        .await?;
    let sql: Vec<(String, i64, i64, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut ours: Vec<(String, i64, i64, Option<String>)> = check["aggregates"]["daily_volume"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["scope"] == "market")
        .map(|r| {
            (
                r["key"].as_str().unwrap_or_default().to_string(),
                r["volume"].as_i64().unwrap_or(-1),
                r["trade_count"].as_i64().unwrap_or(-1),
                r["event_ticker"].as_str().map(str::to_string),
            )
        })
        .collect();
    ours.sort();
    assert_eq!(
        ours, sql,
        "daily volume per market: archive vs SQL over production"
    );
    Ok(())
}
