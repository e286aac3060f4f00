//! Conversions between records and stored column values shared by both backends.

use crate::error::StoreError;
use kd_core::records::{Level, SnapshotSource, TradeSource};
use kd_core::{Count, Price, Side, Table};

/// The production table holding `table`'s records. Static: SQL never sees input names.
pub const fn sql_table(table: Table) -> &'static str {
    match table {
        Table::Trades => "trades",
        Table::Deltas => "orderbook_deltas",
        Table::Snapshots => "orderbook_snapshots",
        Table::Tickers => "tickers",
        Table::Lifecycle => "lifecycle",
        Table::Gaps => "gaps",
    }
}

pub fn price(table: Table, units: i64) -> Result<Price, StoreError> {
    Price::new(units).map_err(|e| corrupt(table, format!("price {units}: {e}")))
}

pub fn opt_price(table: Table, units: Option<i64>) -> Result<Option<Price>, StoreError> {
    units.map(|u| price(table, u)).transpose()
}

pub fn side(table: Table, text: &str) -> Result<Side, StoreError> {
    Side::parse(text).ok_or_else(|| corrupt(table, format!("side `{text}`")))
}

pub fn opt_side(table: Table, text: Option<&str>) -> Result<Option<Side>, StoreError> {
    text.map(|t| side(table, t)).transpose()
}

pub fn trade_source_str(s: TradeSource) -> &'static str {
    match s {
        TradeSource::Ws => "ws",
        TradeSource::Rest => "rest",
    }
}

pub fn trade_source(text: &str) -> Result<TradeSource, StoreError> {
    match text {
        "ws" => Ok(TradeSource::Ws),
        "rest" => Ok(TradeSource::Rest),
        other => Err(corrupt(Table::Trades, format!("source `{other}`"))),
    }
}

pub fn snapshot_source(text: &str) -> Result<SnapshotSource, StoreError> {
    match text {
        "ws" => Ok(SnapshotSource::Ws),
        "rest" => Ok(SnapshotSource::Rest),
        other => Err(corrupt(Table::Snapshots, format!("source `{other}`"))),
    }
}

pub fn occurrence(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(Table::Deltas, format!("occurrence {value}")))
}

/// Splits levels into parallel price and size arrays (PostgreSQL `bigint[]` columns).
pub fn level_arrays(levels: &[Level]) -> (Vec<i64>, Vec<i64>) {
    levels
        .iter()
        .map(|l| (l.price.units(), l.size.hundredths()))
        .unzip()
}

pub fn levels_from_arrays(prices: &[i64], sizes: &[i64]) -> Result<Vec<Level>, StoreError> {
    if prices.len() != sizes.len() {
        return Err(corrupt(
            Table::Snapshots,
            "level arrays of different lengths".into(),
        ));
    }
    prices
        .iter()
        .zip(sizes)
        .map(|(&p, &s)| {
            Ok(Level {
                price: price(Table::Snapshots, p)?,
                size: Count::new(s),
            })
        })
        .collect()
}

/// Levels as compact JSON `[[price_units, size_hundredths], …]` (SQLite text column).
pub fn levels_json(levels: &[Level]) -> String {
    let pairs: Vec<[i64; 2]> = levels
        .iter()
        .map(|l| [l.price.units(), l.size.hundredths()])
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

pub fn levels_from_json(text: &str) -> Result<Vec<Level>, StoreError> {
    let pairs: Vec<[i64; 2]> = serde_json::from_str(text)
        .map_err(|e| corrupt(Table::Snapshots, format!("levels JSON: {e}")))?;
    pairs
        .into_iter()
        .map(|[p, s]| {
            Ok(Level {
                price: price(Table::Snapshots, p)?,
                size: Count::new(s),
            })
        })
        .collect()
}

pub fn corrupt(table: Table, reason: String) -> StoreError {
    StoreError::Corrupt {
        table: sql_table(table),
        reason,
    }
}

/// Microseconds per day: partitions and snapshot buckets line up on UTC days.
pub const DAY_US: i64 = 86_400_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_both_encodings() -> Result<(), StoreError> {
        let levels = vec![
            Level {
                price: price(Table::Snapshots, 100)?,
                size: Count::new(3154),
            },
            Level {
                price: price(Table::Snapshots, 99_000)?,
                size: Count::new(-1),
            },
        ];
        assert_eq!(levels_from_json(&levels_json(&levels))?, levels);
        let (p, s) = level_arrays(&levels);
        assert_eq!(levels_from_arrays(&p, &s)?, levels);
        assert!(levels_from_arrays(&[1], &[]).is_err());
        assert!(levels_from_json("[[100001,1]]").is_err());
        Ok(())
    }
}
