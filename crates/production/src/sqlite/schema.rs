//! SQLite schema: the same tables and identities as PostgreSQL, without partitions. Snapshot
//! levels are JSON text `[[price, size], …]`; booleans are 0/1 integers.

/// `(version, name, sql)` applied in order and recorded in `schema_migrations`.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial schema", V1),
    (2, "lifecycle copies", V2_LIFECYCLE_COPIES),
    (3, "gap market lists", V3_GAP_MARKET_LISTS),
    (4, "quarantine and store ids", V4_QUARANTINE),
    (5, "sync progress", V5_SYNC_PROGRESS),
];

/// How far production is complete per gatherer and table (see PostgreSQL's V5).
const V5_SYNC_PROGRESS: &str = r#"
CREATE TABLE sync_progress (
    gatherer TEXT NOT NULL,
    table_name TEXT NOT NULL,
    complete_through INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (gatherer, table_name)
);
"#;

/// One gap record per subscription: `tickers` holds its markets (see PostgreSQL's V3).
const V3_GAP_MARKET_LISTS: &str = "ALTER TABLE gaps ADD COLUMN tickers TEXT;";

/// Rows production refused or could not be given (`crate::quarantine`), and the gatherer store
/// each cursor counts in (a new store id starts the cursor over).
const V4_QUARANTINE: &str = r#"
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gatherer TEXT NOT NULL,
    table_name TEXT NOT NULL,
    store_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    body TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL,
    UNIQUE (gatherer, table_name, store_id, seq)
);
ALTER TABLE sync_cursors ADD COLUMN store_id TEXT NOT NULL DEFAULT '';
"#;

/// Every lifecycle copy the deduplicator filed and the row it joined (`crate::lifecycle`).
const V2_LIFECYCLE_COPIES: &str = r#"
CREATE TABLE lifecycle_copies (
    gatherer TEXT NOT NULL,
    subject TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload_hash INTEGER NOT NULL,
    exchange_ts INTEGER NOT NULL,
    row_ts INTEGER NOT NULL,
    PRIMARY KEY (gatherer, subject, event_type, payload_hash, exchange_ts)
);
CREATE INDEX lifecycle_copies_row ON lifecycle_copies (subject, event_type, payload_hash, row_ts);
CREATE INDEX lifecycle_key_ts ON lifecycle (subject, event_type, payload_hash, exchange_ts);
"#;

pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)";

const V1: &str = r#"
CREATE TABLE series (
    ticker TEXT PRIMARY KEY,
    title TEXT,
    category TEXT,
    frequency TEXT,
    raw TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE events (
    event_ticker TEXT PRIMARY KEY,
    series_ticker TEXT,
    title TEXT,
    category TEXT,
    raw TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX events_series ON events (series_ticker);
CREATE TABLE markets (
    ticker TEXT PRIMARY KEY,
    event_ticker TEXT,
    title TEXT,
    kalshi_status TEXT NOT NULL,
    status TEXT CHECK (status IN ('unopened', 'open', 'closed', 'settled')),
    open_time INTEGER,
    close_time INTEGER,
    result TEXT,
    raw TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX markets_event ON markets (event_ticker);

CREATE TABLE trades (
    trade_id TEXT PRIMARY KEY,
    ticker TEXT NOT NULL,
    exchange_ts INTEGER NOT NULL,
    yes_price INTEGER NOT NULL,
    no_price INTEGER NOT NULL,
    count INTEGER NOT NULL,
    taker_side TEXT,
    is_block_trade INTEGER NOT NULL,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX trades_ticker_ts ON trades (ticker, exchange_ts);
CREATE INDEX trades_ts ON trades (exchange_ts);

CREATE TABLE orderbook_deltas (
    ticker TEXT NOT NULL,
    exchange_ts INTEGER NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('yes', 'no')),
    price INTEGER NOT NULL,
    delta INTEGER NOT NULL,
    occurrence INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (ticker, exchange_ts, side, price, delta, occurrence)
);
CREATE INDEX orderbook_deltas_ts ON orderbook_deltas (exchange_ts);

CREATE TABLE orderbook_snapshots (
    ticker TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('ws', 'rest')),
    exchange_ts INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    book_hash INTEGER NOT NULL,
    yes_levels TEXT NOT NULL,
    no_levels TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (ticker, source, bucket, book_hash)
);
CREATE INDEX orderbook_snapshots_ticker_ts ON orderbook_snapshots (ticker, exchange_ts);
CREATE INDEX orderbook_snapshots_ts ON orderbook_snapshots (exchange_ts);

CREATE TABLE tickers (
    ticker TEXT NOT NULL,
    exchange_ts INTEGER NOT NULL,
    values_hash INTEGER NOT NULL,
    price INTEGER,
    yes_bid INTEGER,
    yes_ask INTEGER,
    volume INTEGER,
    open_interest INTEGER,
    dollar_volume INTEGER,
    dollar_open_interest INTEGER,
    yes_bid_size INTEGER,
    yes_ask_size INTEGER,
    last_trade_size INTEGER,
    received_at INTEGER NOT NULL,
    UNIQUE (ticker, exchange_ts, values_hash)
);
CREATE INDEX tickers_ts ON tickers (exchange_ts);

CREATE TABLE lifecycle (
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_type TEXT NOT NULL,
    exchange_ts INTEGER NOT NULL,
    payload_hash INTEGER NOT NULL,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (subject, event_type, exchange_ts, payload_hash)
);
CREATE INDEX lifecycle_subject_ts ON lifecycle (subject, exchange_ts);
CREATE INDEX lifecycle_ts ON lifecycle (exchange_ts);

CREATE TABLE gaps (
    gatherer TEXT NOT NULL,
    gap_id TEXT NOT NULL,
    ticker TEXT,
    channel TEXT NOT NULL,
    start_ts INTEGER NOT NULL,
    end_ts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    repair TEXT NOT NULL,
    PRIMARY KEY (gatherer, gap_id)
);
CREATE INDEX gaps_start ON gaps (start_ts);

CREATE TABLE sync_cursors (
    gatherer TEXT NOT NULL,
    table_name TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (gatherer, table_name)
);

CREATE TABLE export_watermarks (
    name TEXT PRIMARY KEY,
    watermark INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;
