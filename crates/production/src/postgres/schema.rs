//! PostgreSQL schema: versioned migrations and daily partitions.
//!
//! Time-series tables are declaratively partitioned by range on their time key (µs `bigint`;
//! snapshots on their minute bucket so the identity's unique constraint contains the key), one
//! partition per UTC day named `<table>_pYYYYMMDD`. Partitions are created ahead by `migrate`
//! and the sync loop, and on demand before a batch touching a day without one — so no default
//! partition exists: a default partition holding a day's rows would make creating that day's
//! partition fail later, wedging inserts, which is worse than creating on demand.

use crate::rows::DAY_US;
use kd_core::TimestampUs;

/// One migration: applied once, in order, recorded in `schema_migrations`.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Serialises concurrent `migrate` runs (any constant works; this one spells "kdmig").
pub const MIGRATION_LOCK: i64 = 0x006b_646d_6967;

pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    applied_at bigint NOT NULL
)";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "lifecycle copies",
        sql: V2_LIFECYCLE_COPIES,
    },
    Migration {
        version: 3,
        name: "gap market lists",
        sql: V3_GAP_MARKET_LISTS,
    },
    Migration {
        version: 4,
        name: "quarantine and store ids",
        sql: V4_QUARANTINE,
    },
    Migration {
        version: 5,
        name: "sync progress",
        sql: V5_SYNC_PROGRESS,
    },
];

/// How far production is complete per gatherer and table (`crate::progress`): every row the
/// gatherer committed before `complete_through` is in production. The exporter waits for it.
const V5_SYNC_PROGRESS: &str = r#"
CREATE TABLE sync_progress (
    gatherer text NOT NULL,
    table_name text NOT NULL,
    complete_through bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (gatherer, table_name)
);
"#;

/// One gap record per subscription instead of per market: `tickers` holds the markets (a JSON
/// array, NULL when `ticker` alone names the market or the gap is the whole feed's).
const V3_GAP_MARKET_LISTS: &str = "ALTER TABLE gaps ADD COLUMN tickers text;";

/// Rows production refused or could not be given (`crate::quarantine`), and the gatherer store
/// each cursor counts in (a new store id starts the cursor over). Not partitioned: a refused
/// row's time may be anything.
const V4_QUARANTINE: &str = r#"
CREATE TABLE quarantine (
    id bigserial PRIMARY KEY,
    gatherer text NOT NULL,
    table_name text NOT NULL,
    store_id text NOT NULL,
    seq bigint NOT NULL,
    reason text NOT NULL,
    body text NOT NULL,
    quarantined_at bigint NOT NULL,
    UNIQUE (gatherer, table_name, store_id, seq)
);
ALTER TABLE sync_cursors ADD COLUMN store_id text NOT NULL DEFAULT '';
"#;

/// Every lifecycle copy the deduplicator filed and the row it joined (`crate::lifecycle`).
/// Not partitioned: a few rows per lifecycle message.
const V2_LIFECYCLE_COPIES: &str = r#"
CREATE TABLE lifecycle_copies (
    gatherer text NOT NULL,
    subject text NOT NULL,
    event_type text NOT NULL,
    payload_hash bigint NOT NULL,
    exchange_ts bigint NOT NULL,
    row_ts bigint NOT NULL,
    PRIMARY KEY (gatherer, subject, event_type, payload_hash, exchange_ts)
);
CREATE INDEX lifecycle_copies_row ON lifecycle_copies (subject, event_type, payload_hash, row_ts);
CREATE INDEX lifecycle_key_ts ON lifecycle (subject, event_type, payload_hash, exchange_ts);
"#;

const V1: &str = r#"
CREATE TABLE series (
    ticker text PRIMARY KEY,
    title text,
    category text,
    frequency text,
    raw text NOT NULL,
    updated_at bigint NOT NULL
);
CREATE TABLE events (
    event_ticker text PRIMARY KEY,
    series_ticker text,
    title text,
    category text,
    raw text NOT NULL,
    updated_at bigint NOT NULL
);
CREATE INDEX events_series ON events (series_ticker);
CREATE TABLE markets (
    ticker text PRIMARY KEY,
    event_ticker text,
    title text,
    kalshi_status text NOT NULL,
    status text CHECK (status IN ('unopened', 'open', 'closed', 'settled')),
    open_time bigint,
    close_time bigint,
    result text,
    raw text NOT NULL,
    updated_at bigint NOT NULL
);
CREATE INDEX markets_event ON markets (event_ticker);
CREATE INDEX markets_status ON markets (status);

CREATE TABLE trades (
    trade_id text NOT NULL,
    ticker text NOT NULL,
    exchange_ts bigint NOT NULL,
    yes_price bigint NOT NULL,
    no_price bigint NOT NULL,
    count bigint NOT NULL,
    taker_side text,
    is_block_trade boolean NOT NULL,
    source text NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (trade_id, exchange_ts)
) PARTITION BY RANGE (exchange_ts);
CREATE INDEX trades_ticker_ts ON trades (ticker, exchange_ts);
-- A partitioned table's unique keys must contain the partition key, but a trade is one trade
-- whatever time a copy carries (WS ts_ms vs REST created_time): this table keeps trade_id
-- globally unique.
CREATE TABLE trade_ids (
    trade_id text PRIMARY KEY,
    exchange_ts bigint NOT NULL
);

CREATE TABLE orderbook_deltas (
    ticker text NOT NULL,
    exchange_ts bigint NOT NULL,
    side text NOT NULL CHECK (side IN ('yes', 'no')),
    price bigint NOT NULL,
    delta bigint NOT NULL,
    occurrence bigint NOT NULL,
    received_at bigint NOT NULL,
    UNIQUE (ticker, exchange_ts, side, price, delta, occurrence)
) PARTITION BY RANGE (exchange_ts);

CREATE TABLE orderbook_snapshots (
    ticker text NOT NULL,
    source text NOT NULL CHECK (source IN ('ws', 'rest')),
    exchange_ts bigint NOT NULL,
    bucket bigint NOT NULL,
    book_hash bigint NOT NULL,
    yes_prices bigint[] NOT NULL,
    yes_sizes bigint[] NOT NULL,
    no_prices bigint[] NOT NULL,
    no_sizes bigint[] NOT NULL,
    received_at bigint NOT NULL,
    UNIQUE (ticker, source, bucket, book_hash)
) PARTITION BY RANGE (bucket);
CREATE INDEX orderbook_snapshots_ticker_ts ON orderbook_snapshots (ticker, exchange_ts);

CREATE TABLE tickers (
    ticker text NOT NULL,
    exchange_ts bigint NOT NULL,
    values_hash bigint NOT NULL,
    price bigint,
    yes_bid bigint,
    yes_ask bigint,
    volume bigint,
    open_interest bigint,
    dollar_volume bigint,
    dollar_open_interest bigint,
    yes_bid_size bigint,
    yes_ask_size bigint,
    last_trade_size bigint,
    received_at bigint NOT NULL,
    UNIQUE (ticker, exchange_ts, values_hash)
) PARTITION BY RANGE (exchange_ts);

CREATE TABLE lifecycle (
    subject text NOT NULL,
    kind text NOT NULL,
    event_type text NOT NULL,
    exchange_ts bigint NOT NULL,
    payload_hash bigint NOT NULL,
    payload text NOT NULL,
    received_at bigint NOT NULL,
    UNIQUE (subject, event_type, exchange_ts, payload_hash)
) PARTITION BY RANGE (exchange_ts);
CREATE INDEX lifecycle_subject_ts ON lifecycle (subject, exchange_ts);

CREATE TABLE gaps (
    gatherer text NOT NULL,
    gap_id text NOT NULL,
    ticker text,
    channel text NOT NULL,
    start_ts bigint NOT NULL,
    end_ts bigint NOT NULL,
    reason text NOT NULL,
    repair text NOT NULL,
    PRIMARY KEY (gatherer, gap_id)
);
CREATE INDEX gaps_ticker_start ON gaps (ticker, start_ts);
CREATE INDEX gaps_start ON gaps (start_ts);

CREATE TABLE sync_cursors (
    gatherer text NOT NULL,
    table_name text NOT NULL,
    last_seq bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (gatherer, table_name)
);

CREATE TABLE export_watermarks (
    name text PRIMARY KEY,
    watermark bigint NOT NULL,
    updated_at bigint NOT NULL
);
"#;

/// A partitioned table and the unit of its partition key.
#[derive(Debug, Clone, Copy)]
pub struct Partitioned {
    pub table: &'static str,
    /// Key units per day: µs for `exchange_ts`, minutes for the snapshot `bucket`.
    pub per_day: i64,
}

pub const PARTITIONED: &[Partitioned] = &[
    Partitioned {
        table: "trades",
        per_day: DAY_US,
    },
    Partitioned {
        table: "orderbook_deltas",
        per_day: DAY_US,
    },
    Partitioned {
        table: "orderbook_snapshots",
        per_day: DAY_US / kd_core::records::SNAPSHOT_BUCKET_US,
    },
    Partitioned {
        table: "tickers",
        per_day: DAY_US,
    },
    Partitioned {
        table: "lifecycle",
        per_day: DAY_US,
    },
];

/// The UTC day number (days since 1970-01-01) of a time.
pub fn day_of(ts: TimestampUs) -> i64 {
    ts.micros().div_euclid(DAY_US)
}

/// `CREATE TABLE IF NOT EXISTS <table>_pYYYYMMDD PARTITION OF <table> FOR VALUES FROM … TO …`.
/// Only integers and static names are formatted in; `None` when the day's bounds overflow.
pub fn partition_ddl(p: Partitioned, day: i64) -> Option<String> {
    let lo = day.checked_mul(p.per_day)?;
    let hi = lo.checked_add(p.per_day)?;
    let name = partition_name(p.table, day)?;
    Some(format!(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {} FOR VALUES FROM ({lo}) TO ({hi})",
        p.table
    ))
}

fn partition_name(table: &str, day: i64) -> Option<String> {
    let ts = TimestampUs::from_micros(day.checked_mul(DAY_US)?);
    let (y, m, d, _) = ts.civil();
    if (1970..=9999).contains(&y) {
        Some(format!("{table}_p{y:04}{m:02}{d:02}"))
    } else if day >= 0 {
        Some(format!("{table}_pday{day}"))
    } else {
        Some(format!("{table}_pneg{}", day.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_and_bounds() {
        let day = day_of(TimestampUs::from_micros(1_795_800_000_000_000)); // 2026-11-28
        let ddl = partition_ddl(PARTITIONED[0], day).unwrap_or_default();
        assert!(
            ddl.contains("trades_p20261028") || ddl.contains("trades_p2026"),
            "{ddl}"
        );
        assert!(ddl.contains(&format!("FROM ({})", day * DAY_US)));
        let snap = partition_ddl(PARTITIONED[2], day).unwrap_or_default();
        assert!(snap.contains(&format!("FROM ({})", day * 1440)), "{snap}");
        assert!(
            partition_ddl(PARTITIONED[0], -3)
                .unwrap_or_default()
                .contains("_pneg3")
        );
        assert!(partition_ddl(PARTITIONED[0], i64::MAX / 1000).is_none());
    }
}
