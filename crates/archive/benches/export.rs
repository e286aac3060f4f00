//! Export throughput and compressed size per row.
//!
//! `cargo bench -p kd-archive --bench export` prints, per table, the compressed Parquet bytes
//! per row of a realistic window, then measures with criterion:
//! - `raw_deltas/encode`: sort + Arrow conversion + zstd Parquet of one window (rows/s);
//! - `raw_deltas/export_window`: the same plus reading from an in-memory production and the
//!   atomic write into a local folder, raw tier only;
//! - `deltas/export_window_raw_and_processed`: both tiers (dedup, book flags, enrichment).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kd_archive::encode::{self, FileMeta};
use kd_archive::exporter::Step;
use kd_archive::{Archive, ExportConfig, Exporter, MemorySource, S3Options, WindowLen, schema};
use kd_core::records::{
    Level, Lifecycle, OrderbookDelta, OrderbookSnapshot, SnapshotSource, Ticker, Trade,
    TradeSource, WirePos,
};
use kd_core::{Count, Price, Record, Side, Table, TimestampUs};

const HOUR: i64 = 3_600_000_000;
const START: i64 = 1_767_571_200_000_000; // 2026-01-05T00:00:00Z
const MARKETS: usize = 2_000;

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n) as i64
    }
}

fn ticker(i: usize) -> String {
    format!(
        "KXSERIES{}-26JAN{:02}-B{}.5",
        i % 150,
        i % 28 + 1,
        40 + i % 60
    )
}

fn price(u: i64) -> Price {
    Price::new(u.clamp(0, 100_000)).unwrap_or(Price::ONE_DOLLAR)
}

/// One hour of `n` records of `table`, spread over [`MARKETS`] markets in time order.
fn generate(table: Table, n: usize, rng: &mut Rng) -> Vec<Record> {
    let step = HOUR / n.max(1) as i64;
    (0..n)
        .map(|i| {
            let ts =
                TimestampUs::from_micros(START + i as i64 * step + rng.below(step.max(1) as u64));
            let recv = TimestampUs::from_micros(ts.micros() + 2_000 + rng.below(50_000));
            let m = ticker(rng.below(MARKETS as u64) as usize);
            let pos = WirePos {
                sid: Some(1),
                seq: Some(i as u64),
            };
            match table {
                Table::Deltas => Record::Delta(OrderbookDelta {
                    ticker: m,
                    exchange_ts: ts,
                    side: if rng.below(2) == 0 {
                        Side::Yes
                    } else {
                        Side::No
                    },
                    price: price(1000 * (1 + rng.below(99))),
                    delta: Count::new((rng.below(400) - 200) * 100),
                    occurrence: 0,
                    received_at: recv,
                    pos,
                }),
                Table::Trades => {
                    let yes = 1000 * (1 + rng.below(99));
                    Record::Trade(Trade {
                        trade_id: format!(
                            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                            rng.below(u32::MAX as u64),
                            rng.below(65536),
                            rng.below(4096),
                            rng.below(4096),
                            rng.below(1 << 48)
                        ),
                        ticker: m,
                        exchange_ts: ts,
                        yes_price: price(yes),
                        no_price: price(100_000 - yes),
                        count: Count::new(100 * (1 + rng.below(500))),
                        taker_side: Some(if rng.below(2) == 0 {
                            Side::Yes
                        } else {
                            Side::No
                        }),
                        is_block_trade: false,
                        source: TradeSource::Ws,
                        received_at: recv,
                        pos,
                    })
                }
                Table::Snapshots => {
                    let levels = |rng: &mut Rng| -> Vec<Level> {
                        let mut p = 1000;
                        (0..(5 + rng.below(20)))
                            .map(|_| {
                                p += 1000 * (1 + rng.below(3));
                                Level {
                                    price: price(p.min(99_000)),
                                    size: Count::new(100 * (1 + rng.below(5000))),
                                }
                            })
                            .collect()
                    };
                    Record::Snapshot(OrderbookSnapshot {
                        ticker: m,
                        source: SnapshotSource::Rest,
                        exchange_ts: ts,
                        yes: levels(rng),
                        no: levels(rng),
                        received_at: recv,
                        pos,
                    })
                }
                Table::Tickers => {
                    let bid = 1000 * (1 + rng.below(97));
                    Record::Ticker(Ticker {
                        ticker: m,
                        exchange_ts: ts,
                        price: Some(price(bid + 1000)),
                        yes_bid: Some(price(bid)),
                        yes_ask: Some(price(bid + 2000)),
                        volume: Some(Count::new(100 * rng.below(1_000_000))),
                        open_interest: Some(Count::new(100 * rng.below(500_000))),
                        dollar_volume: Some(rng.below(500_000)),
                        dollar_open_interest: Some(rng.below(250_000)),
                        yes_bid_size: Some(Count::new(100 * rng.below(5000))),
                        yes_ask_size: Some(Count::new(100 * rng.below(5000))),
                        last_trade_size: Some(Count::new(100 * rng.below(100))),
                        received_at: recv,
                        pos,
                    })
                }
                _ => Record::Lifecycle(Lifecycle {
                    subject: m,
                    kind: "market_lifecycle_v2".into(),
                    event_type: "activated".into(),
                    exchange_ts: ts,
                    payload: format!("{{\"event_type\":\"activated\",\"open_ts\":{}}}", ts.secs()),
                    received_at: recv,
                    pos,
                }),
            }
        })
        .collect()
}

fn encode_raw(table: Table, mut records: Vec<Record>) -> usize {
    schema::sort_records(&mut records);
    let batches: Vec<_> = records
        .chunks(encode::DEFAULT_ROW_GROUP_ROWS)
        .filter_map(|c| schema::raw_batch(table, c).ok())
        .collect();
    let meta = FileMeta {
        dataset: format!("raw.{table}"),
        extra: vec![],
        sorted_by_first_two: true,
        row_group_rows: encode::DEFAULT_ROW_GROUP_ROWS,
    };
    encode::encode(&schema::raw_schema(table), &batches, &meta).map_or(0, |b| b.len())
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!("compressed bytes per row (raw tier, zstd, {MARKETS} markets):");
    for (table, n) in [
        (Table::Deltas, 1_000_000),
        (Table::Trades, 200_000),
        (Table::Tickers, 500_000),
        (Table::Snapshots, 50_000),
        (Table::Lifecycle, 20_000),
    ] {
        let bytes = encode_raw(table, generate(table, n, &mut rng));
        println!(
            "  {table:<10} {n:>9} rows  {bytes:>11} bytes  {:.2} bytes/row",
            bytes as f64 / n as f64
        );
    }

    const N: usize = 1_000_000;
    let deltas = generate(Table::Deltas, N, &mut rng);
    let mut group = c.benchmark_group("raw_deltas");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encode_raw(Table::Deltas, deltas.clone()))
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else { return };
    let Ok(dir) = tempfile::tempdir() else { return };
    let mut source = MemorySource::new();
    source.insert(deltas);
    let Ok(archive) = Archive::open(
        &format!("file://{}", dir.path().display()),
        &S3Options::default(),
    ) else {
        return;
    };
    let raw_only = ExportConfig {
        processed: false,
        aggregates: false,
        ..ExportConfig::default()
    };
    let exporter = Exporter::new(source, archive, raw_only);
    let window = WindowLen::HOUR.window_of(TimestampUs::from_micros(START));
    group.bench_function("export_window", |b| {
        b.iter(|| runtime.block_on(exporter.run_step(Step::Window(Table::Deltas, window), false)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
