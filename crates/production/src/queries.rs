//! SQL both backends run word for word (the window reads differ in placeholders and levels).

use kd_core::Table;

/// Rows in a table.
pub(crate) const fn count_sql(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT count(*) FROM trades",
        Table::Deltas => "SELECT count(*) FROM orderbook_deltas",
        Table::Snapshots => "SELECT count(*) FROM orderbook_snapshots",
        Table::Tickers => "SELECT count(*) FROM tickers",
        Table::Lifecycle => "SELECT count(*) FROM lifecycle",
        Table::Gaps => "SELECT count(*) FROM gaps",
    }
}

/// The oldest record's time. SQLite has an index on every table's time key; PostgreSQL has
/// none leading with it on most tables, so there this scans like `count` does — it runs once
/// per table, before a first export.
pub(crate) const fn oldest_sql(table: Table) -> &'static str {
    match table {
        Table::Trades => "SELECT min(exchange_ts) FROM trades",
        Table::Deltas => "SELECT min(exchange_ts) FROM orderbook_deltas",
        Table::Snapshots => "SELECT min(exchange_ts) FROM orderbook_snapshots",
        Table::Tickers => "SELECT min(exchange_ts) FROM tickers",
        Table::Lifecycle => "SELECT min(exchange_ts) FROM lifecycle",
        Table::Gaps => "SELECT min(start_ts) FROM gaps",
    }
}
