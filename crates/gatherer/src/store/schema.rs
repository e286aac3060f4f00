//! The store's schema. Every SQL string is a literal chosen by matching on [`Table`], so no
//! table name is ever built from input.
//!
//! Each record table has the same columns:
//! `seq` (local sequence, the pull cursor), `received_at` (µs, gatherer clock), `sid` and
//! `wire_seq` (the WebSocket subscription position, diagnosis only), `subject` (market ticker,
//! event ticker for event lifecycle, NULL for a feed-wide gap), `exchange_ts` (µs) and `body`
//! (the record; decoding it yields the `kd_core` record exactly: binary for trades, deltas and
//! tickers — `kd_core::pull::codec::encode_body` — JSON for the rest and for rows written
//! before 2026-12-04; see `read::decode`).

use kd_core::Table;

/// Bump when the schema changes; stored in `state` under `schema_version`.
pub const SCHEMA_VERSION: &str = "1";

/// Everything `CREATE … IF NOT EXISTS`, run by the writer at open.
pub const DDL: &str = "
CREATE TABLE IF NOT EXISTS trades (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, sid INTEGER,
    wire_seq INTEGER, subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS deltas (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, sid INTEGER,
    wire_seq INTEGER, subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, sid INTEGER,
    wire_seq INTEGER, subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tickers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, sid INTEGER,
    wire_seq INTEGER, subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lifecycle (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, sid INTEGER,
    wire_seq INTEGER, subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, sid INTEGER,
    wire_seq INTEGER, subject TEXT, exchange_ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS acks (
    tbl TEXT PRIMARY KEY, cursor INTEGER NOT NULL, acked_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// `INSERT` of one row into `table`.
pub const fn insert(table: Table) -> &'static str {
    match table {
        Table::Trades => {
            "INSERT INTO trades (received_at, sid, wire_seq, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Table::Deltas => {
            "INSERT INTO deltas (received_at, sid, wire_seq, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Table::Snapshots => {
            "INSERT INTO snapshots (received_at, sid, wire_seq, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Table::Tickers => {
            "INSERT INTO tickers (received_at, sid, wire_seq, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Table::Lifecycle => {
            "INSERT INTO lifecycle (received_at, sid, wire_seq, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Table::Gaps => {
            "INSERT INTO gaps (received_at, sid, wire_seq, subject, exchange_ts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
    }
}

/// Rows after a cursor, ascending, limited.
pub const fn select_after(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT seq, body FROM trades WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        Table::Deltas => "SELECT seq, body FROM deltas WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        Table::Snapshots => "SELECT seq, body FROM snapshots WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        Table::Tickers => "SELECT seq, body FROM tickers WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        Table::Lifecycle => "SELECT seq, body FROM lifecycle WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        Table::Gaps => "SELECT seq, body FROM gaps WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    }
}

/// The last rows (highest sequence first; the reader takes the newest that decodes).
pub const fn select_last(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT seq, body FROM trades ORDER BY seq DESC LIMIT 64",
        Table::Deltas => "SELECT seq, body FROM deltas ORDER BY seq DESC LIMIT 64",
        Table::Snapshots => "SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 64",
        Table::Tickers => "SELECT seq, body FROM tickers ORDER BY seq DESC LIMIT 64",
        Table::Lifecycle => "SELECT seq, body FROM lifecycle ORDER BY seq DESC LIMIT 64",
        Table::Gaps => "SELECT seq, body FROM gaps ORDER BY seq DESC LIMIT 64",
    }
}

/// The first row received at or after a cutoff (the retention boundary).
pub const fn first_young(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT seq FROM trades WHERE received_at >= ?1 ORDER BY seq LIMIT 1",
        Table::Deltas => "SELECT seq FROM deltas WHERE received_at >= ?1 ORDER BY seq LIMIT 1",
        Table::Snapshots => {
            "SELECT seq FROM snapshots WHERE received_at >= ?1 ORDER BY seq LIMIT 1"
        }
        Table::Tickers => "SELECT seq FROM tickers WHERE received_at >= ?1 ORDER BY seq LIMIT 1",
        Table::Lifecycle => {
            "SELECT seq FROM lifecycle WHERE received_at >= ?1 ORDER BY seq LIMIT 1"
        }
        Table::Gaps => "SELECT seq FROM gaps WHERE received_at >= ?1 ORDER BY seq LIMIT 1",
    }
}

/// Deletes up to `?2` of the oldest rows with `seq <= ?1`.
pub const fn delete_through(table: Table) -> &'static str {
    match table {
        Table::Trades => {
            "DELETE FROM trades WHERE seq IN (SELECT seq FROM trades WHERE seq <= ?1 ORDER BY seq LIMIT ?2)"
        }
        Table::Deltas => {
            "DELETE FROM deltas WHERE seq IN (SELECT seq FROM deltas WHERE seq <= ?1 ORDER BY seq LIMIT ?2)"
        }
        Table::Snapshots => {
            "DELETE FROM snapshots WHERE seq IN (SELECT seq FROM snapshots WHERE seq <= ?1 ORDER BY seq LIMIT ?2)"
        }
        Table::Tickers => {
            "DELETE FROM tickers WHERE seq IN (SELECT seq FROM tickers WHERE seq <= ?1 ORDER BY seq LIMIT ?2)"
        }
        Table::Lifecycle => {
            "DELETE FROM lifecycle WHERE seq IN (SELECT seq FROM lifecycle WHERE seq <= ?1 ORDER BY seq LIMIT ?2)"
        }
        Table::Gaps => {
            "DELETE FROM gaps WHERE seq IN (SELECT seq FROM gaps WHERE seq <= ?1 ORDER BY seq LIMIT ?2)"
        }
    }
}

/// Rows still stored (for the depth gauge; cheap on a rowid table only when small, so the
/// health endpoint uses `head - ack` instead and this serves tests and diagnostics).
pub const fn count(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT count(*) FROM trades",
        Table::Deltas => "SELECT count(*) FROM deltas",
        Table::Snapshots => "SELECT count(*) FROM snapshots",
        Table::Tickers => "SELECT count(*) FROM tickers",
        Table::Lifecycle => "SELECT count(*) FROM lifecycle",
        Table::Gaps => "SELECT count(*) FROM gaps",
    }
}

/// The high-water sequence of every table (kept by `AUTOINCREMENT`, survives deletions).
pub const HEADS: &str = "SELECT name, seq FROM sqlite_sequence";
