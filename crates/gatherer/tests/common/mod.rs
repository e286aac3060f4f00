//! Helpers shared by the gatherer's integration tests.
#![allow(dead_code)]

use kd_core::pull::PulledRecord;
use kd_core::records::Level;
use kd_core::{Record, Table};
use kd_gatherer::config::GathererConfig;
use kd_gatherer::store::ReadPool;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A gatherer configuration for tests: port 0, the given store and exchange.
pub fn gatherer_config(dir: &Path, rest: &str, ws: &str) -> GathererConfig {
    GathererConfig {
        gatherer_id: "g-test".into(),
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or(GathererConfig::default().listen),
        rest_url: rest.to_string(),
        ws_url: ws.to_string(),
        connections: 2,
        markets_per_subscription: 64,
        ..GathererConfig::default()
    }
}

/// Every row of a table, in sequence order.
pub fn all_rows(
    dir: &Path,
    table: Table,
) -> Result<Vec<PulledRecord>, Box<dyn std::error::Error + Send + Sync>> {
    let pool = ReadPool::new(dir)?;
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = pool.pull(table, after, 50_000)?;
        match page.last() {
            Some(last) => after = last.seq,
            None => return Ok(out),
        }
        out.extend(page);
    }
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A book as two price → size maps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Book {
    pub yes: BTreeMap<i64, i64>,
    pub no: BTreeMap<i64, i64>,
}

impl Book {
    pub fn from_levels(yes: &[Level], no: &[Level]) -> Book {
        let side = |levels: &[Level]| {
            levels
                .iter()
                .filter(|l| l.size.hundredths() != 0)
                .map(|l| (l.price.units(), l.size.hundredths()))
                .collect()
        };
        Book {
            yes: side(yes),
            no: side(no),
        }
    }

    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Snapshot(s) => *self = Book::from_levels(&s.yes, &s.no),
            Record::Delta(d) => {
                let side = match d.side {
                    kd_core::Side::Yes => &mut self.yes,
                    kd_core::Side::No => &mut self.no,
                };
                let size = side.entry(d.price.units()).or_insert(0);
                *size += d.delta.hundredths();
                if *size == 0 {
                    side.remove(&d.price.units());
                }
            }
            _ => {}
        }
    }
}
