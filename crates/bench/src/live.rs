//! The live run: simulator at `rate` over `markets` → one gatherer → deduplicator →
//! production, for `duration`. Latency of each order-book delta and trade, from its exchange
//! timestamp to (a) the gatherer commit that made it durable (the heads watch fires after
//! every commit) and (b) the production transaction that holds it (production row counts
//! polled every 50 ms; one gatherer and a fresh production, so row `seq` of a table is in
//! production once that table holds `seq` rows — an upper bound by up to one poll).

use crate::BenchError;
use crate::harness;
use crate::measure::{per_second, quantile};
use crate::report::Report;
use kd_core::{Table, TimestampUs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TABLES: [Table; 2] = [Table::Deltas, Table::Trades];

/// `(time µs, [deltas, trades])` samples, in time order.
type Samples = Arc<Mutex<Vec<(i64, [u64; 2])>>>;

/// Runs the live pipeline and records the latency figures.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    markets: usize,
    rate: u32,
    duration: Duration,
    production: &str,
    dir: &Path,
    report: &mut Report,
) -> Result<(), BenchError> {
    let shutdown = CancellationToken::new();
    let result = run_inner(markets, rate, duration, production, dir, report, &shutdown).await;
    shutdown.cancel();
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_inner(
    markets: usize,
    rate: u32,
    duration: Duration,
    production: &str,
    dir: &Path,
    report: &mut Report,
    shutdown: &CancellationToken,
) -> Result<(), BenchError> {
    let store = kd_production::open(production)
        .await
        .map_err(|e| BenchError::stage("production open", e))?;
    store
        .migrate()
        .await
        .map_err(|e| BenchError::stage("production migrate", e))?;
    let sim = harness::sim(markets, rate, shutdown).await?;
    let g = harness::gatherer(&sim, "bench-live", dir, shutdown).await?;
    let dedup = harness::dedup(production, &[("bench-live", &g)], shutdown).await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !g.health().ready() {
        if Instant::now() > deadline {
            return Err(BenchError::msg("live run", "gatherer not ready in 300 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let local: Samples = Arc::default();
    let prod: Samples = Arc::default();
    let stop = CancellationToken::new();
    let heads_task = {
        let (mut heads, local, stop) = (g.heads(), local.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let h = *heads.borrow_and_update();
                let now = TimestampUs::now().micros();
                if let Ok(mut v) = local.lock() {
                    v.push((now, [h.get(Table::Deltas), h.get(Table::Trades)]));
                }
                tokio::select! {
                    r = heads.changed() => if r.is_err() { return },
                    _ = stop.cancelled() => return,
                }
            }
        })
    };
    let prod_task = {
        let (store, prod, stop) = (store.clone(), prod.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let mut c = [0_u64; 2];
                for (i, t) in TABLES.into_iter().enumerate() {
                    c[i] = store.count(t).await.unwrap_or(0);
                }
                let now = TimestampUs::now().micros();
                if let Ok(mut v) = prod.lock() {
                    v.push((now, c));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        })
    };

    let base = {
        let h = *g.heads().borrow();
        [h.get(Table::Deltas), h.get(Table::Trades)]
    };
    let cpu0 = crate::measure::cpu_time();
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let end = {
        let h = *g.heads().borrow();
        [h.get(Table::Deltas), h.get(Table::Trades)]
    };
    let elapsed = start.elapsed();
    let cpu = crate::measure::cpu_time().saturating_sub(cpu0);
    sim.stop_publishing().await;
    // Let production catch up with everything measured.
    let catch_up = Instant::now() + Duration::from_secs(60);
    loop {
        let last = prod.lock().ok().and_then(|v| v.last().copied());
        if last.is_some_and(|(_, c)| c[0] >= end[0] && c[1] >= end[1]) || Instant::now() > catch_up
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let _ = heads_task.await;
    let _ = prod_task.await;
    let _ = dedup.stop().await;
    g.shutdown();
    let _ = g.wait().await;
    shutdown.cancel();
    let _ = sim.join().await;

    let measured = (end[0] - base[0]) + (end[1] - base[1]);
    report.set(
        "live_msgs_per_s",
        per_second(measured, elapsed),
        "no messages received",
    );
    report.set(
        "live_cpu_ms_per_10k_msgs",
        (measured > 0).then(|| cpu.as_secs_f64() * 1e3 * 10_000.0 / measured as f64),
        "no messages received",
    );
    report.note("live_target_rate", rate);
    report.note("live_markets", markets as u64);

    let rows = read_rows(&dir.join("store.sqlite"), base, end)?;
    let local = local.lock().map(|v| v.clone()).unwrap_or_default();
    let prod = prod.lock().map(|v| v.clone()).unwrap_or_default();
    let mut to_local = latencies(&rows, &local);
    let mut to_prod = latencies(&rows, &prod);
    to_local.sort_by(f64::total_cmp);
    to_prod.sort_by(f64::total_cmp);
    for (name, v) in [("local", &to_local), ("production", &to_prod)] {
        for (q, tag) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
            report.set(
                &format!("{tag}_exchange_to_{name}_ms"),
                quantile(v, q),
                "no rows observed",
            );
        }
    }
    report.note("live_rows_timed", rows.len() as u64);
    report.note(
        "live_rows_not_in_production",
        (rows.len() - to_prod.len()) as u64,
    );
    Ok(())
}

/// `(table index, seq, exchange_ts µs)` of the rows committed in the window.
fn read_rows(
    path: &Path,
    base: [u64; 2],
    end: [u64; 2],
) -> Result<Vec<(usize, u64, i64)>, BenchError> {
    let sql = |e| BenchError::stage("read gatherer store", e);
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql)?;
    let mut out = Vec::new();
    for (i, q) in [
        "SELECT seq, exchange_ts FROM deltas WHERE seq > ?1 AND seq <= ?2",
        "SELECT seq, exchange_ts FROM trades WHERE seq > ?1 AND seq <= ?2",
    ]
    .into_iter()
    .enumerate()
    {
        let mut stmt = conn.prepare(q).map_err(sql)?;
        let rows = stmt
            .query_map(rusqlite::params![base[i] as i64, end[i] as i64], |r| {
                Ok((i, r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)?))
            })
            .map_err(sql)?;
        for r in rows {
            out.push(r.map_err(sql)?);
        }
    }
    Ok(out)
}

/// For each row, milliseconds from its exchange time to the first sample showing it.
fn latencies(rows: &[(usize, u64, i64)], samples: &[(i64, [u64; 2])]) -> Vec<f64> {
    rows.iter()
        .filter_map(|&(i, seq, ts)| {
            let at = samples.partition_point(|(_, c)| c[i] < seq);
            samples.get(at).map(|(t, _)| (t - ts) as f64 / 1_000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_first_sample_holding_the_row() {
        let samples = vec![(1_000, [0, 0]), (3_000, [2, 0]), (9_000, [5, 1])];
        let rows = vec![(0, 1, 500), (0, 3, 500), (1, 1, 1_000), (0, 6, 0)];
        assert_eq!(latencies(&rows, &samples), vec![2.5, 8.5, 8.0]);
    }
}
