//! The writer's connection: the only one that writes. Owned by the writer thread.

use super::{Heads, StoreError, db_path, index, schema};
use kd_core::records::WirePos;
use kd_core::{Record, Table, TimestampUs};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// Rows deleted per retention statement, so one pass never holds the write lock for long.
const RETENTION_CHUNK: i64 = 20_000;

/// The `state` key of the store's id.
pub const STORE_ID_KEY: &str = "store_id";

/// 128 random bits as hex, and the creation time for a reader's sake.
fn new_store_id() -> String {
    use rand::RngExt;
    let bits: u128 = rand::rng().random();
    format!("{}-{bits:032x}", TimestampUs::now().micros() / 1_000_000)
}

/// The writing connection of the store.
pub struct WriteConn {
    conn: Connection,
    heads: Heads,
}

impl std::fmt::Debug for WriteConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteConn")
            .field("heads", &self.heads)
            .finish()
    }
}

impl WriteConn {
    /// Opens (creating when needed) the store in `data_dir`, in WAL mode.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Dir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(db_path(data_dir))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL: commits are written to the WAL before returning (survive kill -9);
        // fsync happens at checkpoints (see module docs of `store`).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(schema::DDL)?;
        conn.set_prepared_statement_cache_capacity(32);
        let mut this = WriteConn {
            conn,
            heads: Heads::default(),
        };
        this.heads = this.read_heads()?;
        if this.state("schema_version")?.is_none() {
            this.set_state("schema_version", schema::SCHEMA_VERSION)?;
        }
        // The store's identity, made once when the store is created (or, for a store from
        // before ids, at its first open since): every pull answer carries it, so the
        // deduplicator notices a replaced store even when its sequence numbers are higher.
        if this.state(STORE_ID_KEY)?.is_none() {
            this.set_state(STORE_ID_KEY, &new_store_id())?;
        }
        Ok(this)
    }

    /// The id of this store (see [`WriteConn::open`]).
    pub fn store_id(&self) -> Result<String, StoreError> {
        Ok(self.state(STORE_ID_KEY)?.unwrap_or_default())
    }

    fn read_heads(&self) -> Result<Heads, StoreError> {
        let mut heads = Heads::default();
        let mut stmt = self.conn.prepare(schema::HEADS)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, seq) = row?;
            if let Some(table) = Table::parse(&name) {
                heads.set(table, u64::try_from(seq).unwrap_or(0));
            }
        }
        Ok(heads)
    }

    /// The last committed sequence number of every table.
    pub fn heads(&self) -> Heads {
        self.heads
    }

    /// Records this store's gatherer id on first use; refuses a different one later.
    pub fn claim_gatherer_id(&mut self, id: &str) -> Result<(), StoreError> {
        match self.state("gatherer_id")? {
            None => self.set_state("gatherer_id", id),
            Some(stored) if stored == id => Ok(()),
            Some(stored) => Err(StoreError::WrongGatherer {
                stored,
                configured: id.to_string(),
            }),
        }
    }

    /// A value of the `state` table.
    pub fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Sets a value of the `state` table.
    pub fn set_state(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO state (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Commits `records` in one transaction, in order; returns the new heads. On error nothing
    /// of the batch is committed (the caller keeps it and retries).
    pub fn insert_batch(&mut self, records: &[Record]) -> Result<Heads, StoreError> {
        let result = self.try_insert_batch(records);
        if result.is_err() {
            self.ensure_rolled_back();
        }
        result
    }

    /// After a failed write: makes sure no transaction is left open. A failed statement or
    /// `COMMIT` (SQLITE_FULL, an I/O error) may leave the transaction open with part of the
    /// batch applied; the `Transaction` guard rolls back on drop but ignores a failing
    /// rollback, so this checks and rolls back again rather than let the next batch commit
    /// on top of half of this one.
    fn ensure_rolled_back(&mut self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rollback after a failed write failed");
        }
    }

    fn try_insert_batch(&mut self, records: &[Record]) -> Result<Heads, StoreError> {
        let mut heads = self.heads;
        let tx = self.conn.transaction()?;
        {
            let mut buf = Vec::with_capacity(256);
            for record in records {
                let table = record.table();
                let row = Row::of(record);
                buf.clear();
                encode_body(record, &mut buf)?;
                let mut stmt = tx.prepare_cached(schema::insert(table))?;
                stmt.execute(params![
                    row.received_at.micros(),
                    row.pos.sid.map(clamp),
                    row.pos.seq.map(clamp),
                    row.subject,
                    row.exchange_ts.micros(),
                    &buf[..],
                ])?;
                heads.set(table, u64::try_from(tx.last_insert_rowid()).unwrap_or(0));
            }
        }
        tx.commit()?;
        self.heads = heads;
        Ok(heads)
    }

    /// Records the deduplicator's acknowledgement: every row of `table` up to `cursor` is safe
    /// in production. Never moves backwards.
    pub fn ack(&mut self, table: Table, cursor: u64, now: TimestampUs) -> Result<(), StoreError> {
        let head = self.heads.get(table);
        if cursor > head {
            return Err(StoreError::AckBeyondHead {
                table,
                cursor,
                head,
            });
        }
        self.conn.execute(
            "INSERT INTO acks (tbl, cursor, acked_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(tbl) DO UPDATE SET cursor = max(cursor, excluded.cursor),
                                            acked_at = excluded.acked_at",
            params![table.name(), clamp(cursor), now.micros()],
        )?;
        Ok(())
    }

    /// The acknowledged cursor of each table.
    pub fn acks(&self) -> Result<Heads, StoreError> {
        read_acks(&self.conn)
    }

    /// Deletes the rows that are both acknowledged and received before `cutoff`; returns how
    /// many were deleted per table. Rows not acknowledged are never touched, however old.
    pub fn retention(&mut self, cutoff: TimestampUs) -> Result<[u64; 6], StoreError> {
        let acks = self.acks()?;
        let mut deleted = [0_u64; 6];
        for table in Table::ALL {
            let acked = clamp(acks.get(table));
            if acked == 0 {
                continue;
            }
            // Every row below the first young one is old: the boundary is exact even when
            // `received_at` is not monotonic in `seq`.
            let first_young: Option<i64> = self
                .conn
                .query_row(schema::first_young(table), [cutoff.micros()], |r| r.get(0))
                .optional()?;
            let through = match first_young {
                Some(young) => acked.min(young - 1),
                None => acked,
            };
            loop {
                let n = self
                    .conn
                    .prepare_cached(schema::delete_through(table))?
                    .execute(params![through, RETENTION_CHUNK])?;
                deleted[index(table)] += n as u64;
                if (n as i64) < RETENTION_CHUNK {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Moves the WAL into the database file (at clean shutdown, so the next open is quick).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Rows currently stored in `table` (tests and diagnostics).
    pub fn count(&self, table: Table) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row(schema::count(table), [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

pub(super) fn read_acks(conn: &Connection) -> Result<Heads, StoreError> {
    let mut acks = Heads::default();
    let mut stmt = conn.prepare_cached("SELECT tbl, cursor FROM acks")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (name, cursor) = row?;
        if let Some(table) = Table::parse(&name) {
            acks.set(table, u64::try_from(cursor).unwrap_or(0));
        }
    }
    Ok(acks)
}

/// SQLite integers are signed; sequence numbers never reach 2^63.
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The diagnostic columns of a row.
struct Row<'a> {
    received_at: TimestampUs,
    exchange_ts: TimestampUs,
    subject: Option<&'a str>,
    pos: WirePos,
}

impl<'a> Row<'a> {
    fn of(record: &'a Record) -> Row<'a> {
        let (subject, pos) = match record {
            Record::Trade(t) => (Some(t.ticker.as_str()), t.pos),
            Record::Delta(d) => (Some(d.ticker.as_str()), d.pos),
            Record::Snapshot(s) => (Some(s.ticker.as_str()), s.pos),
            Record::Ticker(t) => (Some(t.ticker.as_str()), t.pos),
            Record::Lifecycle(l) => (Some(l.subject.as_str()), l.pos),
            Record::Gap(g) => (g.ticker.as_deref(), WirePos::default()),
        };
        Row {
            received_at: record.received_at(),
            exchange_ts: record.exchange_ts(),
            subject,
            pos,
        }
    }
}

/// Trades, deltas and tickers in the binary layout of `kd_core::pull::codec` (tagged with its
/// first byte): encoding them as JSON here and decoding that JSON again for every pull were
/// the gatherer's largest costs after SQLite itself. The other records (few rows, nested) as
/// their own struct's JSON (the table says which struct it is).
fn encode_body(record: &Record, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    if kd_core::pull::codec::encode_body(record, buf) {
        return Ok(());
    }
    record_json(record, buf).map_err(StoreError::Encode)
}

/// The record's own struct as JSON: what a JSON body holds (the table says which struct).
pub(super) fn record_json(record: &Record, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match record {
        Record::Trade(t) => serde_json::to_writer(buf, t),
        Record::Delta(d) => serde_json::to_writer(buf, d),
        Record::Snapshot(s) => serde_json::to_writer(buf, s),
        Record::Ticker(t) => serde_json::to_writer(buf, t),
        Record::Lifecycle(l) => serde_json::to_writer(buf, l),
        Record::Gap(g) => serde_json::to_writer(buf, g),
    }
}
