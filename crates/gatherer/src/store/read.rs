//! Read-only connections for the pull API. WAL lets them read a consistent snapshot while the
//! writer commits; a small pool avoids reopening the file per request.

use super::write::{read_acks, record_json};
use super::{Heads, StoreError, db_path, schema};
use kd_core::pull::{PulledRecord, QUARANTINED_BODY_MAX, QuarantinedRow, codec};
use kd_core::{Record, Table};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Idle connections kept for reuse.
const POOL_SIZE: usize = 4;

/// A pool of read-only connections to the store.
#[derive(Debug)]
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    /// Opens a pool on the store in `data_dir` (which the writer has created).
    pub fn new(data_dir: &Path) -> Result<Self, StoreError> {
        let pool = ReadPool {
            path: db_path(data_dir),
            idle: Mutex::new(Vec::new()),
        };
        let conn = pool.open()?;
        pool.put(conn);
        Ok(pool)
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn put(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL_SIZE
        {
            idle.push(conn);
        }
    }

    /// The rows of `table` with `seq > after`, ascending, at most `limit`. Blocking: call from
    /// `spawn_blocking`.
    pub fn pull(
        &self,
        table: Table,
        after: u64,
        limit: usize,
    ) -> Result<Vec<PulledRecord>, StoreError> {
        let conn = self.take()?;
        let result = pull_on(&conn, table, after, limit);
        self.put(conn);
        result
    }

    /// [`ReadPool::pull`] as the JSON of the pulled records (`[{"seq":…,"record":{"table":…,
    /// "record":…}},…]`, the serde form of `Vec<PulledRecord>`), with the number of rows and
    /// the last `seq`. Each stored body is copied as it is, after a check that it is one JSON
    /// value: decoding it into a record and encoding it again cost the gatherer more CPU than
    /// anything else it does for the deduplicator. Blocking.
    pub fn pull_json(&self, table: Table, after: u64, limit: usize) -> Result<RawPage, StoreError> {
        let conn = self.take()?;
        let result = pull_json_on(&conn, table, after, limit);
        self.put(conn);
        result
    }

    /// The last stored row of `table` (downtime repair starts from it). Blocking.
    pub fn last(&self, table: Table) -> Result<Option<PulledRecord>, StoreError> {
        let conn = self.take()?;
        let result = last_on(&conn, table);
        self.put(conn);
        result
    }

    /// The acknowledged cursor of each table.
    pub fn acks(&self) -> Result<Heads, StoreError> {
        let conn = self.take()?;
        let result = read_acks(&conn);
        self.put(conn);
        result
    }
}

fn last_on(conn: &Connection, table: Table) -> Result<Option<PulledRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(schema::select_last(table))?;
    let mut rows = stmt.query([])?;
    // The newest row that is a record: an unreadable one (served as a quarantine entry) must
    // not keep the gatherer from starting.
    while let Some(row) = rows.next()? {
        let seq = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
        let body = match row.get_ref(1)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b,
            _ => &[][..],
        };
        if let Ok(record) = decode(table, body) {
            return Ok(Some(PulledRecord { seq, record }));
        }
    }
    Ok(None)
}

fn pull_on(
    conn: &Connection,
    table: Table,
    after: u64,
    limit: usize,
) -> Result<Vec<PulledRecord>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(schema::select_after(table))?;
    let mut rows = stmt.query(params![after, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
        let body = match row.get_ref(1)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b,
            _ => &[][..],
        };
        let record =
            decode(table, body).map_err(|source| StoreError::Decode { table, seq, source })?;
        out.push(PulledRecord { seq, record });
    }
    Ok(out)
}

/// Pulled rows as JSON (see [`ReadPool::pull_json`]).
#[derive(Debug, Default)]
pub struct RawPage {
    /// A JSON array of pulled records.
    pub json: Vec<u8>,
    pub rows: usize,
    pub last_seq: Option<u64>,
    /// Rows that are not a record of their table (counted in `rows`, not in `json`).
    pub quarantined: Vec<QuarantinedRow>,
}

impl RawPage {
    /// No rows: `[]`.
    pub fn empty() -> RawPage {
        RawPage {
            json: b"[]".to_vec(),
            ..RawPage::default()
        }
    }
}

/// Largest pull page in bytes, whatever `limit` asks: 50,000 rows of snapshots (a full
/// book each, about 4 KB) were 200 MB a page. 8 MiB is about 25,000 trades or 2,000 full
/// snapshots, and with [`crate::pull_api::MAX_CONCURRENT_PULLS`] pages read at once bounds what
/// the pull API holds to 64 MiB plus one row each.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

fn pull_json_on(
    conn: &Connection,
    table: Table,
    after: u64,
    limit: usize,
) -> Result<RawPage, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(schema::select_after(table))?;
    let mut rows = stmt.query(params![after, limit])?;
    let tag = record_tag(table);
    let mut page = RawPage {
        json: Vec::with_capacity(64 * 1024),
        ..RawPage::default()
    };
    page.json.push(b'[');
    while let Some(row) = rows.next()? {
        let seq = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
        let body = match row.get_ref(1)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b,
            _ => &[][..],
        };
        // The byte bound of one page (always at least one row): the client pulls again from
        // the last row it got, so a page cut short loses nothing.
        if page.rows > 0 && page.json.len() + body.len() > MAX_PAGE_BYTES {
            break;
        }
        page.rows += 1;
        page.last_seq = Some(seq);
        // A row that is not its table's record is answered as a quarantine entry: failing the
        // page would stop the table for good (the row never changes) and keep retention from
        // ever freeing it. A JSON body goes on the wire as its own bytes; a binary one is
        // written as the JSON of the record it decoded to.
        let record = match decode(table, body) {
            Ok(r) => r,
            Err(e) => {
                page.quarantined.push(unreadable(seq, body, &e));
                continue;
            }
        };
        if page.json.len() > 1 {
            page.json.push(b',');
        }
        // Writing to a Vec cannot fail.
        let _ = write!(
            page.json,
            "{{\"seq\":{seq},\"record\":{{\"table\":\"{tag}\",\"record\":"
        );
        if codec::is_binary_body(body) {
            // The record's own struct, as a JSON body would hold it; these always serialise.
            let _ = record_json(&record, &mut page.json);
        } else {
            page.json.extend_from_slice(body);
        }
        page.json.extend_from_slice(b"}}");
    }
    page.json.push(b']');
    Ok(page)
}

/// The quarantine entry of an unreadable row: the decode error and the body as text.
fn unreadable(seq: u64, body: &[u8], e: &BodyError) -> QuarantinedRow {
    let cut = &body[..body.len().min(QUARANTINED_BODY_MAX)];
    QuarantinedRow {
        seq,
        reason: format!("unreadable in the gatherer's store: {e}"),
        body: String::from_utf8_lossy(cut).into_owned(),
    }
}

/// The tag `Record` is serialised with for a table's records.
fn record_tag(table: Table) -> &'static str {
    match table {
        Table::Trades => "trade",
        Table::Deltas => "delta",
        Table::Snapshots => "snapshot",
        Table::Tickers => "ticker",
        Table::Lifecycle => "lifecycle",
        Table::Gaps => "gap",
    }
}

/// Why a stored body is not a record of its table.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("binary body: {0}")]
    Binary(#[from] codec::CodecError),
}

/// Decodes a row's body into the record of its table: the binary layout when the body starts
/// with its tag, else JSON (stores written before binary bodies, and the other tables).
pub fn decode(table: Table, body: &[u8]) -> Result<Record, BodyError> {
    if codec::is_binary_body(body) {
        return Ok(codec::decode_body(table, body)?);
    }
    Ok(match table {
        Table::Trades => Record::Trade(serde_json::from_slice(body)?),
        Table::Deltas => Record::Delta(serde_json::from_slice(body)?),
        Table::Snapshots => Record::Snapshot(serde_json::from_slice(body)?),
        Table::Tickers => Record::Ticker(serde_json::from_slice(body)?),
        Table::Lifecycle => Record::Lifecycle(serde_json::from_slice(body)?),
        Table::Gaps => Record::Gap(serde_json::from_slice(body)?),
    })
}
